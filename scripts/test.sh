#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, run the whole suite, then build
# the documentation with warnings as errors (scripts/docs.sh). Used by the README's test
# command and by .ci/run. Arguments go to pytest; with arguments (a selection of tests) the
# docs are built only if TSIMCNE_TEST_DOCS=1.
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
# the notebook tests also write their executed notebooks for the docs, which then render them
# instead of executing the notebooks a second time
export TSIMCNE_DOCS_NOTEBOOKS="${TSIMCNE_DOCS_NOTEBOOKS:-docs/tutorials}"
python3 -m pytest -q -p no:cacheprovider --durations=15 "$@"

# the type checker, on the public modules listed in pyproject.toml ([tool.mypy] files)
if [ "$#" -eq 0 ]; then
    python3 -m mypy
fi

if [ "$#" -eq 0 ] || [ "${TSIMCNE_TEST_DOCS:-0}" = "1" ]; then
    TSIMCNE_DOCS_NO_INSTALL=1 bash scripts/docs.sh
fi
