"""Accuracy figures from a confusion matrix: one module for training, its report and Assess Accuracy.

The confusion matrix has the reference (truth) in rows and the map (prediction) in columns.
"""

from __future__ import annotations

import numpy as np


def confusion(reference: np.ndarray, mapped: np.ndarray, k: int) -> np.ndarray:
    """k×k pixel counts of class indices 0..k-1 (rows reference, columns map)."""
    idx = reference.astype(np.int64) * k + mapped.astype(np.int64)
    return np.bincount(idx.ravel(), minlength=k * k).reshape(k, k)


def scores(cm: np.ndarray) -> dict:
    """Overall accuracy, Cohen's kappa and per class IoU, precision (user's accuracy), recall
    (producer's accuracy) and F1; mean IoU over the classes that occur in the reference or the map.

    Kappa: ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the overall accuracy and ``p_e`` the agreement
    expected by chance, ``sum(row_total * column_total) / n²``.
    """
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    truth, predicted = cm.sum(1), cm.sum(0)
    union = truth + predicted - tp
    n = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(truth > 0, tp / truth, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), np.nan)
    present = union > 0
    accuracy = float(tp.sum() / n) if n else 0.0
    expected = float((truth * predicted).sum() / n**2) if n else 0.0
    kappa = (accuracy - expected) / (1 - expected) if n and expected < 1 else (1.0 if n else 0.0)
    return {
        "accuracy": accuracy, "kappa": float(kappa),
        "miou": float(np.nanmean(iou[present])) if present.any() else 0.0,
        "iou": iou.tolist(), "precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
        "reference_pixels": truth.astype(np.int64).tolist(), "mapped_pixels": predicted.astype(np.int64).tolist(),
    }


def miou_spread(chip_cms: np.ndarray, skip_first: bool = False, resamples: int = 200, seed: int = 0) -> float:
    """How much a validation mIoU would move with another draw of the same number of validation chips:
    the standard deviation of the mIoU over bootstrap resamples of the chips (their confusion
    matrices ``chip_cms``, shape (chips, k, k)). ``skip_first``: background unscored (sample polygons)."""
    n = len(chip_cms)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        cm = chip_cms[rng.integers(0, n, n)].sum(0).astype(np.float64)
        tp = np.diag(cm)
        union = cm.sum(1) + cm.sum(0) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / union, np.nan)
        if skip_first:
            iou[0] = np.nan
        if np.isfinite(iou).any():
            values.append(np.nanmean(iou))
    return float(np.std(values)) if len(values) > 1 else float("nan")
