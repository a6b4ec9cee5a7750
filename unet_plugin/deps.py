"""Whether the machine-learning dependencies can be imported (checked only when an algorithm runs)."""

from __future__ import annotations

import platform
import sys


def install_command() -> str:
    """The command that installs torch and torchvision into QGIS's own Python."""
    system = platform.system()
    if system == "Windows":
        return "python -m pip install torch torchvision  (in the OSGeo4W Shell that comes with QGIS)"
    if system == "Darwin":
        return "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install torch torchvision"
    return f"{sys.executable if sys.executable.endswith(('python3', 'python')) else 'python3'} -m pip install --user torch torchvision"


def missing_dependencies() -> str | None:
    """``None`` when torch and torchvision import, else what is missing and how to install it."""
    missing = []
    for name in ("torch", "torchvision"):
        try:
            __import__(name)
        except Exception as exc:  # ImportError, or a native library that fails to load
            missing.append(f"{name} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'not installed'})")
    if not missing:
        return None
    return "missing Python package(s): " + ", ".join(missing) + ". Install them into QGIS's Python with: " + install_command()
