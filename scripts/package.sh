#!/usr/bin/env bash
# Build dist/unet_segmentation.zip for QGIS's "Install from ZIP": one top-level folder,
# no tests, caches or generated resources.py; translations compiled.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME=unet_segmentation
for ts in "$ROOT"/i18n/*.ts; do lrelease -silent "$ts" -qm "${ts%.ts}.qm"; done
STAGE="$(mktemp -d)"; trap 'rm -rf "$STAGE"' EXIT
mkdir "$STAGE/$NAME"
(cd "$ROOT" && tar cf - --exclude='__pycache__' --exclude='*.pyc' \
   metadata.txt __init__.py icon.svg LICENSE README.md unet_plugin resources i18n) | tar xf - -C "$STAGE/$NAME"
mkdir -p "$ROOT/dist"
rm -f "$ROOT/dist/$NAME.zip"
(cd "$STAGE" && python3 -c "
import os, zipfile, sys
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    for d, _, files in os.walk('$NAME'):
        for f in sorted(files):
            z.write(os.path.join(d, f))
" "$ROOT/dist/$NAME.zip")
echo "$ROOT/dist/$NAME.zip"
