"""Accuracy of our U-Net against a per-pixel random forest on the bundled NC Landsat sample.

Train on the northern part of the raster, evaluate on the southern part: no training chip
reaches into the evaluation rows, and both models are scored on exactly the same pixels
(every labelled pixel of the southern part that has imagery). Prints per-class IoU, mean IoU, pixel
accuracy and training time for each, as a Markdown table.

The U-Net runs through the same code as the three algorithms (export_chips → train →
classify); the random forest is scikit-learn's (development-only:
``pip install -r benchmarks/requirements.txt``) on the same bands.

    python benchmarks/accuracy.py [--epochs 60] [--backbone resnet18] [--chip 64] [--time-limit 10] [--keep DIR]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--chip", type=int, default=64)
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--loss", default="cross-entropy")
    ap.add_argument("--balance", action="store_true", help="CLASS_BALANCING for the U-Net")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--time-limit", type=float, default=0.0, help="TIME_LIMIT in minutes (0: EPOCHS decides)")
    ap.add_argument("--keep", help="keep chips, model, report and class map in this folder")
    args = ap.parse_args()

    import torch
    from sklearn.ensemble import RandomForestClassifier

    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.predict import ClassifyConfig, classify
    from unet_plugin.ml.train import TrainConfig, train

    torch.manual_seed(args.seed)
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

    work = args.keep or tempfile.mkdtemp(prefix="unet-accuracy-")
    os.makedirs(work, exist_ok=True)
    chips = os.path.join(work, "chips")
    shutil.rmtree(chips, ignore_errors=True)
    try:
        # --- U-Net: the three algorithms' code, north only for training -------------------------
        t0 = time.perf_counter()
        exp = export_chips(ExportConfig(input=IMAGE, output=chips, label_raster=LABELS, extent=north,
                                        chip_size=args.chip, stride=args.stride))
        t_export = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = train(TrainConfig(chips=chips, output_model=os.path.join(work, "model.pt"), backbone=args.backbone,
                                pretrained=False, epochs=args.epochs, batch_size=args.batch, early_stopping=max(10, args.epochs // 4),
                                time_limit=args.time_limit,
                                loss=args.loss, class_balancing=args.balance, seed=args.seed,
                                output_report=os.path.join(work, "report.html")), log=lambda m: None)
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = os.path.join(work, "unet_south.tif")
        classify(ClassifyConfig(input=IMAGE, model=res.model_path, output=out, extent=south, overlap=50), log=lambda m: None)
        t_classify = time.perf_counter() - t0
        unet_pred = read(out)[0][eval_mask]

        # --- Random forest: every labelled northern pixel with imagery, same bands ---------------------------
        features = image.reshape(image.shape[0], -1).T.astype(np.float32)
        north_idx = np.flatnonzero((labels[:split] > 0).ravel())
        south_idx = split * width + np.flatnonzero(eval_mask.ravel())
        rf = RandomForestClassifier(n_estimators=args.trees, n_jobs=-1, random_state=args.seed)
        t0 = time.perf_counter()
        rf.fit(features[north_idx], labels.ravel()[north_idx])
        t_rf = time.perf_counter() - t0
        t0 = time.perf_counter()
        rf_pred = rf.predict(features[south_idx])
        t_rf_pred = time.perf_counter() - t0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    u, r = iou_table(truth, unet_pred, present), iou_table(truth, rf_pred, present)
    print(f"NC Landsat-7 2000 (6 bands, 28.5 m, {width}×{height} px), labels strata.tif.")
    print(f"Train: northern rows 0–{split - 1} ({np.count_nonzero(train_truth)} labelled px, {exp.chip_count} chips of "
          f"{args.chip} px, stride {args.stride}); evaluate: rows {split}–{height - 1} ({truth.size} labelled px).")
    print(f"U-Net {args.backbone} (no ImageNet weights), {res.epochs_run} epochs (best {res.best_epoch}), "
          f"batch {args.batch}, {args.loss}{', class balancing' if args.balance else ''}; "
          f"random forest {args.trees} trees, per pixel, all {image.shape[0]} bands.\n")
    print("| class | pixels (eval) | U-Net IoU | random forest IoU |")
    print("|---|---:|---:|---:|")
    for v in present:
        mark = "" if v in seen else " (not in training area)"
        print(f"| {names[v]}{mark} | {np.count_nonzero(truth == v)} | {u[v]:.3f} | {r[v]:.3f} |")
    for title, vals in (("mean IoU, classes in both areas", seen), ("mean IoU, all classes", present)):
        mu, mr = np.nanmean([u[v] for v in vals]), np.nanmean([r[v] for v in vals])
        print(f"| **{title}** | | **{mu:.3f}** | **{mr:.3f}** |")
    print(f"| pixel accuracy | | {np.mean(unet_pred == truth):.3f} | {np.mean(rf_pred == truth):.3f} |")
    print(f"| training time | | {t_train:.0f} s (+ export {t_export:.1f} s) | {t_rf:.1f} s |")
    print(f"| prediction time (south) | | {t_classify:.1f} s | {t_rf_pred:.1f} s |")
    mu, mr = np.nanmean([u[v] for v in seen]), np.nanmean([r[v] for v in seen])
    print(f"\nU-Net − random forest, mean IoU over classes in both areas: {mu - mr:+.3f} "
          f"({'U-Net better' if mu > mr else 'random forest better'}).")


if __name__ == "__main__":
    main()
