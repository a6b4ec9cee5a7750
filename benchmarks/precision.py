"""PRECISION=auto against full for Classify Raster (and Train U-Net), on trained models of the sample data.

Trains a U-Net on the NC Landsat strata chips (64-px chips; TIME_LIMIT minutes, from scratch),
then classifies the NC scene with PRECISION=full and auto in one run, and prints: the CPU and its
flags (AVX2 / AVX-512 / bf16 / VNNI), what auto chose and why, Mpx/s of each, and the share of
valid pixels where the two maps agree (the issue asks for >= 99 %), plus the validation mIoU of
the training under auto and full precision.

    python benchmarks/precision.py [--minutes 3] [--backbone resnet34] [--tile 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from _cpu import cpu_summary  # noqa: E402
DATA = os.path.join(ROOT, "tests", "data", "nc_landsat7")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--tile", type=int, default=64)
    args = ap.parse_args()
    import numpy as np
    from osgeo import gdal

    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_plugin.ml.train import TrainConfig, train

    print("CPU:", cpu_summary())
    image, strata = os.path.join(DATA, "nc_lsat7_2000_6band.tif"), os.path.join(DATA, "strata.tif")
    with tempfile.TemporaryDirectory(prefix="unet-precision-") as work:
        os.environ["UNET_CACHE_DIR"] = os.path.join(work, "cache")
        chips = os.path.join(work, "chips")
        export_chips(ExportConfig(input=image, output=chips, label_raster=strata, chip_size=64, stride=32))
        models = {}
        for precision in ("auto", "full"):
            logs = []
            path = os.path.join(work, f"{precision}.pt")
            r = train(TrainConfig(chips=chips, output_model=path, backbone=args.backbone, pretrained=False, epochs=200,
                                  time_limit=args.minutes, batch_size=8, precision=precision, early_stopping=0),
                      log=logs.append)
            models[precision] = path
            print(f"train PRECISION={precision}: {r.precision}, {r.epochs_run} epochs in {r.seconds:.0f} s, "
                  f"{np.mean([h['chips_per_second'] for h in r.history]):.1f} chips/s, validation mIoU {r.miou:.3f}")
        maps = {}
        # the first run of each exports (full) or quantises and checks (auto); the second is what later runs cost
        for precision in ("full", "full", "auto", "auto"):
            logs = []
            out = os.path.join(work, f"c_{precision}.tif")
            t0 = time.perf_counter()
            res = classify(ClassifyConfig(input=image, model=models["full"], output=out, tile_size=args.tile, overlap=25,
                                          precision=precision), log=logs.append)
            seconds = time.perf_counter() - t0
            mpx = gdal.Open(image).RasterXSize * gdal.Open(image).RasterYSize / 1e6
            choice = next((m for m in logs if m.startswith("Precision")), "")
            print(f"classify PRECISION={precision}: {res.engine}, {mpx / seconds:.3f} Mpx/s ({seconds:.1f} s)  {choice}")
            maps[precision] = gdal.Open(out).ReadAsArray()
        valid = maps["full"] != 255
        print(f"auto vs full: the maps agree on {100 * (maps['auto'] == maps['full'])[valid].mean():.2f} % of valid pixels")


if __name__ == "__main__":
    main()
