"""Where a run computes: the device (DEVICE parameter) and what this CPU can do natively.

Decided at run time, never assumed: CPUs of one kind differ (some have native bf16 and VNNI,
some only AVX2), and a GPU may or may not be visible to PyTorch.
"""

from __future__ import annotations

import torch

from ..core.errors import UserInputError
from ..params import DEVICES, PRECISIONS
from . import distributed


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else the CPU; ``cuda`` without CUDA is the user's error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserInputError("DEVICE", "CUDA was asked for but no CUDA GPU is available to PyTorch; choose 'auto' or 'cpu'.")
    if name in ("auto", "cuda") and torch.cuda.is_available():
        # under torchrun each process has its own GPU (distributed.init chose it)
        return torch.device("cuda", torch.cuda.current_device()) if distributed.active() else torch.device("cuda")
    if name not in DEVICES:
        raise UserInputError("DEVICE", f"unknown device '{name}'; choose {', '.join(DEVICES[:-1])} or {DEVICES[-1]}.")
    torch.set_num_threads(distributed.cpu_threads())
    return torch.device("cpu")


def cpu_flags() -> set[str]:
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX tiles)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def check_precision(requested: str) -> str:
    """PRECISION as given, when it is one of the names the parameter offers (the one check of it)."""
    if requested not in PRECISIONS:
        raise UserInputError("PRECISION", f"unknown precision '{requested}'; choose {' or '.join(PRECISIONS)}.")
    return requested
