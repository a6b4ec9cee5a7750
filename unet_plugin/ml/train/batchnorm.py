"""Precise batch norm: the statistics of the weights as they are, before validating and saving them."""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import distributed

PRECISE_BN = os.environ.get("UNET_PRECISE_BN", "1") != "0"
PRECISE_BN_CHIPS = 64  # training chips whose batch statistics make the evaluation statistics


@torch.no_grad()
def recalibrate_batchnorm(model, data, batch_size: int, device, memory_format, chips: int = PRECISE_BN_CHIPS):
    """Batch-norm statistics of the weights as they are now, before validating and saving them.

    The running statistics that batch norm keeps while training are an exponential average over
    the last few dozen batches, each computed with the weights of its own step. With the large
    learning rates of the one-cycle warm-up and batches of 4–16 chips, the weights move faster
    than that average follows, and the model evaluated with the lagging statistics is another
    model than the one trained: validation losses of 14 or 68 where training loss is below 1.
    Here the statistics are recomputed as the plain mean over up to ``chips`` training chips (64: a few batches, a small share of an epoch)
    (un-augmented, spread evenly over the training chips, no gradients) with the current weights ("precise BN"). Layers
    that do not train (a frozen encoder) keep theirs. Under torchrun the processes' statistics
    are averaged, so all evaluate the same model.
    """
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
              and m.track_running_stats and any(p.requires_grad for p in m.parameters())]
    if not layers or len(data) == 0:
        return
    momenta = [m.momentum for m in layers]
    modes = {m: m.training for m in model.modules()}
    model.eval()  # everything else as in validation: dropout off, other statistics untouched
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
        m.train()
    try:
        n = min(len(data), max(chips, batch_size))
        n -= n % batch_size  # full batches (a batch of 1 has no variance)
        # spread over the whole training set (chips are stored in raster order: the first ones would be
        # one corner of the area, whose statistics are not the data's: mIoU 0.31 instead of 0.34 on NC)
        pick = np.unique(np.linspace(0, len(data) - 1, n).round().astype(int)).tolist()
        for s in range(0, len(pick), batch_size):
            x, _ = data.batch(pick[s:s + batch_size])
            model(x.to(device).contiguous(memory_format=memory_format))
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    if distributed.active():
        for m in layers:
            for buf in (m.running_mean, m.running_var):
                buf.copy_(torch.as_tensor(distributed.total(buf.double().cpu().numpy()) / distributed.world()).to(buf))
