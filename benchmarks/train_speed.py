"""Train U-Net throughput against a bare PyTorch training loop, and what each CPU setting gives.

In one run, on the same chips (exported from a synthetic 8-class raster: default 256 chips of
128 px, 3 bands) and the same model (U-Net resnet18, batch 8):

- chips/s of the training part of a full Train U-Net epoch (train(): batches from the chip
  tensors, augmentation, loss, optimiser, OneCycle schedule, progress, cancel checks), and of
  the whole epoch with validation, metrics and saving the best model;
- chips/s of a bare loop: the same model, optimiser and loss over the chips already in memory as
  one tensor, nothing else;
- the bare loop with each CPU setting on its own: default (fp32, contiguous), channels-last
  (what train() uses), one thread instead of all, and bf16 autocast where the CPU has bf16.

    python benchmarks/train_speed.py [--chips 256] [--chip 128] [--backbone resnet18] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from _cpu import cpu_summary  # noqa: E402

BATCH = 8


def make_chips(folder, n_chips, chip):
    import numpy as np
    from osgeo import gdal, osr

    from unet_plugin.core.chips import ExportConfig, export_chips

    side = int(np.ceil(np.sqrt(n_chips))) * chip
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    image, labels = os.path.join(folder, "image.tif"), os.path.join(folder, "labels.tif")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side]
    classes = ((np.sin(xx / 37.0) + np.cos(yy / 29.0) + 2) * 1.99).astype(np.uint8) + 1  # 8 classes, blobs
    img = gdal.GetDriverByName("GTiff").Create(image, side, side, 3, gdal.GDT_Byte, ["TILED=YES"])
    lab = gdal.GetDriverByName("GTiff").Create(labels, side, side, 1, gdal.GDT_Byte, ["TILED=YES"])
    for ds in (img, lab):
        ds.SetGeoTransform((500000, 1, 0, 5600000, 0, -1))
        ds.SetProjection(srs.ExportToWkt())
    for b in range(3):
        img.GetRasterBand(b + 1).WriteArray((classes * (40 + 10 * b) + rng.integers(0, 30, classes.shape)).astype(np.uint8))
    lab.GetRasterBand(1).WriteArray(classes)
    img = lab = ds = None  # close (and flush) both files
    out = os.path.join(folder, "chips")
    export_chips(ExportConfig(input=image, output=out, label_raster=labels, chip_size=chip))
    return out


def bare_loop(backbone, x, y, k, epochs, channels_last=True, threads=None, bf16=False):
    """Chips/s of forward + backward + AdamW over in-memory tensors (after one warm-up batch)."""
    import torch
    import torch.nn.functional as F

    from unet_plugin.ml.model.unet import UNet

    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        model = UNet(backbone, x.shape[1], k).to(memory_format=fmt).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        steps = len(x) // BATCH

        def step(i):
            xb = x[i * BATCH:(i + 1) * BATCH].contiguous(memory_format=fmt)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(xb), y[i * BATCH:(i + 1) * BATCH], ignore_index=255)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()

        step(0)
        t0 = time.perf_counter()
        for _ in range(epochs):
            for i in range(steps):
                step(i)
        return epochs * steps * BATCH / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old_threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chips", type=int, default=256)
    ap.add_argument("--chip", type=int, default=128)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    import torch

    from unet_plugin.core.chips import load_chip_dataset
    from unet_plugin.ml.train import TrainConfig, train
    from unet_plugin.ml.train.data import ChipTensors, classes_and_lut as _classes_and_lut

    with tempfile.TemporaryDirectory(prefix="unet-train-speed-") as work:
        chips = make_chips(work, args.chips, args.chip)
        res = train(TrainConfig(chips=chips, output_model=os.path.join(work, "m.pt"), backbone=args.backbone, pretrained=False,
                                epochs=args.epochs, batch_size=BATCH, learning_rate=1e-3, validation_percent=10,
                                early_stopping=0), log=lambda m: None)
        later = res.history[1:] or res.history  # the first epoch includes warm-up
        full_train = statistics.median(r["chips_per_second"] for r in later)
        steps_chips = (res.chips_train // BATCH) * BATCH
        full_epoch = statistics.median(steps_chips / r["seconds"] for r in later)

        data = load_chip_dataset(chips)
        classes, lut = _classes_and_lut(data)
        mean = np.array([s["mean"] for s in data.statistics])
        std = np.array([max(s["std"], 1e-6) for s in data.statistics])
        tensors = ChipTensors(data, list(range(res.chips_train)), lut, mean, std)
        x, y = tensors.cache[0], tensors.cache[1].long()
        print(f"{res.chips_train} training + {res.chips_val} validation chips of {args.chip} px, 3 bands, {len(classes)} classes; "
              f"U-Net {args.backbone}, batch {BATCH}; torch {torch.__version__}, {torch.get_num_threads()} threads.")
        bare = bare_loop(args.backbone, x, y, len(classes), args.epochs - 1 or 1)
        print(f"  bare loop (channels-last, in memory)        {bare:6.2f} chips/s")
        print(f"  Train U-Net, training part of an epoch      {full_train:6.2f} chips/s  "
              f"(overhead {100 * (bare / full_train - 1):+.1f} %)")
        print(f"  Train U-Net, whole epoch (+ validation,     {full_epoch:6.2f} chips/s  "
              f"(overhead {100 * (bare / full_epoch - 1):+.1f} %)")
        print("    metrics, saving the best model)")
        # PRECISION: auto (above) against full, same chips and settings
        full = train(TrainConfig(chips=chips, output_model=os.path.join(work, "f.pt"), backbone=args.backbone, pretrained=False,
                                 epochs=args.epochs, batch_size=BATCH, learning_rate=1e-3, validation_percent=10,
                                 early_stopping=0, precision="full"), log=lambda m: None)
        full_rate = statistics.median(r["chips_per_second"] for r in (full.history[1:] or full.history))
        print(f"PRECISION=auto ran {res.precision}: {full_train:6.2f} chips/s, validation mIoU {res.miou:.3f}; "
              f"PRECISION=full ran {full.precision}: {full_rate:6.2f} chips/s, mIoU {full.miou:.3f} "
              f"(auto/full {full_train / full_rate:.2f}×) on {cpu_summary()}")
        print("CPU settings, bare loop:")
        default = bare_loop(args.backbone, x, y, len(classes), 1, channels_last=False)
        print(f"  fp32 contiguous (PyTorch default)           {default:6.2f} chips/s  (1.00)")
        print(f"  fp32 channels-last                          {bare:6.2f} chips/s  ({bare / default:.2f})")
        one = bare_loop(args.backbone, x, y, len(classes), 1, threads=1)
        print(f"  channels-last, 1 thread                     {one:6.2f} chips/s  ({one / default:.2f})")
        flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
        if "avx512_bf16" in flags or "amx_bf16" in flags:
            bf = bare_loop(args.backbone, x, y, len(classes), 1, bf16=True)
            print(f"  channels-last, bf16 autocast                {bf:6.2f} chips/s  ({bf / default:.2f})")
        else:
            bf = bare_loop(args.backbone, x[: 4 * BATCH], y[: 4 * BATCH], len(classes), 1, bf16=True)
            print(f"  channels-last, bf16 autocast                {bf:6.2f} chips/s  ({bf / default:.2f}; "
                  "this CPU has no native bf16, so train() does not use it)")


if __name__ == "__main__":
    main()
