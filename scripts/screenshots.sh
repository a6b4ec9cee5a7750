#!/usr/bin/env bash
# Refresh the screenshots in docs/: the Toolbox dialogs (offscreen) and the real QGIS desktop under
# Xvfb with a styled class map and one round of the labelling loop (the desktop test, trained longer so
# the maps are worth showing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UNET_DIALOG_PNG_DIR="$ROOT/docs" UNET_DESKTOP_EPOCHS=25 UNET_DESKTOP_STRIDE=24 UNET_DESKTOP_ROUND_MINUTES=1
if [ -e "$ROOT/demo_output/model.pt" ]; then   # docs/labelling_loop.png, from the demo's model
  QT_QPA_PLATFORM=offscreen "$(bash "$ROOT/scripts/setup.sh" | tail -n 1)" "$ROOT/scripts/loop_picture.py"
fi
exec bash "$ROOT/scripts/test.sh" -k "toolbox_dialog_renders or desktop or dialog_installs or offers_the_installer" "$@"
