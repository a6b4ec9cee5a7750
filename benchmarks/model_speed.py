"""Forward speed of our U-Net against segmentation_models_pytorch's Unet, same encoder, same run.

Prints, for resnet18 and resnet34 at 256×256 on the CPU: images/s of both, their ratio, parameter
counts, and what channels-last and bf16 autocast give our model. smp is a development-only
dependency (`pip install segmentation-models-pytorch`).

    python benchmarks/model_speed.py [--batch 4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

ROOT_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT_PARENT)
from unet_plugin.ml.model.unet import UNet  # noqa: E402


def images_per_second(model, x, seconds, autocast=False):
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model(x)  # warm-up
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model(x)
            n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        smp = None
        print("segmentation_models_pytorch is not installed: only our U-Net is measured")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, 256×256, 3 bands, 8 classes")
    print(f"{'backbone':10} {'ours img/s':>11} {'smp img/s':>10} {'ours/smp':>9} {'ours params':>12} {'smp params':>11} "
          f"{'ours CL':>8} {'ours bf16':>10}")
    for name in ("resnet18", "resnet34"):
        x = torch.randn(args.batch, 3, 256, 256)
        ours = UNet(name, 3, 8).eval()
        ours_ips = images_per_second(ours, x, args.seconds)
        cl = ours.to(memory_format=torch.channels_last)
        cl_ips = images_per_second(cl, x.contiguous(memory_format=torch.channels_last), args.seconds)
        bf16_ips = images_per_second(cl, x.contiguous(memory_format=torch.channels_last), args.seconds, autocast=True)
        ours_params = sum(p.numel() for p in ours.parameters())
        if smp is not None:
            ref = smp.Unet(name, encoder_weights=None, in_channels=3, classes=8).eval()
            smp_ips = images_per_second(ref, x, args.seconds)
            smp_params = sum(p.numel() for p in ref.parameters())
            print(f"{name:10} {ours_ips:11.2f} {smp_ips:10.2f} {ours_ips / smp_ips:9.2f} {ours_params:12,} {smp_params:11,} "
                  f"{cl_ips:8.2f} {bf16_ips:10.2f}")
        else:
            print(f"{name:10} {ours_ips:11.2f} {'-':>10} {'-':>9} {ours_params:12,} {'-':>11} {cl_ips:8.2f} {bf16_ips:10.2f}")


if __name__ == "__main__":
    main()
