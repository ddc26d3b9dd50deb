#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run the whole suite.
# Used by the README's test command and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q -e ".[dev]"

# Debian's Chromium for the real-browser widget tests (never `playwright install`: it downloads).
if ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: chromium not found and cannot be installed here; browser tests will be skipped" >&2
    fi
fi

# One torch thread: on 2-core machines two threads collapse when anything else is busy.
export TSIMCNE_NUM_THREADS="${TSIMCNE_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec python3 -m pytest -q -p no:cacheprovider --durations=15 "$@"
