"""Does labelling where the model is unsure help? Suggest Areas to Label against random windows.

A simulated analyst with a dense truth raster: the labels inside every window the analyst "draws"
come from it. Two cases:

- ``--data nc``: the NC Landsat scene with the 7-class land-cover raster; the right third of the
  scene is kept out as the test area, windows (32 px) are chosen in the rest.
- ``--data dubai --dubai DIR``: Dubai aerial RGB at about 0.5 m (benchmarks/dubai.py), 5 classes;
  windows (128 px) are chosen in parts 1–2 of tiles 1–6, the test area is their part 7. It was not
  used to choose the ``diverse`` default (NC was): it is that choice's held-out check.
- ``--data befl``: the Belgian fields (Sentinel-2, 10 m, field / background). Truth exists only in
  the 64-px label windows, 11 of which lie in the image: windows (16 px) are chosen inside the 9
  marked 'train' — everything outside them is handed to Suggest Areas to Label as already labelled
  (EXISTING_LABELS), so it can only propose where the simulated analyst knows the answer —, the 2
  marked 'validation' are the test area. Also kept out of the choice of ``diverse``.

Every strategy starts from the same few random windows and the same first model (per seed). Each
round: COUNT new windows are chosen — by Suggest Areas to Label from the last round's model
(``uncertainty``, ``diverse``) or at random —, the labelled windows are exported (LABEL_RASTER =
truth, MASK = the windows, UNLABELED=ignore), a U-Net is trained on all of them for the same time,
the test area is classified and its mean IoU measured against the truth. Within a seed the
strategies take turns round by round. Prints the mean IoU per round, strategy and seed, the averages, and
writes the curves as a PNG.

    python benchmarks/active_learning.py [--data nc|dubai|befl] [--dubai DIR] [--rounds 3] [--count 4] [--start 4]
                                         [--seeds 2] [--first-seed 0] [--minutes 0.75] [--png docs/active_learning.png]
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
BEFL = os.path.join(ROOT, "tests", "data", "befl_fields_s2")
STRATEGIES = ("random", "uncertainty", "diverse")


class Case:
    """A raster with a dense truth, where windows are chosen (the pool) and where maps are scored (the test)."""

    def __init__(self, image, truth, classes, size, chip, pool, tests, valid, min_share=0.75, fence=()):
        from osgeo import gdal

        ds = gdal.Open(image)
        self.image, self.truth, self.classes, self.size, self.chip = image, truth, classes, size, chip
        self.gt, self.wkt = ds.GetGeoTransform(), ds.GetProjection()
        self.pool, self.tests = pool, tests  # (row0, row1, col0, col1) on the raster's grid; tests: a list of them
        self.valid = valid                   # where a window may lie: imagery and truth both there
        self.min_share = min_share           # the share of a random window that must be valid
        self.fence = list(fence)             # polygons (WKB) Suggest Areas to Label is told are labelled already

    def extent(self, box):
        r0, r1, c0, c1 = box
        gt = self.gt
        return (gt[0] + c0 * gt[1], gt[3] + r1 * gt[5], gt[0] + c1 * gt[1], gt[3] + r0 * gt[5])


def nc_case(args) -> Case:
    """NC: windows of 32 px (0.9 km) in the left two thirds, chips of 64 px around them; the right third tests."""
    from osgeo import gdal

    image, truth = os.path.join(NC, "nc_lsat7_2000_6band.tif"), os.path.join(NC, "strata.tif")
    ds = gdal.Open(image)
    valid = (ds.ReadAsArray() != -99999).all(0) & (gdal.Open(truth).ReadAsArray() >= 1)
    h, w = valid.shape
    pool_cols = w * 2 // 3
    return Case(image, truth, 7, 32, 64, (0, h, 0, pool_cols), [(0, h, pool_cols, w)], valid)


def dubai_case(args) -> Case:
    """Dubai RGB: windows of 128 px (64 m) in parts 1–2 of tiles 1–6, chips of 128 px; their part 7 tests."""
    from osgeo import gdal

    import dubai

    if not args.dubai:
        raise SystemExit("--data dubai needs --dubai DIR (the folder 'Semantic segmentation dataset').")
    pairs = dubai.parts(args.dubai, dubai.TUNING_TILES, (1, 2)) + dubai.parts(args.dubai, dubai.TUNING_TILES, (7,))
    image, truth = os.path.join(args.work, "dubai.tif"), os.path.join(args.work, "dubai_truth.tif")
    placed = dubai.canvas(pairs, image, truth, align=128, image_nodata=True)
    split = placed[12][0]  # the first test part's row
    ds = gdal.Open(image)
    valid = (ds.ReadAsArray() != 0).any(0) & (gdal.Open(truth).ReadAsArray() >= 1)
    h, w = valid.shape
    return Case(image, truth, 5, 128, 128, (0, split, 0, w), [(split, h, 0, w)], valid)


def befl_case(args) -> Case:
    """Belgian fields: windows of 16 px (160 m) inside the 'train' label windows, chips of 64 px; the
    'validation' windows test. Truth: 1 background, 2 field inside the label windows, 0 (unknown) elsewhere."""
    from accuracy import rasterize
    from osgeo import gdal, ogr

    image = os.path.join(BEFL, "befl_s2_b08_b04_b03.tif")
    ds = gdal.Open(image)
    h, w, gt = ds.RasterYSize, ds.RasterXSize, ds.GetGeoTransform()

    locations = os.path.join(BEFL, "fields_locations.gpkg")
    train, test = rasterize(image, locations, "traindata_type = 'train'"), rasterize(image, locations,
                                                                                      "traindata_type = 'validation'")
    fields = rasterize(image, os.path.join(BEFL, "fields_polygons.gpkg"))
    truth = os.path.join(args.work, "befl_truth.tif")
    out = gdal.GetDriverByName("GTiff").Create(truth, w, h, 1, gdal.GDT_Byte)
    out.SetGeoTransform(gt)
    out.SetProjection(ds.GetProjection())
    out.GetRasterBand(1).SetNoDataValue(0)
    out.GetRasterBand(1).WriteArray(np.where(train | test, np.where(fields, 2, 1), 0).astype(np.uint8))
    out = None
    src = ogr.Open(locations)
    layer = src.GetLayer(0)
    layer.SetAttributeFilter("traindata_type = 'train'")
    frame = ogr.CreateGeometryFromWkt(f"POLYGON(({gt[0]} {gt[3]},{gt[0] + w * gt[1]} {gt[3]},{gt[0] + w * gt[1]} "
                                      f"{gt[3] + h * gt[5]},{gt[0]} {gt[3] + h * gt[5]},{gt[0]} {gt[3]}))")
    for f in layer:
        frame = frame.Difference(f.GetGeometryRef())
    tests = []
    for rows in np.split(np.arange(h), np.flatnonzero(np.diff(test.any(1).astype(np.int8)) != 0) + 1):
        if not test[rows].any():
            continue
        cols = np.flatnonzero(test[rows].any(0))
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1):
            tests.append((int(rows[0]), int(rows[-1]) + 1, int(run[0]), int(run[-1]) + 1))
    return Case(image, truth, 2, 16, 64, (0, h, 0, w), tests, train, min_share=1.0, fence=[frame.ExportToWkb()])


def windows_to_polygons(path, wkt, gt, windows, size, extra=()):
    from osgeo import ogr

    from unet_plugin.core.labels import write_polygons

    polys = [(wkb, 1) for wkb in extra]
    for r, c in windows:
        x0, y0 = gt[0] + c * gt[1], gt[3] + r * gt[5]
        x1, y1 = x0 + size * gt[1], y0 + size * gt[5]
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        polys.append((poly.ExportToWkb(), 1))
    write_polygons(path, wkt, polys)


def random_windows(rng, case, taken, count):
    """``count`` windows at random in the pool, mostly valid, overlapping none taken."""
    out, tries, size = [], 0, case.size
    r0, r1, c0, c1 = case.pool
    while len(out) < count and tries < 10000:
        tries += 1
        r, c = int(rng.integers(r0, r1 - size)), int(rng.integers(c0, c1 - size))
        if case.valid[r:r + size, c:c + size].mean() < case.min_share:
            continue
        if any(abs(r - r2) < size and abs(c - c2) < size for r2, c2 in taken + out):
            continue
        out.append((r, c))
    return out


def test_miou(case, class_maps: list[str]) -> float:
    """Mean IoU of the maps of the test areas against the truth, over the case's classes (a class the
    model never learnt counts with IoU 0 where the truth has it)."""
    from osgeo import gdal

    from unet_plugin.core.metrics import confusion, scores

    k, total = case.classes, np.zeros((case.classes, case.classes), dtype=np.int64)
    full = gdal.Open(case.truth).ReadAsArray()
    for (r0, r1, c0, c1), class_map in zip(case.tests, class_maps):
        mapped = gdal.Open(class_map).ReadAsArray().astype(np.int64)
        truth = full[r0:r0 + mapped.shape[0], c0:c0 + mapped.shape[1]]
        ok = (truth >= 1) & (truth <= k) & (mapped >= 1) & (mapped <= k)
        total += confusion(truth[ok].astype(np.int64) - 1, mapped[ok] - 1, k)
    return scores(total)["miou"]


def train_round(tag, windows, seed, args, work, case):
    """Export the windows labelled so far (truth inside them, unknown outside), train for the same time,
    score the test area. Returns the model, its test mean IoU and the windows' polygons."""
    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_plugin.ml.train import TrainConfig, train

    quiet = dict(log=lambda m: None)
    folder = os.path.join(work, tag)
    os.makedirs(folder)
    mask = os.path.join(folder, "windows.gpkg")
    windows_to_polygons(mask, case.wkt, case.gt, windows, case.size)
    chips = os.path.join(folder, "chips")
    export_chips(ExportConfig(input=case.image, output=chips, label_raster=case.truth, mask=mask, unlabeled="ignore",
                              chip_size=case.chip, stride=case.chip // 2), **quiet)
    model = os.path.join(folder, "m.pt")
    train(TrainConfig(chips=chips, output_model=model, backbone="resnet18", pretrained=False, time_limit=args.minutes,
                      seed=seed, validation_percent=0), **quiet)
    maps = [os.path.join(folder, f"test{i}.tif") for i in range(len(case.tests))]
    for box, out in zip(case.tests, maps):
        classify(ClassifyConfig(input=case.image, model=model, output=out, extent=case.extent(box), precision="full"),
                 **quiet)
    return model, test_miou(case, maps), mask


def choose(strategy, rng, case, windows, model, mask, seed, args):
    """The next ``args.count`` windows: at random, or proposed by Suggest Areas to Label from the last model."""
    from unet_plugin.ml.suggest import SuggestConfig, suggest

    if strategy == "random":
        return random_windows(rng, case, windows, args.count)
    existing = mask
    if case.fence:  # the windows so far and everything the analyst has no truth for
        existing = mask.replace("windows.gpkg", "existing.gpkg")
        windows_to_polygons(existing, case.wkt, case.gt, windows, case.size, extra=case.fence)
    proposals, _, _ = suggest(SuggestConfig(input=case.image, model=model, count=args.count, strategy=strategy,
                                            window_size=case.size, existing_labels=existing,
                                            extent=case.extent(case.pool), precision="full", seed=seed),
                              log=lambda m: None)
    outside = [(p.row, p.col) for p in proposals
               if case.valid[p.row:p.row + p.size, p.col:p.col + p.size].mean() < case.min_share]
    if case.fence and outside:  # the simulated analyst could not label these: the benchmark would be unfair
        raise SystemExit(f"{strategy} proposed windows outside the known truth: {outside}")
    return [(p.row, p.col) for p in proposals]


def run_seed(seed, args, work, case) -> dict:
    """One seed: the same random start and the same first model for every strategy, then each strategy's
    rounds (strategies interleaved, so a change in the machine's load touches them alike)."""
    start = random_windows(np.random.default_rng(seed), case, [], args.start)
    model0, miou0, mask0 = train_round(f"start-{seed}", start, seed, args, work, case)
    print(f"  {'(start)':<12} seed {seed} round 0: {len(start):2d} windows, test mIoU {miou0:.3f}", flush=True)
    state = {s: (list(start), model0, mask0, [miou0], np.random.default_rng(1000 + seed)) for s in STRATEGIES}
    for rnd in range(1, args.rounds + 1):
        for strategy in STRATEGIES:
            windows, model, mask, scores, rng = state[strategy]
            windows = windows + choose(strategy, rng, case, windows, model, mask, seed, args)
            model, miou, mask = train_round(f"{strategy}-{seed}-{rnd}", windows, seed, args, work, case)
            scores.append(miou)
            state[strategy] = (windows, model, mask, scores, rng)
            print(f"  {strategy:<12} seed {seed} round {rnd}: {len(windows):2d} windows, test mIoU {miou:.3f}", flush=True)
    return {s: state[s][3] for s in STRATEGIES}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=("nc", "dubai", "befl"), default="nc")
    ap.add_argument("--dubai", help="the folder 'Semantic segmentation dataset' (benchmarks/dubai.py)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--start", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0, help="to add seeds to an earlier run: its --seeds")
    ap.add_argument("--minutes", type=float, default=0.75)
    ap.add_argument("--png", default=os.path.join(ROOT, "docs", "active_learning.png"))
    args = ap.parse_args()
    print(cpu_summary())
    results = {}
    with tempfile.TemporaryDirectory(prefix="unet-al-") as work:
        args.work = work
        case = {"nc": nc_case, "dubai": dubai_case, "befl": befl_case}[args.data](args)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for strategy, scores in run_seed(seed, args, work, case).items():
                results.setdefault(strategy, []).append(scores)
    labelled = [args.start + r * args.count for r in range(args.rounds + 1)]
    print("\nmean test mIoU by labelled windows (" + ", ".join(map(str, labelled)) + "):")
    for strategy, runs in results.items():
        mean = np.mean(runs, axis=0)
        print(f"  {strategy:<12} " + "  ".join(f"{v:.3f}" for v in mean))
    if len(results["random"]) > 1:  # paired by seed: the same start, the same test area
        print("difference from random, mean ± standard error over the seeds:")
        for strategy in STRATEGIES[1:]:
            d = np.array(results[strategy]) - np.array(results["random"])
            se = d.std(0, ddof=1) / np.sqrt(len(d))
            print(f"  {strategy:<12} " + "  ".join(f"{m:+.3f}±{e:.3f}" for m, e in zip(d.mean(0), se)))
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
    ax.set_xlabel(f"labelled windows ({case.size} px)")
    ax.set_ylabel("test-area mean IoU")
    name = {"nc": "NC Landsat", "dubai": "Dubai RGB", "befl": "Belgian fields"}[args.data]
    ax.set_title(f"{name}, {args.seeds} seeds, {args.minutes:g} min training per round")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"curves: {args.png}")


if __name__ == "__main__":
    main()
