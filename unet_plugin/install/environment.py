"""The machine an install runs on: QGIS's profile folder, QGIS's own Python interpreter, an NVIDIA GPU."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from .plan import InstallError


def default_profile() -> str:
    """QGIS's default profile folder on this system (where QGIS 3 keeps it unless told otherwise)."""
    if os.name == "nt":
        base = os.path.join(os.environ.get("APPDATA", os.path.expanduser("~")), "QGIS", "QGIS3")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support/QGIS/QGIS3")
    else:
        base = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "QGIS", "QGIS3")
    return os.path.join(base, "profiles", "default")


def python_executable() -> str:
    """The Python interpreter that runs this process (QGIS's), as a program pip can be run with.

    ``sys.executable`` is QGIS's own binary on Windows (``qgis-bin.exe``) and inside QGIS.app on
    macOS; the interpreter of the same prefix and version is found beside it.
    """
    major, minor = sys.version_info[:2]
    exe = sys.executable or ""
    # a "python3" is not enough: in the embedded desktop sys.executable can be whatever came first on PATH
    # (a pyenv Python of the same minor version without GDAL); it must be this very interpreter
    if re.match(r"^python(\d(\.\d+)?)?(\.exe)?$", os.path.basename(exe).lower()) and _same_interpreter(exe):
        return exe
    prefixes = [sys.prefix, sys.exec_prefix, getattr(sys, "base_prefix", sys.prefix)]
    names = [f"python{major}.{minor}", f"python{major}", "python"]
    candidates = []
    for p in prefixes:
        for sub in ("bin", "", "Scripts", os.path.join("apps", f"Python{major}{minor}")):
            for n in names:
                candidates.append(os.path.join(p, sub, n + (".exe" if os.name == "nt" else "")))
    if sys.platform == "darwin" and exe:
        candidates.insert(0, os.path.join(os.path.dirname(exe), "bin", "python3"))  # QGIS.app/Contents/MacOS/bin
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK) and _same_interpreter(c):
            return c
    raise InstallError("the Python interpreter that runs QGIS was not found beside " + (exe or "QGIS")
                       + f" (looked for python{major}.{minor} under {sys.prefix}). Install with pip by hand: see the README.")


def _same_interpreter(path: str) -> bool:
    """Whether ``path`` runs this interpreter: the same version and the same installation (prefix)."""
    try:
        out = subprocess.run([path, "-c", "import sys; print(tuple(sys.version_info[:3])); print(sys.prefix)"],
                             capture_output=True, text=True, timeout=60, **_no_window())
    except (OSError, subprocess.TimeoutExpired):
        return False
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or len(lines) != 2 or lines[0] != str(tuple(sys.version_info[:3])):
        return False
    ours = {os.path.normcase(os.path.realpath(p)) for p in (sys.prefix, getattr(sys, "base_prefix", sys.prefix))}
    return os.path.normcase(os.path.realpath(lines[1])) in ours


def _no_window() -> dict:
    """No console window flashing up on Windows for each child process."""
    return {"creationflags": 0x08000000} if os.name == "nt" else {}


def nvidia_gpu() -> str | None:
    """The NVIDIA GPU's name when a driver is installed (``nvidia-smi`` answers), else ``None``."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20, **_no_window())
    except (OSError, subprocess.TimeoutExpired):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None
