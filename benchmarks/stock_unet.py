"""A stock U-Net as a user would script it: segmentation-models-pytorch, a plain loop, the same chips.

The reference point for "is our recipe worth it": ``smp.Unet`` (the same backbone, no ImageNet
weights), Adam at 1e-3, cross-entropy ignoring label 255, random flips and 90° rotations, batch 8,
trained on every chip of the chip folder for the same wall-clock time as our TIME_LIMIT (no
validation, no learning-rate schedule, the last weights kept), then applied to a raster in
non-overlapping tiles. Per-band normalisation from the chip folder's own statistics, as ours.
Development-only (``pip install -r benchmarks/requirements.txt``).
"""

from __future__ import annotations

import time

import numpy as np


def _chips(folder: str):
    from osgeo import gdal

    from unet_plugin.core.chips import load_chip_dataset

    data = load_chip_dataset(folder)
    mean = np.array([s["mean"] for s in data.statistics], dtype=np.float32)[:, None, None]
    std = np.array([max(s["std"], 1e-6) for s in data.statistics], dtype=np.float32)[:, None, None]
    values = [c["value"] for c in data.classes]
    lut = np.full(256, 255, dtype=np.int64)
    lut[values] = np.arange(len(values))
    xs = np.stack([(gdal.Open(p).ReadAsArray().astype(np.float32).reshape(-1, data.chip_size, data.chip_size) - mean) / std
                   for p in data.image_paths])
    ys = np.stack([lut[gdal.Open(p).ReadAsArray().astype(np.int64)] for p in data.label_paths])
    return xs, ys, mean, std, values, data.chip_size


def train_and_classify(chips: str, image: str, minutes: float, backbone: str = "resnet34", seed: int = 42,
                       batch: int = 8) -> tuple[np.ndarray, dict]:
    """Train the stock U-Net on ``chips`` for ``minutes``, classify ``image``: (class values map, figures)."""
    import segmentation_models_pytorch as smp
    import torch
    from osgeo import gdal

    torch.manual_seed(seed)
    xs, ys, mean, std, values, size = _chips(chips)
    model = smp.Unet(backbone, encoder_weights=None, in_channels=xs.shape[1], classes=len(values))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=255)
    x_all, y_all = torch.from_numpy(xs), torch.from_numpy(ys)
    t0, steps = time.perf_counter(), 0
    model.train()
    while time.perf_counter() - t0 < minutes * 60:
        idx = torch.randint(0, len(x_all), (batch,))
        x, y = x_all[idx], y_all[idx]
        if torch.rand(1) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        k = int(torch.randint(0, 4, (1,)))
        x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
        opt.zero_grad()
        loss_fn(model(x.contiguous()), y.contiguous()).backward()
        opt.step()
        steps += 1
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.eval()
    src = gdal.Open(image).ReadAsArray().astype(np.float32)
    src = src.reshape(-1, *src.shape[-2:])
    h, w = src.shape[-2:]
    ph, pw = (-h) % size, (-w) % size
    padded = np.pad((src - mean) / std, ((0, 0), (0, ph), (0, pw)), mode="reflect")
    out = np.zeros(padded.shape[-2:], dtype=np.int64)
    with torch.inference_mode():
        for r in range(0, padded.shape[1], size):
            row = np.stack([padded[:, r:r + size, c:c + size] for c in range(0, padded.shape[2], size)])
            pred = model(torch.from_numpy(row)).argmax(1).numpy()
            for i, c in enumerate(range(0, padded.shape[2], size)):
                out[r:r + size, c:c + size] = pred[i]
    mapped = np.asarray(values)[out[:h, :w]]
    return mapped, dict(train=t_train, classify=time.perf_counter() - t0, steps=steps)
