#!/usr/bin/env bash
# The main job on the bundled sample (NC Landsat-7, tests/data/nc_landsat7), headless:
# Export Training Chips -> Train U-Net -> Classify Raster with qgis_process, then a QGIS project.
# Everything lands in ${1:-demo_output}. Sets up what is missing first (scripts/setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mkdir -p "${1:-$ROOT/demo_output}" && cd "${1:-$ROOT/demo_output}" && pwd)"
PY="$(bash "$ROOT/scripts/setup.sh" | tail -n 1)"
QP="$ROOT/scripts/qgis_process.sh"
DATA="$ROOT/tests/data/nc_landsat7"
MINUTES="${DEMO_MINUTES:-3}"
rm -rf "$OUT/chips" "$OUT"/classes.* "$OUT"/model.pt "$OUT"/report.html

echo ">> 1/3 Export Training Chips (64 px chips, stride 32, labels from strata.tif)"
"$QP" run unet:exporttrainingchips -- INPUT="$DATA/nc_lsat7_2000_6band.tif" LABEL_RASTER="$DATA/strata.tif" \
  CHIP_SIZE=64 STRIDE=32 OUTPUT="$OUT/chips" FOOTPRINTS="$OUT/chip_footprints.gpkg"
echo ">> 2/3 Train U-Net (the defaults, for $MINUTES minutes; no download: ImageNet weights off)"
"$QP" run unet:trainunet -- CHIPS="$OUT/chips" PRETRAINED=false TIME_LIMIT="$MINUTES" \
  OUTPUT_MODEL="$OUT/model.pt" OUTPUT_REPORT="$OUT/report.html" | tee "$OUT/train.log"
echo ">> 3/3 Classify Raster"
"$QP" run unet:classifyraster -- INPUT="$DATA/nc_lsat7_2000_6band.tif" MODEL="$OUT/model.pt" \
  OUTPUT="$OUT/classes.tif" OUTPUT_CONFIDENCE="$OUT/confidence.tif"
QT_QPA_PLATFORM=offscreen "$PY" "$ROOT/scripts/make_project.py" "$DATA/nc_lsat7_2000_6band.tif" "$OUT"
echo
echo "Done. In $OUT:"
echo "  chips/          training chips (also Esri Classified Tiles)"
echo "  model.pt        the trained model;  report.html  the training report"
echo "  classes.tif     the styled class map (classes.qml beside it);  confidence.tif"
echo "  demo.qgz        QGIS project with the imagery and the class map;  demo.png  its rendering"
grep -E "VALIDATION_(MIOU|ACCURACY)|EPOCHS_RUN" "$OUT/train.log" | sed 's/^/  /'
