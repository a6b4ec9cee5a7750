"""Faster arithmetic for Classify Raster, used only where it draws the same map.

``PRECISION=auto`` on a CPU tries, next to the float32 forward pass:

- **int8**: the model's ONNX graph quantised statically (onnxruntime, QDQ, per-channel int8
  weights, uint8 activations), calibrated on tiles of the raster itself, chosen deterministically
  (evenly spread over the tile grid, mostly valid pixels): the same raster and model give the same
  graph and so the same map every time. The quantised graph is cached beside the float32 graphs,
  keyed by the model file's content, tile shape, calibration tiles and library versions.
- **bf16**: PyTorch bf16 autocast, only on CPUs with native bf16 (:mod:`..device`).

A candidate is used only when, on check tiles that were not used for calibration, its classes
agree with float32 on at least ``CHECK_AGREEMENT`` of the valid pixels (a margin above the 99 % the map
must reach) *and* it measures faster
than float32 there. Small jobs do not pay for the check: below ``MIN_TILES`` tiles only an
already-quantised graph is considered. Speed is measured, and a busy machine measures differently
each time, so the decision itself is kept in the cache folder beside the graphs: the same raster,
model, tile shape, thread count and libraries get the same arithmetic, and so the same map, in every
later session (delete the ``-decision.json`` file to measure again). ``PRECISION=full`` is float32 throughout. On CUDA, auto is
float16 (as before).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings

import numpy as np
import torch

from .. import distributed
from ..device import cpu_has_native_bf16
from .onnx_cache import OnnxForward, onnx_cache_dir, open_session, prune

MIN_AGREEMENT = 0.99  # what the map must reach
# what the check tiles must reach: a margin for the rest of the map (a trained NC model's int8 graph
# agreed on 99.06 % of 4 check tiles and on 98.97 % of the whole map: the margin keeps such a one out)
CHECK_AGREEMENT = 0.993
MIN_TILES = 48  # below this a first quantisation (seconds) would not pay off
CALIBRATION_TILES = 16  # every other one calibrates, the rest check
KEPT_DECISIONS = 64  # decisions kept between sessions (tiny files; the least recently made go first)
_DECISIONS: dict = {}  # (model digest, tile shape, calibration digest, threads) → (kind, runner or None, message)
_LOCK = threading.Lock()


def sample_tiles(read_tile, rows: list[int], cols: list[int], count: int = CALIBRATION_TILES):
    """``count`` tiles evenly spread over the tile grid, each at least half valid: ``(tiles, valid masks)``.

    ``read_tile(row, col)`` returns a normalised tile (bands, h, w) and its valid mask.
    """
    grid = [(r, c) for r in rows for c in cols]
    step = max(1, len(grid) // (count * 3))
    tiles, masks = [], []
    for r, c in grid[::step]:
        x, valid = read_tile(r, c)
        if valid.mean() >= 0.5:
            tiles.append(x)
            masks.append(valid)
        if len(tiles) == count:
            break
    return tiles, masks


def _digest(tiles) -> str:
    h = hashlib.sha256()
    for t in tiles:
        h.update(np.ascontiguousarray(t, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


def _quantize(fp32_path: str, out_path: str, calibration: list[np.ndarray]) -> None:
    """Static QDQ quantisation of ``fp32_path`` into ``out_path`` (written whole, via a temporary file)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {"input": x[None].astype(np.float32)}

    partial = f"{out_path}.{os.getpid()}.{threading.get_ident()}"
    pre = partial + ".pre.onnx"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(fp32_path, pre, skip_symbolic_shape=True)
            quantize_static(pre, partial + ".onnx", Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(partial + ".onnx", out_path)
    finally:
        for p in (pre, partial + ".onnx"):
            if os.path.exists(p):
                os.remove(p)


def _timed_argmax(forward, x: torch.Tensor) -> tuple[np.ndarray, float]:
    forward(x[:1])  # warm-up
    t0 = time.perf_counter()
    out = forward(x)
    return out.float().argmax(1).numpy(), time.perf_counter() - t0


def _int8_path(meta: dict, th: int, tw: int, tiles_digest: str) -> str:
    """The cached int8 graph of a model file, tile shape, calibration tiles and library versions."""
    import onnxruntime as ort

    versions = f"{torch.__version__}|{ort.__version__}"
    qkey = hashlib.sha256(f"{meta['file_sha256']}|{th}|{tw}|{tiles_digest}|{versions}|int8".encode()).hexdigest()[:32]
    return os.path.join(onnx_cache_dir(), qkey + "-int8.onnx")


def _int8_forward(qpath: str, threads: int):
    import onnxruntime as ort

    return OnnxForward(open_session(qpath, threads), ort.__version__, "int8")


def _bf16_forward(model: torch.nn.Module):
    cl = model.to(memory_format=torch.channels_last)

    def bf16_forward(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl(x.contiguous(memory_format=torch.channels_last)).float()
    return bf16_forward


def faster_forward(fp32_forward, fp32_name: str, model: torch.nn.Module, meta: dict, th: int, tw: int, threads: int,
           tiles: list[np.ndarray], masks: list[np.ndarray], n_tiles: int, onnx_graph: str | None, log):
    """The forward pass to use and its name: a faster one where it agrees with float32, else float32.

    Under torchrun rank 0 decides (timings differ between processes) and the others follow, so
    every process draws its rows of the map with the same arithmetic.
    """
    if not distributed.active():
        return _choose(fp32_forward, fp32_name, model, meta, th, tw, threads, tiles, masks, n_tiles, onnx_graph, log)[:2]
    if distributed.is_main():
        forward, name, kind = _choose(fp32_forward, fp32_name, model, meta, th, tw, threads, tiles, masks, n_tiles,
                                      onnx_graph, log)
        distributed.agree(kind)  # the int8 graph, if chosen, is in the cache by now
        return forward, name
    kind = distributed.agree(None)
    if kind == "int8":
        return _int8_forward(_int8_path(meta, th, tw, _digest(tiles)), threads), f"{fp32_name} (int8)"
    if kind == "bf16":
        return _bf16_forward(model), f"{fp32_name} (bf16)"
    return fp32_forward, fp32_name


def _decision_path(key: tuple) -> str:
    """Where the decision for ``key`` is kept between sessions (keyed like the int8 graph, plus threads)."""
    import onnxruntime as ort

    text = "|".join(str(k) for k in key) + f"|{torch.__version__}|{ort.__version__}|bf16={cpu_has_native_bf16()}|{CHECK_AGREEMENT}"
    return os.path.join(onnx_cache_dir(), hashlib.sha256(text.encode()).hexdigest()[:32] + "-decision.json")


def _remembered(key, qpath, model, log):
    """(kind, runner, message) decided in this session or an earlier one, or None."""
    with _LOCK:
        hit = _DECISIONS.get(key)
    if hit is not None:
        log(hit[2] + " (decided earlier in this session)")
        return hit
    if qpath is None:  # no onnxruntime: nothing was measured against it, nothing kept
        return None
    path = _decision_path(key)
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        kind, message = saved["kind"], saved["message"]
        if kind == "int8" and os.path.isfile(qpath):
            runner = _int8_forward(qpath, key[4])
        elif kind == "bf16" and cpu_has_native_bf16():
            runner = _bf16_forward(model)
        elif kind == "fp32":
            runner = None
        else:
            return None  # the graph was removed or the CPU changed: measure again
    except (OSError, TypeError, ValueError, KeyError):
        return None
    hit = (kind, runner, message)
    with _LOCK:
        _DECISIONS[key] = hit
    log(f"{message} (decided earlier on this machine; delete {path} to measure again)")
    return hit


def _remember(key, qpath, hit) -> None:
    with _LOCK:
        _DECISIONS[key] = hit
    if qpath is None:
        return
    path = _decision_path(key)
    partial = f"{path}.{os.getpid()}.{threading.get_ident()}"
    try:
        with open(partial, "w", encoding="utf-8") as f:
            json.dump({"kind": hit[0], "message": hit[2]}, f)
        os.replace(partial, path)
        prune(os.path.dirname(path), "-decision.json", KEPT_DECISIONS)
    except OSError:  # a read-only cache: the decision holds for this session only
        if os.path.exists(partial):
            os.remove(partial)


def _measure(fp32_forward, candidates, check, check_masks):
    """(best (kind, forward) or None, notes) on the check tiles."""
    x = torch.from_numpy(np.stack(check))
    valid = np.stack(check_masks)
    with torch.inference_mode():
        reference, t_ref = _timed_argmax(fp32_forward, x)
        best, best_time, notes = None, t_ref, []
        for kind, forward in candidates:
            classes, seconds = _timed_argmax(forward, x)
            agree = float((classes == reference)[valid].mean())
            notes.append(f"{kind}: agrees with float32 on {100 * agree:.2f} % of pixels, {t_ref / seconds:.2f}× its speed")
            if agree >= CHECK_AGREEMENT and seconds < best_time:
                best, best_time = (kind, forward), seconds
    return best, notes


def _choose(fp32_forward, fp32_name, model, meta, th, tw, threads, tiles, masks, n_tiles, onnx_graph, log):
    """(forward, name, kind) of the fastest arithmetic that agrees with float32 on this machine."""
    if len(tiles) < 2:
        return fp32_forward, fp32_name, "fp32"
    calib, check = tiles[0::2], tiles[1::2]
    key = (meta["file_sha256"], th, tw, _digest(tiles), threads)
    qpath = _int8_path(meta, th, tw, key[3]) if onnx_graph is not None else None
    hit = _remembered(key, qpath, model, log)
    if hit is not None:
        kind, runner, _ = hit
        return (runner, f"{fp32_name} ({kind})", kind) if runner is not None else (fp32_forward, fp32_name, "fp32")

    cached = qpath is not None and os.path.isfile(qpath)
    if n_tiles < MIN_TILES and not cached:
        return fp32_forward, fp32_name, "fp32"
    t0 = time.perf_counter()
    candidates = []
    if qpath is not None:
        try:
            if not cached:
                os.makedirs(onnx_cache_dir(), exist_ok=True)
                _quantize(onnx_graph, qpath, calib)
            candidates.append(("int8", _int8_forward(qpath, threads)))
        except Exception as exc:  # an operator the quantiser cannot handle, no writable cache: float32 it is
            log(f"int8 not used ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}).")
    if cpu_has_native_bf16():
        candidates.append(("bf16", _bf16_forward(model)))
    if not candidates:
        return fp32_forward, fp32_name, "fp32"
    best, notes = _measure(fp32_forward, candidates, check, masks[1::2])
    spent = time.perf_counter() - t0
    if best is None:
        message = (f"Precision: float32 — no faster arithmetic draws the same map here ({'; '.join(notes)}; needed "
                   f"≥ {100 * CHECK_AGREEMENT:.1f} % on the check tiles, for ≥ {100 * MIN_AGREEMENT:.0f} % on the map, and "
                   f"faster; checked in {spent:.1f} s).")
    else:
        message = (f"Precision: {best[0]} ({'; '.join(notes)}; checked on {len(check)} tiles not used for calibration "
                   f"in {spent:.1f} s).")
    log(message)
    _remember(key, qpath, (best[0], best[1], message) if best else ("fp32", None, message))
    return (best[1], f"{fp32_name} ({best[0]})", best[0]) if best else (fp32_forward, fp32_name, "fp32")
