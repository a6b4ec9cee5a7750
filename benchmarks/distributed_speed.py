"""Train U-Net and Classify Raster with one process and under torchrun with several, on this machine.

Runs the command line as a user would (``python -m unet_plugin`` and ``torchrun --standalone
--nproc_per_node=N -m unet_plugin``) on the same chips (exported from a synthetic 8-class raster
by train_speed.make_chips) and the same raster, and prints:

- training chips/s (from the epoch log lines: the training part of epochs 2.., all processes
  together) and wall time, per process count;
- classification Mpx/s and wall time per process count, and whether the maps are identical;
- the CPU (``lscpu``), and the GPU when there is one (then the GPU run uses DEVICE=cuda).

On a 2-core CPU, 2 processes cannot be faster than 1 (each gets one core): the figure shows
the overhead of the gradient exchange (gloo). On a GPU server, N processes use N GPUs.

    python benchmarks/distributed_speed.py [--procs 1 2] [--chips 128] [--chip 128] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)


def command(procs: int) -> list[str]:
    if procs <= 1:
        return [sys.executable, "-m", "unet_plugin"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "unet_plugin"]


def run(procs: int, args: list[str]) -> tuple[str, float]:
    env = dict(os.environ)
    if procs > 1:
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // procs)))
    t0 = time.perf_counter()
    done = subprocess.run(command(procs) + args, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"failed ({procs} processes):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--chips", type=int, default=128)
    ap.add_argument("--chip", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--batch", type=int, default=8)
    a = ap.parse_args()

    import numpy as np
    import torch
    from osgeo import gdal

    from _cpu import cpu_summary
    from train_speed import make_chips

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    device = "cuda" if gpu else "cpu"
    print(f"CPU: {cpu_summary()}" + (f"; GPU: {gpu} ×{torch.cuda.device_count()}" if gpu else ""))
    with tempfile.TemporaryDirectory(prefix="unet-dist-") as tmp:
        chips = make_chips(tmp, a.chips, a.chip)
        image = os.path.join(tmp, "image.tif")
        print(f"{a.chips} chips of {a.chip} px, U-Net {a.backbone}, batch {a.batch} per process, {a.epochs} epochs, DEVICE={device}")
        print(f"{'processes':>9}  {'train chips/s':>13}  {'train wall s':>12}  {'classify Mpx/s':>14}  {'classify wall s':>15}")
        maps = {}
        for n in a.procs:
            model = os.path.join(tmp, f"m{n}.pt")
            out, wall = run(n, ["trainunet", f"CHIPS={chips}", f"BACKBONE={a.backbone}", "PRETRAINED=false",
                                f"EPOCHS={a.epochs}", f"BATCH_SIZE={a.batch}", "LEARNING_RATE=0.001", "EARLY_STOPPING=0",
                                "VALIDATION_PERCENT=10", f"DEVICE={device}", f"OUTPUT_MODEL={model}"])
            rates = [float(m) for m in re.findall(r"([\d.]+) chips/s\]", out)]
            rate = statistics.median(rates[1:] or rates)
            # classification: always with the one-process model, so the maps can be compared
            source = os.path.join(tmp, f"m{a.procs[0]}.pt")
            maps[n] = os.path.join(tmp, f"map{n}.tif")
            cout, cwall = run(n, ["classifyraster", f"INPUT={image}", f"MODEL={source}", "OVERLAP=0", "PRECISION=full",
                                  f"DEVICE={device}", f"OUTPUT={maps[n]}"])
            mpx = float(re.search(r"\(([\d.]+) Mpx/s\)", cout).group(1))
            print(f"{n:>9}  {rate:>13.1f}  {wall:>12.1f}  {mpx:>14.2f}  {cwall:>15.1f}")
        first = gdal.Open(maps[a.procs[0]]).ReadAsArray()
        for n in a.procs[1:]:
            same = bool(np.array_equal(first, gdal.Open(maps[n]).ReadAsArray()))
            print(f"map with {n} processes identical to {a.procs[0]}: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
