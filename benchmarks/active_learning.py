"""Does labelling where the model is unsure help? Suggest Areas to Label against random windows.

A simulated analyst on the NC Landsat scene, with the 7-class land-cover raster as the truth: the
labels inside every window the analyst "draws" come from it. The right third of the scene is kept
out as the test area; windows are chosen in the rest.

Every strategy starts from the same few random windows (per seed). Each round: export the labelled
windows (LABEL_RASTER = truth, MASK = the windows, UNLABELED=ignore), train a U-Net for the same
time, classify the test area and measure its mean IoU against the truth; then COUNT new windows are
chosen — by Suggest Areas to Label (``uncertainty``, ``diverse``) or at random — and the next round
trains on all windows so far. Prints the mean IoU per round, strategy and seed, the averages, and
writes the curves as a PNG.

    python benchmarks/active_learning.py [--rounds 3] [--count 4] [--start 4] [--seeds 2] [--minutes 0.75] [--png docs/active_learning.png]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from _cpu import cpu_summary  # noqa: E402

NC = os.path.join(ROOT, "tests", "data", "nc_landsat7")
IMAGE, TRUTH = os.path.join(NC, "nc_lsat7_2000_6band.tif"), os.path.join(NC, "strata.tif")
SIZE = 32   # windows the analyst labels (32 px = 0.9 km); chips of CHIP px are cut around them
CHIP = 64


def windows_to_polygons(path, wkt, gt, windows):
    from osgeo import ogr

    from unet_plugin.core.labels import write_polygons

    polys = []
    for r, c in windows:
        x0, y0 = gt[0] + c * gt[1], gt[3] + r * gt[5]
        x1, y1 = x0 + SIZE * gt[1], y0 + SIZE * gt[5]
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        polys.append((poly.ExportToWkb(), 1))
    write_polygons(path, wkt, polys)


def random_windows(rng, valid, pool_cols, taken, count):
    out = []
    tries = 0
    while len(out) < count and tries < 10000:
        tries += 1
        r, c = int(rng.integers(0, valid.shape[0] - SIZE)), int(rng.integers(0, pool_cols - SIZE))
        if valid[r:r + SIZE, c:c + SIZE].mean() < 0.75:
            continue
        if any(abs(r - r2) < SIZE and abs(c - c2) < SIZE for r2, c2 in taken + out):
            continue
        out.append((r, c))
    return out


def test_miou(class_map: str, pool_cols: int) -> float:
    """Mean IoU of the map on the test area against the truth, over the 7 classes (a class the model
    never learnt counts with IoU 0 where the truth has it)."""
    from osgeo import gdal

    from unet_plugin.core.metrics import confusion, scores

    mapped = gdal.Open(class_map).ReadAsArray().astype(np.int64)
    truth = gdal.Open(TRUTH).ReadAsArray()[:, pool_cols:pool_cols + mapped.shape[1]]
    ok = (truth >= 1) & (truth <= 7) & (mapped >= 1) & (mapped <= 7)
    return scores(confusion(truth[ok].astype(np.int64) - 1, mapped[ok] - 1, 7))["miou"]


def run_strategy(strategy, seed, args, work, image_info):
    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_plugin.ml.suggest import SuggestConfig, suggest
    from unet_plugin.ml.train import TrainConfig, train

    wkt, gt, valid, pool_cols, test_extent, pool_extent = image_info
    rng = np.random.default_rng(seed)
    windows = random_windows(rng, valid, pool_cols, [], args.start)
    rng = np.random.default_rng(1000 + seed)  # the random strategy's own draws
    scores = []
    quiet = dict(log=lambda m: None)
    for rnd in range(args.rounds + 1):
        folder = os.path.join(work, f"{strategy}-{seed}-{rnd}")
        os.makedirs(folder)
        mask = os.path.join(folder, "windows.gpkg")
        windows_to_polygons(mask, wkt, gt, windows)
        chips = os.path.join(folder, "chips")
        export_chips(ExportConfig(input=IMAGE, output=chips, label_raster=TRUTH, mask=mask, unlabeled="ignore",
                                  chip_size=CHIP, stride=CHIP // 2), **quiet)
        model = os.path.join(folder, "m.pt")
        train(TrainConfig(chips=chips, output_model=model, backbone="resnet18", pretrained=False, time_limit=args.minutes,
                          seed=seed, validation_percent=0), **quiet)
        out = os.path.join(folder, "test.tif")
        classify(ClassifyConfig(input=IMAGE, model=model, output=out, extent=test_extent, precision="full"), **quiet)
        miou = test_miou(out, pool_cols)
        scores.append(miou)
        print(f"  {strategy:<12} seed {seed} round {rnd}: {len(windows):2d} windows, test mIoU {miou:.3f}", flush=True)
        if rnd == args.rounds:
            break
        if strategy == "random":
            windows += random_windows(rng, valid, pool_cols, windows, args.count)
        else:
            proposals, _, _ = suggest(SuggestConfig(input=IMAGE, model=model, count=args.count, strategy=strategy, window_size=SIZE,
                                                    existing_labels=mask, extent=pool_extent, precision="full", seed=seed),
                                      **quiet)
            windows += [(p.row, p.col) for p in proposals]
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--start", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=0.75)
    ap.add_argument("--png", default=os.path.join(ROOT, "docs", "active_learning.png"))
    args = ap.parse_args()
    from osgeo import gdal

    print(cpu_summary())
    ds = gdal.Open(IMAGE)
    gt, wkt = ds.GetGeoTransform(), ds.GetProjection()
    valid = (ds.ReadAsArray() != -99999).all(0) & (gdal.Open(TRUTH).ReadAsArray() >= 1)
    pool_cols = ds.RasterXSize * 2 // 3
    x_split = gt[0] + pool_cols * gt[1]
    y_min, y_max = gt[3] + ds.RasterYSize * gt[5], gt[3]
    test_extent = (x_split, y_min, gt[0] + ds.RasterXSize * gt[1], y_max)
    pool_extent = (gt[0], y_min, x_split, y_max)
    info = (wkt, gt, valid, pool_cols, test_extent, pool_extent)
    results = {}
    with tempfile.TemporaryDirectory(prefix="unet-al-") as work:
        for strategy in ("random", "uncertainty", "diverse"):
            results[strategy] = [run_strategy(strategy, seed, args, work, info) for seed in range(args.seeds)]
    labelled = [args.start + r * args.count for r in range(args.rounds + 1)]
    print("\nmean test mIoU by labelled windows (" + ", ".join(map(str, labelled)) + "):")
    for strategy, runs in results.items():
        mean = np.mean(runs, axis=0)
        print(f"  {strategy:<12} " + "  ".join(f"{v:.3f}" for v in mean))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no PNG)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, runs in results.items():
        runs = np.array(runs)
        ax.plot(labelled, runs.mean(0), marker="o", label=strategy)
        ax.fill_between(labelled, runs.min(0), runs.max(0), alpha=0.15)
    ax.set_xlabel(f"labelled windows ({SIZE} px)")
    ax.set_ylabel("test-area mean IoU")
    ax.set_title(f"NC Landsat, {args.seeds} seeds, {args.minutes:g} min training per round")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"curves: {args.png}")


if __name__ == "__main__":
    main()
