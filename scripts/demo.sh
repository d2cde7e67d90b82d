#!/usr/bin/env bash
# The main job: set up, then run the sandbox portals (and, once it exists, a sweep) - see README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/portal-agent demo "$@"
