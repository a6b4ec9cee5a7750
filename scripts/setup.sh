#!/usr/bin/env bash
# Install what the plugin needs for development on Debian 12, quickly when it is already there:
# QGIS 3.22 and GDAL from apt, a venv (system site packages, so QGIS, osgeo and torch import
# together) with pinned torch, torchvision, numpy<2 and the test tools, and the compiled
# translations. Prints the venv's python path on its last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${UNET_VENV:-$HOME/.cache/qgis-unet-venv}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

apt_pkgs="qgis python3-qgis qgis-providers python3-gdal gdal-bin qttools5-dev-tools python3-venv xvfb xauth"
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo ">> installing from apt:$missing" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >&2
fi

stamp="$VENV/.requirements.sha"
want="$(sha256sum "$ROOT/requirements-dev.txt" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo ">> preparing the venv $VENV" >&2
  [ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-dev.txt" >&2
  echo "$want" > "$stamp"
fi

# arcgis.learn's own source, the judge of our Esri Classified Tiles files in the tests (its wheel
# only: the package imports too much to import whole; tests load the functions they need)
WHEELS="$VENV/wheels"
if ! ls "$WHEELS"/arcgis-2.4.1-*.whl >/dev/null 2>&1; then
  echo ">> downloading the arcgis 2.4.1 wheel (tests only)" >&2
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps arcgis==2.4.1 -d "$WHEELS" >&2
fi

# compiled translations (.qm) from the committed .ts sources
for ts in "$ROOT"/i18n/*.ts; do
  [ -e "$ts" ] || continue
  qm="${ts%.ts}.qm"
  if [ ! -e "$qm" ] || [ "$ts" -nt "$qm" ]; then lrelease -silent "$ts" -qm "$qm" >&2; fi
done
echo "$VENV/bin/python"
