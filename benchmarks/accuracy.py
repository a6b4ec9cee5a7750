"""Accuracy of our U-Net against a per-pixel random forest, on the two bundled real data sets.

- NC Landsat-7 (dense labels, 7 classes, strata.tif): train on the northern half of the raster,
  evaluate on the southern half. No training chip reaches into the evaluation rows.
- Belgian fields, Sentinel-2 (sparse labels: 16 windows of 64×64 px, fields and background;
  labels unknown outside them): chips only in the 13 windows marked 'train' (MASK), evaluation
  in the 3 marked 'validation', apart from them.

- Dubai aerial imagery (RGB, about 0.5 m, dense labels of 5 classes; ``--dubai DIR``, see
  benchmarks/dubai.py): train on parts 1–3 of tiles 1–6, evaluate on parts 7–9 of the same tiles
  (``--data dubai``); ``--data dubai-lockbox``: tiles 7 and 8 the same way — the lockbox, run once
  after every default is decided, never for tuning.

Both models are scored on exactly the same pixels. Prints per-class IoU, mean IoU, pixel
accuracy and training time for each, as Markdown tables. The U-Net runs through the same code
as the algorithms (export_chips → train → classify) with their defaults except where an option
below says otherwise; the random forest is scikit-learn's (development-only:
``pip install -r benchmarks/requirements.txt``) on the same bands.

    python benchmarks/accuracy.py [--data nc|befl|both|dubai|dubai-lockbox|all] [--dubai DIR] [--time-limit 10]
                                  [--backbone resnet34]
                                  [--chip 64] [--stride 16] [--no-augment] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

DATA = os.path.join(os.path.dirname(HERE), "tests", "data", "nc_landsat7")
IMAGE = os.path.join(DATA, "nc_lsat7_2000_6band.tif")
LABELS = os.path.join(DATA, "strata.tif")
BEFL = os.path.join(os.path.dirname(HERE), "tests", "data", "befl_fields_s2")


def read(path):
    from osgeo import gdal

    ds = gdal.Open(path)
    return ds.ReadAsArray(), ds.GetGeoTransform(), ds.GetRasterBand(1).GetNoDataValue()


def iou_table(truth, pred, values):
    """Per-class IoU over the pixels given (both arrays 1-D, same length)."""
    out = {}
    for v in values:
        t, p = truth == v, pred == v
        union = np.count_nonzero(t | p)
        out[v] = np.count_nonzero(t & p) / union if union else float("nan")
    return out


def rasterize(ref_path, vector_path, where=None):
    """1 where the vector's polygons (optionally filtered by an OGR ``where``) cover a pixel centre of ``ref_path``'s grid."""
    from osgeo import gdal, ogr

    ref = gdal.Open(ref_path)
    mem = gdal.GetDriverByName("MEM").Create("", ref.RasterXSize, ref.RasterYSize, 1, gdal.GDT_Byte)
    mem.SetGeoTransform(ref.GetGeoTransform())
    mem.SetProjection(ref.GetProjection())
    src = ogr.Open(vector_path)
    layer = src.GetLayer(0)
    if where:
        layer.SetAttributeFilter(where)
    gdal.RasterizeLayer(mem, [1], layer, burn_values=[1])
    return mem.ReadAsArray().astype(bool)


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("nc", "befl", "both", "dubai", "dubai-lockbox", "all"), default="both",
                    help="both: nc and befl; all: nc, befl and dubai (never the lockbox)")
    ap.add_argument("--dubai", help="the folder 'Semantic segmentation dataset' (benchmarks/dubai.py)")
    ap.add_argument("--rf-pixels", type=int, default=200_000, help="Dubai: the random forest trains on this many pixels")
    ap.add_argument("--eval-pixels", type=int, default=1_000_000, help="Dubai: every model is scored on this many pixels")
    ap.add_argument("--epochs", type=int, default=0, help="EPOCHS (0: the default, the time limit decides)")
    ap.add_argument("--early-stopping", type=int, default=None, help="EARLY_STOPPING (default: Train U-Net's)")
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--chip", type=int, default=None, help="CHIP_SIZE (default 64; Dubai 256)")
    ap.add_argument("--stride", type=int, default=None, help="STRIDE (default 16; Dubai: the chip size)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--loss", default="cross-entropy")
    ap.add_argument("--balance", action="store_true", help="CLASS_BALANCING for the U-Net")
    ap.add_argument("--no-augment", action="store_true", help="AUGMENT false for the U-Net")
    ap.add_argument("--trees", type=int, default=200, help="random forest trees (0: no forest)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--time-limit", type=float, default=10.0, help="TIME_LIMIT in minutes (0: EPOCHS decides)")
    ap.add_argument("--stock", action="store_true",
                    help="also train a stock segmentation-models-pytorch U-Net for the same time (benchmarks/stock_unet.py)")
    ap.add_argument("--keep", help="keep chips, model, report and class map in this folder")
    return ap.parse_args()


def unet(args, chips, work, export_config, image, extent=None):
    """Export → train → classify with the algorithms' code; returns (class map array, figures)."""
    from unet_plugin.core.chips import export_chips
    from unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_plugin.ml.train import TrainConfig, train

    shutil.rmtree(chips, ignore_errors=True)
    t0 = time.perf_counter()
    exp = export_chips(export_config)
    t_export = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = train(TrainConfig(chips=chips, output_model=os.path.join(work, "model.pt"), backbone=args.backbone,
                            pretrained=False, epochs=args.epochs, batch_size=args.batch,
                            **({} if args.early_stopping is None else {"early_stopping": args.early_stopping}),
                            time_limit=args.time_limit,
                            loss=args.loss, class_balancing=args.balance, augment=not args.no_augment, seed=args.seed,
                            output_report=os.path.join(work, "report.html")), log=lambda m: None)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = os.path.join(work, "unet_map.tif")
    classify(ClassifyConfig(input=image, model=res.model_path, output=out, extent=extent, overlap=50), log=lambda m: None)
    t_classify = time.perf_counter() - t0
    return read(out)[0], dict(export=t_export, train=t_train, classify=t_classify, chips=exp.chip_count,
                              epochs=res.epochs_run, best=res.best_epoch, stop=res.stop_reason)


def forest(args, features, train_idx, train_labels, test_idx):
    from sklearn.ensemble import RandomForestClassifier

    if args.trees == 0:  # --trees 0: no forest (ablations: it does not change between variants)
        return np.full(len(test_idx), -1), dict(train=0.0, classify=0.0)
    rf = RandomForestClassifier(n_estimators=args.trees, n_jobs=-1, random_state=args.seed)
    t0 = time.perf_counter()
    rf.fit(features[train_idx], train_labels)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = rf.predict(features[test_idx])
    return pred, dict(train=t_fit, classify=time.perf_counter() - t0)


def table(names, present, seen, truth, unet_pred, rf_pred, tu, tr, stock=None):
    """Per-class IoU, mean IoU and times as Markdown; ``stock``: (predictions, figures) of the stock U-Net."""
    u, r = iou_table(truth, unet_pred, present), iou_table(truth, rf_pred, present)
    s = iou_table(truth, stock[0], present) if stock else None
    head, rule = ("| stock smp U-Net IoU ", "---:|") if stock else ("", "")
    print(f"| class | pixels (eval) | U-Net IoU | random forest IoU {head}|")
    print(f"|---|---:|---:|---:|{rule}")
    for v in present:
        mark = "" if v in seen else " (not in training area)"
        extra = f" {s[v]:.3f} |" if stock else ""
        print(f"| {names[v]}{mark} | {np.count_nonzero(truth == v)} | {u[v]:.3f} | {r[v]:.3f} |{extra}")
    groups = [("mean IoU", seen)] if seen == present else [("mean IoU, classes in both areas", seen), ("mean IoU, all classes", present)]
    for title, vals in groups:
        mu, mr = np.nanmean([u[v] for v in vals]), np.nanmean([r[v] for v in vals])
        extra = f" **{np.nanmean([s[v] for v in vals]):.3f}** |" if stock else ""
        print(f"| **{title}** | | **{mu:.3f}** | **{mr:.3f}** |{extra}")
    extra = f" {np.mean(stock[0] == truth):.3f} |" if stock else ""
    print(f"| pixel accuracy | | {np.mean(unet_pred == truth):.3f} | {np.mean(rf_pred == truth):.3f} |{extra}")
    extra = f" {stock[1]['train']:.0f} s ({stock[1]['steps']} steps) |" if stock else ""
    print(f"| training time | | {tu['train']:.0f} s (+ export {tu['export']:.1f} s) | {tr['train']:.1f} s |{extra}")
    extra = f" {stock[1]['classify']:.1f} s |" if stock else ""
    print(f"| prediction time | | {tu['classify']:.1f} s | {tr['classify']:.1f} s |{extra}")
    mu, mr = np.nanmean([u[v] for v in seen]), np.nanmean([r[v] for v in seen])
    print(f"\nU-Net − random forest, mean IoU: {mu - mr:+.3f} ({'U-Net better' if mu > mr else 'random forest better'}).")
    if stock:
        ms = np.nanmean([s[v] for v in seen])
        print(f"U-Net − stock smp U-Net, mean IoU: {mu - ms:+.3f}.")
    print()
    return mu, mr


def stock_unet(args, chips, image):
    """(class map, figures) of the stock smp U-Net on the same chips and time, or None without --stock."""
    if not args.stock:
        return None
    from stock_unet import train_and_classify

    return train_and_classify(chips, image, args.time_limit, args.backbone, args.seed, args.batch)


def settings(args, tu):
    return (f"U-Net {args.backbone} (no ImageNet weights), TIME_LIMIT {args.time_limit:g} min: {tu['epochs']} epochs "
            f"(best {tu['best']}; {tu['stop'] or 'all epochs'}), batch {args.batch}, {args.loss}"
            f"{', class balancing' if args.balance else ''}{', no augmentation' if args.no_augment else ''}; "
            f"random forest {args.trees} trees, per pixel, all bands.\n")


def nc_case(args, work):
    """NC Landsat: train on the northern half, evaluate on the southern half (strata.tif)."""
    from unet_plugin.core.chips import ExportConfig

    image, gt, image_nodata = read(IMAGE)
    labels, _, label_nodata = read(LABELS)
    # 0 = not scored: unlabelled, or no imagery there (the image has nodata strips along its
    # sides that strata.tif still labels; neither model can see anything there)
    labels = np.where((labels == label_nodata) | (image == image_nodata).any(0), 0, labels).astype(np.int64)
    height, width = labels.shape
    split = height // 2  # rows [0, split) train, [split, height) evaluate
    x0, y0, px = gt[0], gt[3], gt[1]
    north = (x0, y0 - split * abs(gt[5]), x0 + width * px, y0)  # xmin, ymin, xmax, ymax
    south = (x0, y0 - height * abs(gt[5]), x0 + width * px, y0 - split * abs(gt[5]))

    names = {1: "developed", 2: "agriculture", 3: "herbaceous", 4: "shrubland", 5: "forest", 6: "water", 7: "sediment"}
    eval_mask = labels[split:] > 0
    truth = labels[split:][eval_mask]
    train_truth = labels[:split]
    present = [v for v in names if np.any(truth == v)]
    seen = [v for v in present if np.any(train_truth == v)]

    chips = os.path.join(work, "chips")
    unet_map, tu = unet(args, chips, work, ExportConfig(input=IMAGE, output=chips, label_raster=LABELS, extent=north,
                                                        chip_size=args.chip, stride=args.stride), IMAGE, south)
    unet_pred = unet_map[eval_mask]
    features = image.reshape(image.shape[0], -1).T.astype(np.float32)
    north_idx = np.flatnonzero((labels[:split] > 0).ravel())
    south_idx = split * width + np.flatnonzero(eval_mask.ravel())
    rf_pred, tr = forest(args, features, north_idx, labels.ravel()[north_idx], south_idx)

    print(f"### NC Landsat-7 2000 (6 bands, 28.5 m, {width}×{height} px), labels strata.tif\n")
    print(f"Train: northern rows 0–{split - 1} ({np.count_nonzero(train_truth)} labelled px, {tu['chips']} chips of "
          f"{args.chip} px, stride {args.stride}); evaluate: rows {split}–{height - 1} ({truth.size} labelled px).")
    print(settings(args, tu))
    stock = stock_unet(args, chips, IMAGE)
    stock = (stock[0][split:][eval_mask], stock[1]) if stock else None
    return table(names, present, seen, truth, unet_pred, rf_pred, tu, tr, stock)


def befl_case(args, work):
    """Belgian fields: sparse labels (16 windows); train on the 13 'train' windows, evaluate on the 3 'validation' ones."""
    from osgeo import gdal, ogr

    from unet_plugin.core.chips import ExportConfig
    from unet_plugin.core.labels import write_polygons

    image_path = os.path.join(BEFL, "befl_s2_b08_b04_b03.tif")
    polygons, locations = os.path.join(BEFL, "fields_polygons.gpkg"), os.path.join(BEFL, "fields_locations.gpkg")
    image = read(image_path)[0]
    fields = rasterize(image_path, polygons)
    train_win = rasterize(image_path, locations, "traindata_type = 'train'")
    eval_win = rasterize(image_path, locations, "traindata_type = 'validation'")
    # labels and mask in the raster's CRS, as Export Training Chips gets them from QGIS (MASK: the training windows)
    wkt = gdal.Open(image_path).GetProjection()
    lab, mask = os.path.join(work, "fields.gpkg"), os.path.join(work, "train_windows.gpkg")
    src = ogr.Open(polygons)
    write_polygons(lab, wkt, [(f.GetGeometryRef().ExportToWkb(), 1) for f in src.GetLayer(0) if f.GetGeometryRef()])
    src = ogr.Open(locations)
    layer = src.GetLayer(0)
    layer.SetAttributeFilter("traindata_type = 'train'")
    write_polygons(mask, wkt, [(f.GetGeometryRef().ExportToWkb(), 1) for f in layer if f.GetGeometryRef()])
    chips = os.path.join(work, "chips")
    unet_map, tu = unet(args, chips, work, ExportConfig(
        input=image_path, output=chips, labels=lab, mask=mask, unlabeled="background", chip_size=args.chip,
        stride=args.stride, classes=[{"value": 1, "name": "field", "color": [0, 200, 0]}]), image_path)
    names = {0: "background", 1: "field"}
    truth_all = fields.astype(np.int64)
    truth = truth_all[eval_win]
    unet_pred = np.where(unet_map == 1, 1, 0)[eval_win]
    features = image.reshape(image.shape[0], -1).T.astype(np.float32)
    train_idx, test_idx = np.flatnonzero(train_win.ravel()), np.flatnonzero(eval_win.ravel())
    rf_pred, tr = forest(args, features, train_idx, truth_all.ravel()[train_idx], test_idx)

    h, w = fields.shape
    print(f"### Belgian fields, Sentinel-2 (3 bands, 10 m, {w}×{h} px), sparse labels: 16 windows of 64×64 px\n")
    print(f"Train: the 13 'train' windows ({np.count_nonzero(train_win)} px; MASK, outside it labels unknown: "
          f"{tu['chips']} chips of {args.chip} px, stride {args.stride}); evaluate: the 3 'validation' windows "
          f"({truth.size} px).")
    print(settings(args, tu))
    stock = stock_unet(args, chips, image_path)
    stock = (np.where(stock[0] == 1, 1, 0)[eval_win], stock[1]) if stock else None
    return table(names, [0, 1], [0, 1], truth, unet_pred, rf_pred, tu, tr, stock)


def dubai_case(args, work, lockbox=False):
    """Dubai aerial RGB: parts 1–3 of each tile train, parts 7–9 of the same tiles evaluate."""
    from osgeo import gdal

    import dubai
    from unet_plugin.core.chips import ExportConfig

    if not args.dubai:
        raise SystemExit("--data dubai needs --dubai DIR (the folder 'Semantic segmentation dataset').")
    tiles = dubai.LOCKBOX_TILES if lockbox else dubai.TUNING_TILES
    paths = {}
    for split, numbers in (("train", (1, 2, 3)), ("eval", (7, 8, 9))):
        paths[split] = (os.path.join(work, f"{split}.tif"), os.path.join(work, f"{split}_labels.tif"))
        dubai.canvas(dubai.parts(args.dubai, tiles, numbers), *paths[split], align=args.chip)
    chips = os.path.join(work, "chips")
    unet_map, tu = unet(args, chips, work, ExportConfig(
        input=paths["train"][0], output=chips, label_raster=paths["train"][1], unlabeled="ignore",
        chip_size=args.chip, stride=args.stride), paths["eval"][0])
    train_img, train_lab = gdal.Open(paths["train"][0]).ReadAsArray(), gdal.Open(paths["train"][1]).ReadAsArray()
    eval_img, eval_lab = gdal.Open(paths["eval"][0]).ReadAsArray(), gdal.Open(paths["eval"][1]).ReadAsArray()
    rng = np.random.default_rng(args.seed)
    eval_mask = eval_lab > 0
    if np.count_nonzero(eval_mask) > args.eval_pixels:  # the same random pixels for every model
        keep = rng.choice(np.flatnonzero(eval_mask.ravel()), args.eval_pixels, replace=False)
        eval_mask = np.zeros(eval_lab.size, dtype=bool)
        eval_mask[keep] = True
        eval_mask = eval_mask.reshape(eval_lab.shape)
    truth = eval_lab[eval_mask].astype(np.int64)
    train_idx = np.flatnonzero(train_lab.ravel() > 0)
    train_idx = np.sort(rng.choice(train_idx, min(args.rf_pixels, len(train_idx)), replace=False))
    features = np.concatenate([train_img.reshape(3, -1).T, eval_img.reshape(3, -1).T]).astype(np.float32)
    test_idx = train_lab.size + np.flatnonzero(eval_mask.ravel())
    rf_pred, tr = forest(args, features, train_idx, train_lab.ravel()[train_idx].astype(np.int64), test_idx)
    names = dict(dubai.NAMES)
    present = [v for v in names if np.any(truth == v)]
    seen = [v for v in present if np.any(train_lab == v)]
    title = "lockbox: tiles 7–8" if lockbox else "tuning: tiles 1–6"
    print(f"### Dubai aerial RGB ({title}; about 0.5 m, dense labels of 5 classes)\n")
    print(f"Train: parts 1–3 of each tile ({np.count_nonzero(train_lab)} labelled px, {tu['chips']} chips of {args.chip} "
          f"px, stride {args.stride}); evaluate: parts 7–9 ({truth.size} labelled px drawn at random; every model on the same); random forest on "
          f"{len(train_idx)} training pixels drawn at random.")
    print(settings(args, tu))
    stock = stock_unet(args, chips, paths["eval"][0])
    stock = (stock[0][eval_mask], stock[1]) if stock else None
    return table(names, present, seen, truth, unet_map[eval_mask], rf_pred, tu, tr, stock)


def main():
    args = parse()
    import torch

    torch.manual_seed(args.seed)
    sys.path.insert(0, HERE)
    from _cpu import cpu_summary

    print(cpu_summary() + "\n")
    root = args.keep or tempfile.mkdtemp(prefix="unet-accuracy-")
    results = {}
    try:
        cases = (("nc", nc_case), ("befl", befl_case), ("dubai", dubai_case),
                 ("dubai-lockbox", lambda a, w: dubai_case(a, w, lockbox=True)))
        wanted = {"both": ("nc", "befl"), "all": ("nc", "befl", "dubai")}.get(args.data, (args.data,))
        for name, case in cases:
            if name in wanted:
                high_res = name.startswith("dubai")
                case_args = argparse.Namespace(**vars(args))
                case_args.chip = args.chip or (256 if high_res else 64)
                case_args.stride = args.stride or (case_args.chip if high_res else 16)
                work = os.path.join(root, name)
                os.makedirs(work, exist_ok=True)
                results[name] = case(case_args, work)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("Summary, mean IoU U-Net vs random forest: " + "; ".join(
        f"{k} {u:.3f} vs {r:.3f} ({u - r:+.3f})" for k, (u, r) in results.items()))


if __name__ == "__main__":
    main()
