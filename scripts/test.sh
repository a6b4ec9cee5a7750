#!/usr/bin/env bash
# The test command: sets up what is missing, then runs the whole suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" | tail -n 1)"
export QT_QPA_PLATFORM=offscreen
cd "$ROOT"
exec "$PY" -m pytest tests -q -p no:cacheprovider "$@"
