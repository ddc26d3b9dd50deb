#!/usr/bin/env bash
# Create the reference environment for benchmarks/train_throughput.py: the original
# t-SimCNE release (tsimcne==0.3.12, the last pip release that runs; 0.4.x does not)
# in its own virtual environment, never in the toolkit's environment.
#
#   bash benchmarks/setup_reference_env.sh [--link-only] [VENV_PATH]   (default /tmp/tsimcne-ref)
#   python benchmarks/train_throughput.py --ref-python VENV_PATH/bin/python
#
# The venv sees the site-packages of the interpreter PYTHON names, so the original runs on
# the *same* torch, torchvision, numpy and Pillow as this toolkit (a fair comparison, and no
# second multi-GB torch download).  `venv --system-site-packages` alone is not enough when
# PYTHON is itself a virtual environment's interpreter: the new venv then sees the *base*
# interpreter's packages, not that venv's (which may have no torch at all).  So a .pth file
# in the new venv lists PYTHON's own site-packages folders.  --link-only stops after that
# (no install, no torch check): what the test suite checks.  tsimcne is installed with --no-deps because its pinned
# requirements would replace that torch; the one extra it needs is `lightning`.
# Environment: PYTHON (default: python3) picks the interpreter.
set -euo pipefail

LINK_ONLY=0
if [ "${1:-}" = "--link-only" ]; then
    LINK_ONLY=1
    shift
fi
VENV="${1:-/tmp/tsimcne-ref}"
PY="${PYTHON:-python3}"

if [ -e "$VENV" ] && [ ! -x "$VENV/bin/python" ]; then
    echo "error: $VENV exists but is not a virtual environment; give another path." >&2
    exit 1
fi

[ "$LINK_ONLY" = 1 ] || "$PY" -c "import torch, torchvision, numpy, PIL" 2>/dev/null || {
    echo "error: $PY cannot import torch/torchvision/numpy/Pillow; install the toolkit's" \
         "requirements first (the reference venv reuses them)." >&2
    exit 1
}

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" --system-site-packages --without-pip
    [ "$LINK_ONLY" = 1 ] || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
fi
# PYTHON's own site-packages (a venv's, or the base interpreter's), after the venv's own
SRC_DIRS=$("$PY" -c "import site, sysconfig; p = sysconfig.get_paths(); print('\n'.join(dict.fromkeys([p['purelib'], p['platlib']])))")
DST_SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
printf '%s\n' "$SRC_DIRS" > "$DST_SITE/_tsimcne_nb_toolkit_env.pth"
if [ "$LINK_ONLY" = 1 ]; then
    echo "linked $VENV to the site-packages of $PY"
    exit 0
fi
"$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null || {
    echo "error: the reference venv $VENV cannot import torch through $PY's site-packages" \
         "($SRC_DIRS)." >&2
    exit 1
}
"$VENV/bin/python" -m pip install --quiet --no-deps "tsimcne==0.3.12"
"$VENV/bin/python" -m pip install --quiet lightning

# smoke check: the package imports and reports the expected version
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as m

import lightning  # noqa: F401
import tsimcne.tsimcne  # noqa: F401

v = m.version("tsimcne")
assert v == "0.3.12", f"expected tsimcne 0.3.12, got {v}"
print(f"reference environment ready: tsimcne {v}, lightning {m.version('lightning')}")
EOF
echo "use: python benchmarks/train_throughput.py --ref-python $VENV/bin/python"
