"""The forward pass Classify Raster runs: onnxruntime or PyTorch, at the precision PRECISION allows."""

from __future__ import annotations

import time

import torch

from ...core.errors import UserInputError
from .. import distributed
from . import precision
from .config import ClassifyConfig
from .onnx_cache import OnnxForward


def forward_engine(model, meta: dict, config: ClassifyConfig, device: torch.device, th: int, tw: int, n_tiles: int, log,
                   calibration=None):
    """The callable that runs the model on a batch, and its name for the log.

    On the CPU, onnxruntime when it is installed and worth its start-up (the graph is cached
    already, or there are enough tiles to repay a second or two of export) and the tile shape
    survives TTA's rotations; otherwise PyTorch (channels-last on the CPU, half precision on CUDA).
    """
    channels = int(meta["in_channels"])
    # under torchrun rank 0's answer counts: a graph cached a moment ago by another process must not
    # make one process run another engine (the map must equal a single process's)
    if distributed.agree(device.type == "cpu" and config.engine in ("auto", "onnxruntime") and (th == tw or not config.tta)
                         and (n_tiles >= 16 or config.engine == "onnxruntime"
                              or OnnxForward.is_cached(meta["file_sha256"], channels, th, tw))):
        try:
            t0 = time.perf_counter()
            runner = OnnxForward.prepare(model, meta["file_sha256"], channels, th, tw, torch.get_num_threads())
            log(f"Model prepared for onnxruntime in {time.perf_counter() - t0:.1f} s ({runner.source}).")
            return _faster(runner, f"onnxruntime {runner.version}", model, meta, config, th, tw, n_tiles, log,
                           calibration, runner.path)
        except ImportError:
            if config.engine == "onnxruntime":
                raise UserInputError("DEVICE", "onnxruntime is not installed; install it with pip or use PyTorch.") from None
            log("Tip: with onnxruntime installed (pip install onnxruntime), classification on the CPU is about 1.3× "
                "faster, and PRECISION=auto can use int8 where it draws the same map (another 1.35× end to end, measured "
                "on an AVX2 CPU).")
        except Exception as exc:  # an operator the exporter cannot handle: PyTorch still works
            log(f"onnxruntime not used ({type(exc).__name__}: {exc}); classifying with PyTorch.")
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
        forward = (lambda x: model(x.contiguous(memory_format=torch.channels_last)))
        return _faster(forward, f"PyTorch {torch.__version__.split('+')[0]}", model, meta, config, th, tw, n_tiles, log,
                       calibration, None)
    if config.precision == "full":
        return (lambda x: model(x)), f"PyTorch {torch.__version__.split('+')[0]} (CUDA, float32)"

    def cuda_forward(x):
        with torch.autocast("cuda", dtype=torch.float16):
            return model(x).float()
    return cuda_forward, f"PyTorch {torch.__version__.split('+')[0]} (CUDA, half precision)"


def _faster(forward, name, model, meta, config, th, tw, n_tiles, log, calibration, graph):
    """With PRECISION=auto on a CPU, a faster arithmetic that draws the same map (:mod:`.precision`)."""
    if config.precision != "auto" or calibration is None or (config.tta and th != tw):
        if config.precision == "full":
            log("Precision: float32 throughout (PRECISION=full).")
        return forward, name
    tiles, masks = calibration()
    return precision.faster_forward(forward, name, model, meta, th, tw, torch.get_num_threads(), tiles, masks,
                                      n_tiles, graph, log)
