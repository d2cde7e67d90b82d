#!/usr/bin/env bash
# One-time (idempotent) set-up on a fresh machine: Debian Chromium (+ headless shell), a venv, the project
# and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

# Default: Debian's Chromium headless shell (headless runs) and Debian's Chromium (headed runs, beside it).
browser="${PORTAL_AGENT_BROWSER__EXECUTABLE_PATH:-${PORTAL_AGENT_BROWSER_EXECUTABLE_PATH:-/usr/bin/chromium-headless-shell}}"
if [ ! -x "$browser" ] || { [ "$browser" = /usr/bin/chromium-headless-shell ] && [ ! -x /usr/bin/chromium ]; }; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian's Chromium and its headless shell" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-headless-shell >/dev/null
  else
    echo "setup: no browser at $browser; install chromium-headless-shell (Debian) or set" \
      "PORTAL_AGENT_BROWSER_EXECUTABLE_PATH" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.portal-agent-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python dependencies" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
