"""Which arithmetic a run uses: decided per machine at run time, never assumed.

CPUs of one kind differ: on one with native bf16 (AVX-512 BF16 or AMX) bf16 autocast roughly
doubles a ResNet U-Net's training speed; on an AVX2-only CPU it is emulated and 5–10× slower.
So ``auto`` takes bf16 only where the CPU reports native bf16 *and* a short measured probe
(a few forward passes of the model itself, well under a second on such a CPU) shows it faster
than float32; on CUDA it takes float16 mixed precision. ``full`` is float32 throughout.
"""

from __future__ import annotations

import time

import torch

from ..device import check_precision, cpu_has_native_bf16

_PROBES: dict = {}  # (model kind, input shape) → (bf16 seconds, fp32 seconds), per process


def _seconds(fn, repeats: int = 2) -> float:
    fn()  # warm-up: kernels chosen, memory allocated
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def bf16_probe(model: torch.nn.Module, sample: torch.Tensor) -> tuple[float, float]:
    """Seconds per forward pass of ``model`` on ``sample`` under bf16 autocast and in float32."""
    key = (type(model).__name__, getattr(model, "backbone", ""), tuple(sample.shape))
    if key not in _PROBES:
        was_training = model.training
        model.eval()
        x = sample.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            def bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    model(x)
            fp32 = _seconds(lambda: model(x))
            half = _seconds(bf16)
        model.train(was_training)
        _PROBES[key] = (half, fp32)
    return _PROBES[key]


def training_precision(requested: str, device: torch.device, model: torch.nn.Module | None = None,
           sample: torch.Tensor | None = None, log=lambda m: None) -> str:
    """``"bf16"``, ``"fp16"`` or ``"fp32"`` for ``requested`` (``auto`` / ``full``) on ``device``; logs why."""
    if check_precision(requested) == "full":
        log("Precision: float32 throughout (PRECISION=full).")
        return "fp32"
    if device.type == "cuda":
        log("Precision: float16 mixed precision on the GPU (PRECISION=auto).")
        return "fp16"
    if not cpu_has_native_bf16():
        log("Precision: float32 (this CPU has no native bf16; emulated bf16 would be several times slower).")
        return "fp32"
    if model is None or sample is None:
        log("Precision: bf16 autocast (native bf16 on this CPU).")
        return "bf16"
    t0 = time.perf_counter()
    half, full = bf16_probe(model, sample)
    probe = time.perf_counter() - t0
    if half < full:
        log(f"Precision: bf16 autocast — native bf16 on this CPU, measured {full / half:.2f}× faster than float32 "
            f"(probe {probe:.1f} s).")
        return "bf16"
    log(f"Precision: float32 — bf16 was not faster here (bf16 {half * 1e3:.0f} ms vs float32 {full * 1e3:.0f} ms per "
        f"pass; probe {probe:.1f} s).")
    return "fp32"


def autocast(kind: str, device: torch.device):
    """The autocast context for a chosen precision (a no-op for fp32)."""
    if kind == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if kind == "fp16":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)
