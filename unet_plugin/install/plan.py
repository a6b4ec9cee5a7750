"""What an install puts where: the pinned versions, the indexes they come from, the plan pip carries out."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field

#: versions tested together with this plugin (tests, benchmarks, the desktop)
PINS = {"torch": "2.14.1", "torchvision": "0.29.1"}

OPTIONAL_PINS = {"onnxruntime": "1.32.0", "onnx": "1.23.2"}

CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# PyPI's Windows torch is CPU-only; its CUDA builds are on PyTorch's index, for the CUDA version that
# PyPI's Linux build of the pinned torch carries (the real install here got torch 2.14.1+cu130)
CUDA_INDEX = "https://download.pytorch.org/whl/cu130"


class InstallError(Exception):
    """An install that cannot go ahead or failed; the message says what to do."""


@dataclass
class InstallPlan:
    """What will be installed, where, from where, with which Python."""

    target: str
    python: str
    packages: list[str]
    build: str = "cpu"  # "cpu" or "cuda"
    wheels: str | None = None
    index_url: str | None = None
    proxy: str | None = None
    extra_args: list[str] = field(default_factory=list)

    def pip_command(self, staging: str, constraints: str) -> list[str]:
        cmd = [self.python, "-m", "pip", "install", "--target", staging, "--no-input", "--disable-pip-version-check",
               "--progress-bar", "off", "--no-warn-script-location", "--constraint", constraints]
        if self.wheels:
            cmd += ["--no-index", "--find-links", self.wheels]
        else:
            if self.index_url:
                cmd += ["--index-url", self.index_url]
            elif self.build == "cpu" and platform.system() in ("Linux", "Windows"):
                cmd += ["--extra-index-url", CPU_INDEX]  # PyPI's Linux torch is the CUDA build (GBs)
            elif self.build == "cuda" and platform.system() == "Windows":
                cmd += ["--extra-index-url", CUDA_INDEX]
            if self.proxy:
                cmd += ["--proxy", self.proxy]
        return cmd + self.extra_args + self.packages


def requirements(build: str = "cpu", with_onnx: bool = True, wheels: str | None = None,
                 index_url: str | None = None) -> list[str]:
    """The pinned requirements. CPU builds from PyTorch's index carry a ``+cpu`` local version on
    Linux and Windows; from a wheel folder or another index (a company's PyPI mirror), whatever build
    it holds under the plain version is taken."""
    local = ""
    own_index = not wheels and not index_url
    if own_index and platform.system() in ("Linux", "Windows") and build == "cpu":
        local = "+cpu"
    elif own_index and platform.system() == "Windows" and build == "cuda":
        local = "+" + CUDA_INDEX.rsplit("/", 1)[1]
    reqs = [f"torch=={PINS['torch']}{local}", f"torchvision=={PINS['torchvision']}{local}"]
    if with_onnx:
        reqs += [f"{name}=={version}" for name, version in OPTIONAL_PINS.items()]
    return reqs


def download_command(dest: str, platform_tag: str | None = None, python_version: str | None = None,
                     build: str = "cpu") -> str:
    """The command that downloads the wheels for a target machine into ``dest``, to carry over.

    ``platform_tag``: e.g. ``win_amd64``, ``manylinux_2_28_x86_64``, ``macosx_11_0_arm64``
    (default: this machine's); ``python_version``: QGIS's Python there, e.g. ``3.12``.
    """
    pv = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    parts = ["python3", "-m", "pip", "download", "--only-binary=:all:", "--dest", dest, "--python-version", pv]
    if platform_tag:
        parts += ["--platform", platform_tag]
    target_system = platform_tag or platform.system().lower()
    if build == "cpu" and ("win" in target_system or "linux" in target_system):
        parts += ["--extra-index-url", CPU_INDEX]
        local = "+cpu"
    else:
        local = ""
    parts += [f"torch=={PINS['torch']}{local}", f"torchvision=={PINS['torchvision']}{local}"]
    parts += [f"{n}=={v}" for n, v in OPTIONAL_PINS.items()]
    return " ".join(f'"{p}"' if " " in p or "<" in p else p for p in parts)
