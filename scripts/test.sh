#!/usr/bin/env bash
# The test command: sets up what is missing, then runs the whole suite on this machine's QGIS 3.22
# (Debian 12) and then on QGIS 3.40 LTR (Debian 13: Python 3.13, numpy 2, GDAL 3.10) in a root
# file system of its own (scripts/trixie.sh; UNET_QGIS340=0 leaves that part out). Extra arguments
# go to pytest and run only the first part.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" | tail -n 1)"
export QT_QPA_PLATFORM=offscreen
cd "$ROOT"
t0=$(date +%s)
"$PY" -m pytest tests -q -p no:cacheprovider "$@"
echo ">> QGIS 3.22 suite: $(( $(date +%s) - t0 )) s" >&2
if [ $# -eq 0 ] && [ "${UNET_QGIS340:-1}" != "0" ]; then
  t1=$(date +%s)
  bash "$ROOT/scripts/trixie.sh"
  echo ">> QGIS 3.40 part (building its root file system the first time included): $(( $(date +%s) - t1 )) s" >&2
fi
