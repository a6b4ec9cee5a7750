#!/usr/bin/env bash
# The plugin on the QGIS users run today: QGIS 3.40 LTR from Debian 13 ("trixie": Python 3.13,
# numpy 2, GDAL 3.10), in a root file system of its own, built once and cached.
#
#   bash scripts/trixie.sh                 # build (first time: ~5 min) and run the suite there
#   bash scripts/trixie.sh -k classify     # extra arguments go to pytest
#   UNET_DEBIAN_SUITE=sid bash scripts/trixie.sh   # QGIS 3.44 from Debian unstable, the same way
#
# Inside, PyTorch is installed by the plugin's own installer (python3 -m unet_plugin install) with
# QGIS's Python, from PyPI — as a user's QGIS would get it — into a fresh profile's dependency
# folder, which the tests put on the path. Needs root (debootstrap, chroot, bind mounts) and the network (Debian, PyPI).
# Packages from the new Debian never touch this machine's system: they stay in the root file system.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${UNET_DEBIAN_SUITE:-trixie}"
CACHE="${UNET_CHROOT_CACHE:-$HOME/.cache/unet-chroot}"
RFS="$CACHE/$SUITE"
STAMP="$RFS/.unet-ready-5"    # bump the number when what is installed below changes
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
log() { echo ">> $*" >&2; }

mount_all() {
  mountpoint -q "$RFS/proc" || $SUDO mount -t proc proc "$RFS/proc"
  mountpoint -q "$RFS/dev" || $SUDO mount --bind /dev "$RFS/dev"
  mountpoint -q "$RFS/dev/pts" || $SUDO mount --bind /dev/pts "$RFS/dev/pts"
  $SUDO mkdir -p "$RFS/src"
  mountpoint -q "$RFS/src" || $SUDO mount --bind "$ROOT" "$RFS/src"
}
umount_all() {
  for m in src dev/pts dev proc; do mountpoint -q "$RFS/$m" && $SUDO umount -l "$RFS/$m" || true; done
}
inside() {  # run a command in the root file system, with a clean environment
  $SUDO chroot "$RFS" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$@"
}
trap umount_all EXIT

if [ ! -e "$STAMP" ]; then
  t0=$(date +%s)
  command -v debootstrap >/dev/null || { $SUDO apt-get update -qq; $SUDO apt-get install -y -qq debootstrap >/dev/null; }
  if [ ! -x "$RFS/usr/bin/apt-get" ]; then
    log "debootstrap $SUITE into $RFS"
    $SUDO rm -rf "$RFS"; $SUDO mkdir -p "$RFS"
    $SUDO debootstrap --variant=minbase "$SUITE" "$RFS" http://deb.debian.org/debian >&2
  fi
  $SUDO cp /etc/resolv.conf "$RFS/etc/resolv.conf"
  $SUDO cp /etc/hosts "$RFS/etc/hosts"   # this machine's own name: torchrun's rendezvous looks it up
  # the machine's own certificate authorities (a company proxy's), for apt and pip inside
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    $SUDO mkdir -p "$RFS/usr/local/share/ca-certificates"
    $SUDO cp /usr/local/share/ca-certificates/*.crt "$RFS/usr/local/share/ca-certificates/"
  fi
  mount_all
  log "QGIS and its Python from $SUITE"
  inside bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get -o Acquire::Check-Valid-Until=false update -qq && apt-get install -y -qq --no-install-recommends \
    qgis python3-qgis qgis-providers python3-gdal gdal-bin python3-pip python3-venv ca-certificates xvfb xauth \
    qttools5-dev-tools >/dev/null && update-ca-certificates >/dev/null"
  log "test tools (a venv beside QGIS's Python: pytest, pytest-qgis; the arcgis wheel as the judge of Esri files)"
  inside bash -c "rm -rf /opt/unet-venv && python3 -m venv --system-site-packages /opt/unet-venv && \
    /opt/unet-venv/bin/pip install -q --disable-pip-version-check 'pytest>=8' 'pytest-qgis>=2' && \
    /opt/unet-venv/bin/pip download -q --disable-pip-version-check --no-deps --ignore-requires-python arcgis==2.4.1 \
    -d /opt/unet-venv/wheels"
  log "PyTorch by the plugin's own installer, with QGIS's Python, from PyPI, into a fresh QGIS profile"
  inside bash -c "cd /src && rm -rf /opt/unet-profile && python3 -m unet_plugin install --profile /opt/unet-profile \
    --index-url https://pypi.org/simple && python3 -m unet_plugin install --check --profile /opt/unet-profile" >&2
  # the tests' Python sees the profile's dependency folder as QGIS does once the plugin activated it
  # (a .pth file; QGIS processes the tests start get it on PYTHONPATH: tests/conftest.py)
  inside bash -c 'echo /opt/unet-profile/python/unet-dependencies > \
    "$(/opt/unet-venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()[\"purelib\"])")/unet-deps.pth"'
  $SUDO touch "$STAMP"
  log "built in $(( $(date +%s) - t0 )) s"
fi

$SUDO cp /etc/resolv.conf /etc/hosts "$RFS/etc/"
mount_all
inside bash -c "qgis_process --version 2>/dev/null | head -1; python3 -c 'import sys, numpy; from osgeo import gdal; \
print(\"Python\", sys.version.split()[0], \"numpy\", numpy.__version__, \"GDAL\", gdal.__version__)'" >&2
args=""; [ $# -gt 0 ] && args="$(printf ' %q' "$@")"
inside bash -c "cd /src && PYTHONDONTWRITEBYTECODE=1 /opt/unet-venv/bin/python -m pytest tests -q -p no:cacheprovider $args"
