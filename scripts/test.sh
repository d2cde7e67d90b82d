#!/usr/bin/env bash
# The tests: set up, lint, then the whole suite (browser suites included) - see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
