"""Suggest Areas to Label: where would new labels help the model most?

The raster is classified as Classify Raster does it (streamed in blended tiles, the same engines
and PRECISION), with the class probabilities kept in a scratch file. Candidate windows on the
raster's pixel grid (every half window) are scored by the model's uncertainty — the mean entropy
of the class probabilities over the window's valid pixels, 0 (sure) to 1 (every class equally
likely). Windows with too little image, or touching an area already labelled (EXISTING_LABELS),
are never proposed; proposals never overlap each other.

- ``uncertainty``: the most uncertain windows, in order.
- ``diverse``: the most uncertain too, but each pick lowers the score of the windows near it (the
  more so where their predicted classes look like its own), so ten proposals are not ten corners
  of one lake.

Candidates are scored strip by strip (one window-high strip of probabilities at a time), so memory
follows the raster's width, not its size.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
from osgeo import gdal

from .. import params
from ..core.errors import UserInputError
from ..core.raster import open_raster, raster_info, window_bounds
from ..core.styles import NODATA
from ..core.windows import Window

STRATEGIES = params.STRATEGIES
MIN_VALID = 0.75        # a window needs this share of pixels with image data
DIVERSITY = 0.6         # diverse: how much resemblance to an earlier pick lowers a score (0–1)


@dataclass(frozen=True)
class SuggestConfig:
    """Parameters of Suggest Areas to Label, as plain values (docs/parameters.md)."""

    input: str
    model: str
    count: int = 10
    window_size: int = 0            # pixels; 0: the model's chip size
    existing_labels: str | None = None  # polygons in the raster's CRS (a GeoPackage written by the caller)
    strategy: str = "diverse"
    extent: tuple[float, float, float, float] | None = None
    device: str = "auto"
    precision: str = "auto"
    seed: int = 42
    bands: list[int] | None = None


@dataclass
class Proposal:
    rank: int
    score: float        # the priority the window was picked with (non-increasing with the rank)
    uncertainty: float  # mean normalised entropy of the class probabilities over its valid pixels
    col: int        # on the raster's pixel grid
    row: int
    size: int
    bounds: tuple   # xmin, ymin, xmax, ymax
    shares: dict    # class value → predicted share of the window's valid pixels


def check(config: SuggestConfig) -> None:
    """Refuse bad values before any work."""
    if config.count < 1:
        raise UserInputError("COUNT", "must be at least 1.")
    if config.strategy not in STRATEGIES:
        raise UserInputError("STRATEGY", f"'{config.strategy}' is not one of {', '.join(STRATEGIES)}.")
    if config.window_size < 0 or 0 < config.window_size < 8:
        raise UserInputError("WINDOW_SIZE", "must be 0 (the model's chip size) or at least 8 pixels.")


def suggest(config: SuggestConfig, progress: Callable[[float], None] = lambda f: None,
            is_canceled: Callable[[], bool] = lambda: False, log: Callable[[str], None] = print,
            warn: Callable[[str], None] | None = None) -> tuple[list[Proposal], list[dict], str]:
    """Run Suggest Areas to Label; return the proposals, the model's classes and the raster's CRS (WKT)."""
    from .classify import ClassifyConfig, classify
    from .model import ModelFileError, read_model_file

    check(config)
    try:
        meta = read_model_file(config.model)["metadata"]
    except ModelFileError as exc:
        raise UserInputError("MODEL", str(exc)) from None
    size = int(config.window_size or meta["chip_size"])
    scratch = tempfile.mkdtemp(prefix="unet-suggest-")
    try:
        classes_path, probs_path = os.path.join(scratch, "classes.tif"), os.path.join(scratch, "probabilities.tif")
        result = classify(ClassifyConfig(input=config.input, model=config.model, output=classes_path,
                                         output_probabilities=probs_path, extent=config.extent, device=config.device,
                                         precision=config.precision, bands=config.bands),
                          lambda f: progress(0.85 * f), is_canceled, log, warn)
        ds = open_raster(classes_path, "INPUT")
        info = raster_info(ds, "INPUT")
        if size > min(info.width, info.height):
            raise UserInputError("WINDOW_SIZE", f"{size} px is larger than the area ({info.width}×{info.height} px); use "
                                                f"at most {min(info.width, info.height)}.")
        labelled = None
        if config.existing_labels:
            from ..core.labels import burn_mask

            labelled = os.path.join(scratch, "labelled.tif")
            burn_mask(config.existing_labels, labelled, info, Window(0, 0, info.width, info.height), "EXISTING_LABELS",
                      all_touched=True)
        values = [int(c["value"]) for c in result.classes]
        candidates = score_windows(probs_path, classes_path, labelled, size, values, is_canceled,
                                   lambda f: progress(0.85 + 0.1 * f))
        picked = select(candidates, config.count, config.strategy, size, config.seed)
        proposals = [Proposal(rank=i + 1, score=c["priority"], uncertainty=c["score"], col=c["col"], row=c["row"], size=size,
                              bounds=window_bounds(info.geotransform, Window(c["col"], c["row"], size, size)),
                              shares=dict(zip(values, c["shares"].tolist())))
                     for i, c in enumerate(picked)]
        wkt = info.crs_wkt
        ds = None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if len(proposals) < config.count:
        (warn or log)(f"Only {len(proposals)} windows of {size} px could be proposed (not labelled yet, with image data, "
                      f"apart from each other); COUNT was {config.count}.")
    log(f"{len(proposals)} windows proposed ({config.strategy}); uncertainty "
        + ", ".join(f"{p.uncertainty:.2f}" for p in proposals[:10]) + (" …" if len(proposals) > 10 else "") + ".")
    progress(1.0)
    return proposals, result.classes, wkt


def score_windows(probs_path: str, classes_path: str, labelled_path: str | None, size: int, values: list[int],
                  is_canceled=lambda: False, progress=lambda f: None) -> list[dict]:
    """Every candidate window (origins every half window, the last one flush with the edge): its mean
    normalised entropy over valid pixels, its predicted class shares; windows without enough image
    data or touching a labelled pixel are left out."""
    from ..core.errors import Canceled
    from ..core.windows import axis_origins

    probs, cls = gdal.Open(probs_path), gdal.Open(classes_path)
    marks = gdal.Open(labelled_path) if labelled_path else None
    width, height, k = cls.RasterXSize, cls.RasterYSize, probs.RasterCount
    stride = max(1, size // 2)
    rows, cols = axis_origins(height, size, stride), np.array(axis_origins(width, size, stride))
    lut = np.full(256, -1, dtype=np.int64)
    lut[values] = np.arange(len(values))
    norm = math.log(k) if k > 1 else 1.0
    out = []
    for n, r in enumerate(rows):
        if is_canceled():
            raise Canceled()
        p = probs.ReadAsArray(0, r, width, size).astype(np.float32).reshape(k, size, width) / 255.0
        c = cls.GetRasterBand(1).ReadAsArray(0, r, width, size)
        valid = c != NODATA
        p = p / np.maximum(p.sum(0, keepdims=True), 1e-6)  # bytes: renormalise before the entropy
        entropy = -(p * np.log(np.clip(p, 1e-6, 1.0))).sum(0) / norm
        entropy[~valid] = 0.0
        col_sums = lambda a: np.concatenate([[0], np.cumsum(a.sum(0), dtype=np.float64)])  # noqa: E731 - a local helper
        ent, cnt = col_sums(entropy), col_sums(valid)
        touched = col_sums(marks.ReadAsArray(0, r, width, size) > 0) if marks is not None else None
        hist = [col_sums(valid & (lut[c] == i)) for i in range(len(values))]
        n_valid = cnt[cols + size] - cnt[cols]
        for j, c0 in enumerate(cols):
            if n_valid[j] < MIN_VALID * size * size:
                continue
            if touched is not None and touched[c0 + size] - touched[c0] > 0:
                continue
            shares = np.array([h[c0 + size] - h[c0] for h in hist]) / n_valid[j]
            out.append({"row": int(r), "col": int(c0), "score": float((ent[c0 + size] - ent[c0]) / n_valid[j]),
                        "shares": shares})
        progress((n + 1) / len(rows))
    return out


def select(candidates: list[dict], count: int, strategy: str, size: int, seed: int = 42) -> list[dict]:
    """Pick ``count`` windows that do not overlap, each with its ``priority`` (non-increasing with the
    rank): the uncertainty itself (``uncertainty``), or the uncertainty lowered by the resemblance to
    the windows picked before — nearness and like predicted classes (``diverse``). Ties are broken by
    a random order drawn from ``seed``."""
    if not candidates:
        return []
    order = np.random.default_rng(seed).permutation(len(candidates))
    rows = np.array([candidates[i]["row"] for i in order], dtype=np.float64)
    cols = np.array([candidates[i]["col"] for i in order], dtype=np.float64)
    score = np.array([candidates[i]["score"] for i in order])
    shares = np.stack([candidates[i]["shares"] for i in order])
    alive = np.ones(len(order), dtype=bool)
    resemblance = np.zeros(len(order))
    reach = 3.0 * size  # nearness fades over a few windows
    picked = []
    while alive.any() and len(picked) < count:
        value = score * (1.0 - DIVERSITY * resemblance) if strategy == "diverse" else score
        value = np.where(alive, value, -np.inf)
        best = int(np.argmax(value))  # the first of equal values: the seeded order
        picked.append(dict(candidates[order[best]], priority=float(value[best])))
        alive &= ~((np.abs(rows - rows[best]) < size) & (np.abs(cols - cols[best]) < size))
        if strategy == "diverse":
            near = np.exp(-np.hypot(rows - rows[best], cols - cols[best]) / reach)
            alike = 1.0 - 0.5 * np.abs(shares - shares[best]).sum(1)
            # a window near a pick says little new, the more so when its predicted classes are alike;
            # far away, even a window of the same classes is new ground
            resemblance = np.maximum(resemblance, near * (0.5 + 0.5 * alike))
    return picked
