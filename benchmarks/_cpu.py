"""The CPU a benchmark ran on, in one line: model, cores, and the flags that decide int8/bf16 speed."""

from __future__ import annotations

import os
import platform


def cpu_summary() -> str:
    from unet_plugin.ml.device import cpu_flags

    flags = cpu_flags()
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(have) or 'none of avx2/avx512/bf16/vnni'}"
