#!/usr/bin/env bash
# Run the whole suite: lint (ruff), types (mypy --strict), layers (import-linter), then pytest.
# Extra arguments go to pytest, e.g. ./test.sh -k store -x
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
scripts/bootstrap.sh test
export PATH="$here/.venv/bin:$PATH"
echo "== ruff"; ruff check protocols p2p node tui tests bench
echo "== mypy --strict"; mypy
echo "== import-linter"; lint-imports
echo "== pytest"; exec pytest "$@"
