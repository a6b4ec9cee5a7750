"""The dependency folder: complete or not, what it holds, and its place on ``sys.path``."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import time
from typing import Callable

from .plan import InstallError

FOLDER_NAME = "unet-dependencies"

MARKER = "UNET_INSTALL_COMPLETE.json"

STALE_SECONDS = 6 * 3600  # staging folders older than this are leftovers of a crash

#: packages QGIS's Python must keep its own copy of (compiled against by GDAL and QGIS)
KEEP_FROM_QGIS = ("numpy",)


def default_target(profile_dir: str) -> str:
    """The install folder inside a QGIS profile folder (``QgsApplication.qgisSettingsDirPath()``)."""
    return os.path.join(profile_dir, "python", FOLDER_NAME)


def check_target(target: str) -> None:
    """Refuse a target folder that cannot be created or written, before anything is downloaded."""
    parent = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"the folder '{parent}' cannot be created ({exc.strerror}). Choose another install folder.") from None
    probe = os.path.join(parent, f".unet-write-test-{os.getpid()}")
    try:
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise InstallError(f"the folder '{parent}' is not writable ({exc.strerror}). Choose another install folder "
                           "(it needs no administrator rights when it is in your QGIS profile).") from None


def is_complete(target: str) -> bool:
    return os.path.isfile(os.path.join(target, MARKER))


def installed_versions(target: str) -> dict:
    try:
        with open(os.path.join(target, MARKER), encoding="utf-8") as f:
            return json.load(f).get("versions", {})
    except (OSError, ValueError):
        return {}


def repair(target: str, log: Callable[[str], None] = lambda m: None) -> bool:
    """Remove a half-written install (no completion marker) and stale staging folders; True if anything went."""
    removed = False
    parent = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(parent):
        for name in os.listdir(parent):
            path = os.path.join(parent, name)
            stale = time.time() - os.path.getmtime(path) > STALE_SECONDS  # not another QGIS's install in progress
            if stale and (name.startswith(os.path.basename(target) + ".staging-") or name.startswith(os.path.basename(target) + ".old-")):
                shutil.rmtree(path, ignore_errors=True)
                removed = True
    if os.path.isdir(target) and not is_complete(target):
        log(f"Removing an incomplete install in {target}.")
        shutil.rmtree(target, ignore_errors=True)
        removed = True
    return removed


def path_position(path: list[str]) -> int:
    """Where the install folder goes in ``sys.path``: before the first site-packages / dist-packages folder."""
    for i, p in enumerate(path):
        if os.path.basename(os.path.normpath(p)) in ("site-packages", "dist-packages"):
            return i
    return len(path)


def activate(target: str) -> bool:
    """Put a complete install on ``sys.path``, before the site-packages folders (see the module docstring).

    Returns whether the folder is on the path now. Packages that were looked up before and not
    found become importable (import caches are invalidated); a package already imported from
    elsewhere stays as it is until QGIS restarts.
    """
    if not is_complete(target):
        return False
    if target not in sys.path:
        sys.path.insert(path_position(sys.path), target)
        importlib.invalidate_caches()
    return True


def restart_needed(target: str, packages=("torch", "torchvision")) -> list[str]:
    """Those of ``packages`` already imported in this process from outside ``target``: only a restart
    brings the new ones."""
    stale = []
    for p in packages:
        module = sys.modules.get(p)
        where = os.path.abspath(getattr(module, "__file__", None) or "") if module is not None else ""
        if module is not None and not where.startswith(os.path.abspath(target) + os.sep):
            stale.append(p)
    return stale


def _prune_kept(folder: str) -> list[str]:
    """Remove from ``folder`` the packages of KEEP_FROM_QGIS that this Python already has."""
    removed = []
    for name in KEEP_FROM_QGIS:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # QGIS has none: the folder's copy is the one
        entries = [e for e in os.listdir(folder)
                   if e == name or e == f"{name}.libs" or re.match(rf"^{re.escape(name)}-[^-]+\.(dist|egg)-info$", e)]
        for e in entries:
            path = os.path.join(folder, e)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        if entries:
            removed.append(name)
    return removed
