"""The machine-learning dependencies: found without importing them, imported safely.

Two rules keep QGIS alive:

- Opening a dialog (``canExecute``) only *looks* for torch and torchvision (their import spec
  and installed version): importing torch takes seconds and loads native libraries.
- The first import of torch that the plugin causes goes through :func:`import_ml`, which first
  keeps PyTorch's compiler stack out of a process where it would crash. ``import torchvision``
  imports ``torch._dynamo``, which probes for ``triton``; a CUDA build of torch from PyPI ships
  triton, whose ``libtriton.so`` carries its own LLVM. In the QGIS desktop on Linux, Mesa's
  ``swrast_dri.so`` has already loaded the system ``libLLVM``, and loading a second LLVM into the
  same process dies with signal 11 while ``libtriton.so`` initialises (QGIS 3.22, Debian 12).
  We never compile (no ``torch.compile``, no custom kernels), so triton is only dead weight:
  when an LLVM is already mapped into this process, ``triton`` is marked as absent
  (``sys.modules["triton"] = None``), which torch treats exactly as "triton not installed". In
  any other process (``qgis_process``, the command line, ``torchrun``, a desktop without Mesa's
  LLVM) nothing is changed, so other plugins that use triton keep it. ``UNET_BLOCK_TRITON=1`` /
  ``0`` forces the choice. onnxruntime's CPU build bundles no LLVM and needs no guard (the
  desktop test imports it with Mesa loaded).

The guard lives here, called from ``unet_plugin/ml/__init__.py``: every module that imports
torch is under ``ml/``, so no torch import of ours can run before it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import sys

# the oldest releases the plugin is tested with (weights_only loading, torchvision's weights= API)
MINIMUM = {"torch": (2, 1), "torchvision": (0, 16)}
COMPILER_MODULES = ("triton",)


@functools.lru_cache(maxsize=1)
def install_command() -> str:
    """The command that installs PyTorch for the plugin from a terminal, on this platform: the plugin's
    own installer run by QGIS's Python (no ``pip --user``, which Debian refuses; no ``python`` where
    Debian has only ``python3``)."""
    folder = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    system = platform.system()
    if system == "Windows":
        return f'cd /d "{folder}" && python -m unet_plugin install  (in the OSGeo4W Shell that comes with QGIS)'
    if system == "Darwin":
        python = "/Applications/QGIS.app/Contents/MacOS/bin/python3"
    else:
        try:
            from .environment import python_executable

            python = python_executable()
        except Exception:  # not found beside this process: the distribution's Python
            python = "python3"
    return f'cd "{folder}" && {python} -m unet_plugin install'


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def installed_version(name: str) -> str | None:
    """The installed version of package ``name`` without importing it; ``None`` when it is not found."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__version__", None):
        return str(module.__version__)
    try:
        if importlib.util.find_spec(name) is None:
            return None
    except (ImportError, ValueError):  # a broken entry in sys.modules / sys.path
        return None
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(name)
    except PackageNotFoundError:  # importable but without metadata (a source checkout): assume current
        return "0+unknown"


def missing_dependencies(advice: bool = True) -> str | None:
    """``None`` when torch and torchvision are installed and recent enough, else what to do.

    Nothing is imported: this is what ``canExecute`` asks each time a dialog opens. ``advice=False``:
    only what is missing, without the terminal command (finding QGIS's Python runs a Python; QGIS's
    start-up asks this way).
    """
    problems = []
    for name, minimum in MINIMUM.items():
        found = installed_version(name)
        if found is None:
            problems.append(f"{name} (not installed)")
        elif found != "0+unknown" and _version_tuple(found) < minimum:
            problems.append(f"{name} {found} (too old; {'.'.join(map(str, minimum))} or newer is needed)")
    if not problems:
        return None
    message = "missing Python package(s): " + ", ".join(problems) + ". Install them from the QGIS menu Plugins ▸ " \
        "U-Net Segmentation ▸ Install PyTorch…"
    return message + (", or in a terminal: " + install_command() if advice else ".")


def llvm_loaded() -> bool:
    """Whether a shared LLVM library (Mesa's llvmpipe brings one) is mapped into this process."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any("libLLVM" in line for line in maps)
    except OSError:  # not Linux
        return False


def guard_compiler_stack() -> bool:
    """Keep triton out of this process where it would crash it; True when it was blocked.

    Only takes effect before triton is imported; see the module docstring for why.
    """
    forced = os.environ.get("UNET_BLOCK_TRITON", "").strip()
    if forced == "0":
        return False
    if forced != "1" and not llvm_loaded():
        return False
    blocked = False
    for name in COMPILER_MODULES:
        if name not in sys.modules:
            sys.modules[name] = None  # import → ImportError, find_spec → None: "not installed"
            blocked = True
    return blocked or all(sys.modules.get(n, 0) is None for n in COMPILER_MODULES)


def import_ml() -> str | None:
    """Import torch and torchvision behind the guard; ``None`` when they work, else a message.

    A failing import (missing native library, numpy built for another ABI, CUDA libraries
    missing) becomes a sentence for the user, never a traceback.
    """
    guard_compiler_stack()
    for name in MINIMUM:
        try:
            __import__(name)
        except Exception as exc:  # ImportError, OSError from a native library, SystemError, ...
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return (f"{name} is installed but cannot be loaded ({type(exc).__name__}: {first}). Install it again from "
                    f"the QGIS menu Plugins ▸ U-Net Segmentation ▸ Install PyTorch…, or in a terminal: {install_command()}")
    return None
