"""The training loss and its class weights; label 255 (IGNORE) never counts."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ... import params
from ...core.chips import BACKGROUND_WARNING_SHARE, ChipDataset
from ...core.codes import IGNORE
from ...core.errors import UserInputError

LOSSES = params.LOSSES  # declared once, with the parameter
LOSS_ALIASES = {"cross-entropy + dice": "cross-entropy+dice"}  # its name before 0.2.0


def balancing_weights(counts: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """Class weights from pixel counts: inverse frequency, square-rooted, relative to the median class.

    Plain inverse frequency gives a class of a few dozen pixels hundreds of times the weight of
    the main class, and the model then paints it everywhere; the square root keeps rare classes
    counting more while the common ones still count. Weights stay within ``cap``× of the median
    class; classes without pixels get weight 1 (they never occur as a target).
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.ones_like(counts)
    if present.any():
        median = np.median(counts[present])
        w[present] = np.clip(np.sqrt(median / counts[present]), 1.0 / cap, cap)
    return w


SAMPLE_BACKGROUND_SHARE = BACKGROUND_WARNING_SHARE  # the share above which the export warns too


def background_weight(data: ChipDataset, classes: list[dict], counts: np.ndarray) -> float | None:
    """The background's loss weight (relative to the classes') when the chips look like *sample* polygons, else None.

    Polygons of several classes on a small share of the area, exported with UNLABELED=background and no
    MASK, label the land around each polygon "background" — the rest of the lake around a water polygon,
    the forest around a forest polygon. Trained on that as it is, a model learns that nearly everything is
    background (NC polygons: 98.5 % background, a blank map after a short training). Counting background
    pixels like one average class (weight = mean class pixels / background pixels) lets every class win
    where it looks like itself; background stays where nothing labelled looks like the pixel. Chips of one
    class (footprints: buildings, fields), with a MASK (labelled completely inside it), from a label raster
    or with less background are trained as they are.
    """
    if data.label_source != "polygons" or data.unlabeled != "background" or data.masked:
        return None
    if len(classes) < 3 or int(classes[0]["value"]) != 0:  # background and at least two classes
        return None
    counts = np.asarray(counts, dtype=np.float64)
    if counts[0] < SAMPLE_BACKGROUND_SHARE * counts.sum():
        return None
    return float(counts[1:].mean() / counts[0])


def make_loss(kind: str, weight: torch.Tensor | None) -> Callable:
    """The training loss; label 255 never counts."""
    kind = LOSS_ALIASES.get(kind, kind)
    if kind not in LOSSES:
        raise UserInputError("LOSS", f"unknown loss '{kind}'; choose one of {', '.join(LOSSES)}.")

    def ce(logits, target):
        return F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE)

    def focal(logits, target, gamma=2.0):
        per_px = F.cross_entropy(logits, target, weight=weight, ignore_index=IGNORE, reduction="none")
        pt = torch.exp(-F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none"))
        valid = target != IGNORE
        return ((1 - pt) ** gamma * per_px)[valid].sum() / valid.sum().clamp(min=1)

    def ce_dice(logits, target):
        valid = (target != IGNORE).unsqueeze(1)
        prob = torch.softmax(logits.float(), 1) * valid
        onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1).long(), logits.shape[1]).permute(0, 3, 1, 2) * valid
        inter = (prob * onehot).sum((0, 2, 3))
        denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
        dice = 1 - ((2 * inter + 1) / (denom + 1)).mean()
        return ce(logits, target) + dice

    return {"cross-entropy": ce, "focal": focal, "cross-entropy+dice": ce_dice}[kind]
