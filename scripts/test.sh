#!/usr/bin/env bash
# The tests: set up, lint, then the whole suite (browser suites included) on 2 pytest-xdist workers (each its
# own sandbox, Chromium and stores; PORTAL_AGENT_TEST_WORKERS=0 runs in this process) - see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache
exec .venv/bin/pytest -q -p no:cacheprovider -n "${PORTAL_AGENT_TEST_WORKERS:-2}" "$@"
