#!/usr/bin/env bash
# One device call for issue 16 when a GPU is lent (the lease is ~15 minutes, so everything runs
# in one prepared command):
#   1. benchmarks/train_throughput.py --device cuda, alone on the GPU (timings);
#   2. concurrently: a paper-budget fit of the synthetic data through the CLI, the quick recipe's
#      quality-versus-epochs curve and a screen of quick-recipe variants (benchmarks/map_quality.py
#      --device cuda, seeds 0-2).  On a GPU only the epoch counts carry over to the CPU budget, not
#      the times; the paper fit's wall time is that of a GPU shared with the screens.
# Results land in $OUT (at most 8 files come back): throughput.json/.csv, curve.jsonl,
# screen.jsonl, paper.tgz (metrics, manifest, map), logs.tgz.
#
# The GPU image has torch but no openTSNE and no tsimcne 0.3.12 (the original, for the throughput
# comparison): download them as wheels into .whl/ first (ignored by git; name it in the call's
# `carry`):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_28_x86_64 -d .whl openTSNE tsimcne==0.3.12
# Device call: OUT=$OUT TOTAL=570 bash benchmarks/research/gpu_issue16.sh   (timeout_s 600)
# CPU smoke test (about a minute):
#   WHEELS=0 OUT=/tmp/gpu16 DEVICE=cpu N=300 SEEDS=0 CURVE=quick-x0.02 \
#   SCREEN="quick:x=0.02,quick:backbone=resnet18_w8:x=0.04" PAPER_EPOCHS=1,1,1 \
#   TP_ARGS="--quick --threads 1 --implementations ours-narrow-bf16" TOTAL=120 TAIL=60 \
#   CURVE_JOBS=1 SCREEN_JOBS=1 bash benchmarks/research/gpu_issue16.sh
set -u
OUT=${OUT:-/tmp/gpu16}
DEVICE=${DEVICE:-cuda}
N=${N:-3000}
TOTAL=${TOTAL:-570}            # seconds for the whole script; phase 2 gets what phase 1 left
TAIL=${TAIL:-150}              # no new screen/curve run starts later than this before phase 2 ends
SEEDS=${SEEDS:-0,1,2}
CURVE=${CURVE:-quick-x10,quick-x5,quick-x2,quick-x0.5}
# in order of interest: with seed-major scheduling the last ones lose seeds first. Each is the
# quick budget (AdamW, no grayscale, 70 stage-1 epochs since issue 16) with one change: first
# the previous stage-1 length (45) and a longer one (100), then the leads of docs/quick-budget.md,
# then the settings issue 16 changed, as controls.
# resnet18_w8 trains ~2x the images/s of the 16-wide network on the CPU (793 vs 389, 1 thread),
# so w8 with twice the epochs costs what the quick recipe costs.
SCREEN=${SCREEN:-quick,quick:e1=45,quick:e1=100,quick:lr=0.004,quick:crop_scale=0.35,quick:grayscale_p=0.2,quick:opt=sgd:grayscale_p=0.2,quick:backbone=resnet18_w8:x=2,quick:hue=0.02,quick:batch=128,quick:backbone=resnet18_w32,quick:batch=512,quick:wd=0.05,quick-default}
PAPER_EPOCHS=${PAPER_EPOCHS:-}  # empty: the paper budget's own epochs
mkdir -p "$OUT" /tmp/gpu16-work
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 | head -3
if [ "${WHEELS:-1}" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then  # openTSNE and the original tsimcne 0.3.12, carried as wheels
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
python3 -c "import torch, tsimcne_nb, openTSNE, sklearn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1

# ---------------------------------------------------------------- 1. throughput, alone
stamp "throughput"
TP_ARGS=${TP_ARGS:-}
timeout "${TP_LIMIT:-170}" python3 benchmarks/train_throughput.py --device "$DEVICE" --force \
    --ref-python "$(command -v python3)" --out "$OUT/throughput.json" $TP_ARGS \
    > /tmp/gpu16-work/throughput.log 2>&1
stamp "throughput rc $?"
sed -n '/===== train_throughput summary/,/=====$/p' /tmp/gpu16-work/throughput.log | tail -25

# ---------------------------------------------------------------- 2. paper fit + curve + screen
LIMIT2=$(( TOTAL - ($(date +%s) - START) - 15 ))
DEADLINE=$(( LIMIT2 - TAIL ))
[ "$DEADLINE" -lt 30 ] && DEADLINE=30
stamp "phase 2: ${LIMIT2} s, new runs until ${DEADLINE} s"
SUB=()
[ "$N" != 3000 ] && SUB=(--subset "$N")
EP=()
[ -n "$PAPER_EPOCHS" ] && EP=(--epochs "$PAPER_EPOCHS")
( timeout "$LIMIT2" python3 -m tsimcne_nb.cli fit --dataset synthetic-blood "${SUB[@]}" --budget paper \
    --device "$DEVICE" --seed 0 --out /tmp/gpu16-work/paper --no-progress --checkpoint-every 250 \
    "${EP[@]}" > /tmp/gpu16-work/paper.log 2>&1; echo "paper fit rc $?" >> /tmp/gpu16-work/paper.log ) &
( timeout "$LIMIT2" python3 benchmarks/map_quality.py --device "$DEVICE" --n "$N" --seeds "$SEEDS" \
    --configs "$CURVE" --jobs "${CURVE_JOBS:-2}" --deadline "$DEADLINE" --results "$OUT/curve.jsonl" \
    > /tmp/gpu16-work/curve.log 2>&1 ) &
( timeout "$LIMIT2" python3 benchmarks/map_quality.py --device "$DEVICE" --n "$N" --seeds "$SEEDS" \
    --configs "$SCREEN" --jobs "${SCREEN_JOBS:-4}" --deadline "$DEADLINE" --results "$OUT/screen.jsonl" \
    > /tmp/gpu16-work/screen.log 2>&1 ) &
wait
stamp "phase 2 done"

ls -la /tmp/gpu16-work/paper /tmp/gpu16-work/paper/checkpoints 2>&1 | tail -12
tail -5 /tmp/gpu16-work/paper.log
cat /tmp/gpu16-work/paper/metrics.json 2>/dev/null
tar czf "$OUT/paper.tgz" -C /tmp/gpu16-work --exclude='*.pt' --exclude='checkpoints' paper 2>/dev/null
tar czf "$OUT/logs.tgz" -C /tmp/gpu16-work throughput.log paper.log curve.log screen.log
# the tables (also printed when a run was cut short: completed rows are in the .jsonl files)
python3 benchmarks/map_quality.py --table-only --device "$DEVICE" --n "$N" --seeds "$SEEDS" \
    --configs "$CURVE" --results "$OUT/curve.jsonl" | head -12
python3 benchmarks/map_quality.py --table-only --device "$DEVICE" --n "$N" --seeds "$SEEDS" \
    --configs "$SCREEN" --results "$OUT/screen.jsonl" | head -20
grep -h "FAILED\|not started" /tmp/gpu16-work/curve.log /tmp/gpu16-work/screen.log | head -5
stamp "end"
