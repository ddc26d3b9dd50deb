#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, with warnings as errors.
#
#   bash scripts/docs.sh            # from a clean clone: installs the docs tools, executes the
#                                   # tutorial notebooks at smoke size, builds
#   TSIMCNE_DOCS_NO_INSTALL=1 bash scripts/docs.sh   # skip the pip install (scripts/test.sh)
#
# The tutorials are rendered with their outputs: notebooks/_build/nbexec.py executes each
# notebook at smoke size on synthetic data into docs/tutorials/ unless an executed copy of its
# current source is already there (the test suite writes them while it runs the notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TSIMCNE_DOCS_NO_INSTALL:-}" ]; then
    python3 -m pip install -q -e ".[docs]"
fi
export TSIMCNE_NUM_THREADS="${TSIMCNE_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

start=$(date +%s)
python3 notebooks/_build/nbexec.py --out docs/tutorials
python3 -m sphinx -E -W --keep-going -q -b html docs docs/_build/html
python3 scripts/check_docs.py docs/_build/html
echo "docs built in $(( $(date +%s) - start )) s: docs/_build/html/index.html"
