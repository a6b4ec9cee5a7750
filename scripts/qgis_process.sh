#!/usr/bin/env bash
# qgis_process with this plugin and the venv's torch. Debian 12's /usr/bin/qgis_process wrapper
# passes --noversioncheck, which qgis_process 3.22 rejects, so the binary is called directly.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UNET_VENV:-$HOME/.cache/qgis-unet-venv}"
BIN="$(command -v qgis_process.bin || command -v qgis_process)"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)"
export PYTHONPATH="${SITE}${PYTHONPATH:+:$PYTHONPATH}"
# The plugin is found on QGIS_PLUGINPATH under its package name: a link to this checkout.
if [ -z "${QGIS_PLUGINPATH:-}" ]; then
  export QGIS_PLUGINPATH="$HOME/.cache/qgis-unet-plugins"
  mkdir -p "$QGIS_PLUGINPATH"
  ln -sfn "$ROOT" "$QGIS_PLUGINPATH/unet_segmentation"
fi
"$BIN" plugins enable unet_segmentation >/dev/null 2>&1 || true
exec "$BIN" "$@"
