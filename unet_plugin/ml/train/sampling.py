"""What each training step sees: which chips (rare classes more often) and which windows of them.

Two things a fixed chip grid does badly with few labels:

- **Rare classes.** A class on 2 % of the chips reaches the loss in 2 % of the steps; a short
  training then never predicts it (the NC polygons, 98 % background: a blank map). Chips are
  drawn with *repeat factors* (Gupta et al., LVIS, 2019): a class held by a share ``f`` of the
  training chips gets ``r = max(1, sqrt(t / f))``, a chip the largest ``r`` of its classes, and
  an epoch draws chips in proportion (each chip ``floor(r)`` or ``ceil(r)`` times, at random, the
  list cut to an epoch's length). Every labelled class then reaches the loss in at least about
  ``t`` of the steps, without the loss weights that make a model paint a rare class everywhere
  (CLASS_BALANCING stays the user's choice). Where no class is rare, an epoch is a plain shuffle.
- **Few positions.** 77 chips at stride 128 are 77 windows, seen again and again. With AUGMENT,
  the training chips are laid into one mosaic on their common pixel grid and every draw cuts a
  window at a random offset from its chip (up to half a chip each way; where that reaches beyond
  the chips with more than a quarter of the window, the chip itself), so the model sees the
  labelled area at every shift; then a flip/90° rotation and a strong brightness/contrast change
  per band (a random scale is there for comparisons, off: see SCALES). Pixels outside every
  training chip and inside validation areas are label 255 in the mosaic, so a window never
  brings a validation label into the loss.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from ...core.codes import IGNORE

RARE_SHARE = 0.3        # t: classes on fewer chips than this share are drawn more often
MAX_REPEAT = 10.0       # no chip more than this many times as often as a chip of common classes
PRESENT_SHARE = 0.005   # a chip holds a class when at least this share of its pixels has it
SHIFT = 0.5             # random windows: offset up to this share of a chip each way
MIN_COVERED = 0.75      # a window reaching beyond the chips with more than a quarter of it is not cut
# Random scale range: none by default. Classify Raster runs at the model's pixel size (it checks), so
# scale changes teach nothing the map needs, and resampling mixes the spectra of neighbouring
# pixels: NC Landsat (3-min runs, stride 64) mean IoU 0.273 with 0.8–1.25×, 0.289 without.
# UNET_SCALE=1 turns it on (0.8–1.25×) for comparisons.
SCALES = (0.8, 1.25) if os.environ.get("UNET_SCALE", "0") == "1" else (1.0, 1.0)
# Colour jitter, per window and band: gain 1 ± GAIN, offset ± OFFSET standard deviations. It makes
# the model lean less on absolute brightness, which changes across a scene and between scenes (none
# at all: Dubai RGB 0.394 mean IoU against 0.429; NC Landsat 0.240 against 0.311 in 0.4). Its strength
# was decided on three tuning sets in 3-minute runs, two seeds each (benchmarks/ablation.py,
# 2026-11-30): ±12.5 %/±0.25 against ±25 %/±0.5 of 0.4–0.5 gave Dubai RGB at 0.5 m 0.467 vs 0.421
# (building IoU 0.535 vs 0.487), Belgian fields 0.792 vs 0.792, NC Landsat 0.307 vs 0.327. The
# weaker jitter loses at most 0.02 (NC) where the stronger one loses 0.046 (high-resolution RGB,
# where few steps fit in the time and strong jitter slows the fit): the robust choice.
GAIN, OFFSET = 0.125, 0.25
MOSAIC_BUDGET = 1024**3  # bytes: beyond this, windows stay the exported chips
# UNET_WINDOWS=0: no random windows (flips and rotations of the exported chips; colour jitter as COLOUR says), for comparisons
WINDOWS = os.environ.get("UNET_WINDOWS", "1") != "0"
COLOUR = os.environ.get("UNET_COLOUR", "1") != "0"  # UNET_COLOUR=0: no brightness/contrast change, for comparisons


def class_presence(labels: torch.Tensor, k: int) -> np.ndarray:
    """chips × classes booleans: which classes each chip holds (at least PRESENT_SHARE of its pixels)."""
    n = labels.shape[0]
    flat = labels.reshape(n, -1).long()
    counts = torch.zeros(n, 256, dtype=torch.int64)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    need = max(1, int(PRESENT_SHARE * flat.shape[1]))
    return (counts[:, :k] >= need).numpy()


def repeat_factors(presence: np.ndarray, chips_with: np.ndarray | None = None, total: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per chip and per class repeat factors from class presence (``chips_with``/``total``: the counts over
    all processes under torchrun; default: these chips')."""
    chips_with = presence.sum(0) if chips_with is None else chips_with
    total = len(presence) if total is None else total
    share = chips_with / max(total, 1)
    per_class = np.where(share > 0, np.sqrt(RARE_SHARE / np.maximum(share, 1e-12)), 1.0)
    per_class = np.clip(per_class, 1.0, MAX_REPEAT)
    per_chip = np.ones(len(presence))
    if len(presence):
        per_chip = np.max(np.where(presence, per_class[None, :], 1.0), axis=1)
    return per_chip, per_class


class Sampler:
    """Epoch orders and augmented batches for the training chips ``chips`` (a ``ChipTensors``)."""

    def __init__(self, chips, k: int, augment: bool, log=lambda m: None, class_names=None, totals=None):
        """``totals``: a function summing numpy arrays over torchrun processes (identity alone)."""
        self.chips, self.k, self.augment = chips, k, augment
        self.size = chips.data.chip_size if len(chips) else 0
        presence = chips.presence(k)
        chips_with, total = presence.sum(0), len(presence)
        if totals is not None:
            summed = totals(np.append(chips_with, total).astype(np.int64))
            chips_with, total = summed[:-1], int(summed[-1])
        self.factors, per_class = repeat_factors(presence, chips_with, total)
        names = class_names or [str(i) for i in range(k)]
        boosted = [f"{n} ×{r:.1f} ({100 * c / max(total, 1):.0f} % of chips)"
                   for n, r, c in zip(names, per_class, chips_with) if r > 1.001 and c > 0]
        if boosted:
            log("Chips holding rare classes are drawn more often: " + ", ".join(boosted) + ".")
        self.mosaic = self._mosaic(log) if augment and WINDOWS else None

    # -- which chips ------------------------------------------------------------------------------
    def epoch(self, gen: torch.Generator) -> list[int]:
        """An epoch's chips (positions in ``chips``), as many as there are chips."""
        n = len(self.factors)
        if np.all(self.factors <= 1.0):
            return torch.randperm(n, generator=gen).tolist()
        whole = np.floor(self.factors).astype(np.int64)
        extra = torch.rand(n, generator=gen).numpy() < (self.factors - whole)
        pool = np.repeat(np.arange(n), whole + extra)
        perm = torch.randperm(len(pool), generator=gen).numpy()
        return pool[perm[:n]].tolist()

    # -- what of them -----------------------------------------------------------------------------
    def batch(self, positions: list[int], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.augment:
            return self.chips.batch(positions)
        if self.mosaic is not None:
            x, y = self._windows(positions, gen)
        else:
            x, y = self.chips.batch(positions)
        x, y = flip_rotate(x, y, gen)
        return (colour_jitter(x, y, gen) if COLOUR else x), y

    def _mosaic(self, log):
        """The training chips on their common pixel grid, or None where that grid is too large or absent."""
        data, chips = self.chips.data, self.chips
        if chips.cache is None or not data.georeferenced or len(chips) == 0:
            return None
        b = np.array([data.bounds[i] for i in chips.indices], dtype=np.float64)
        px = (b[:, 2] - b[:, 0]) / self.size
        py = (b[:, 3] - b[:, 1]) / self.size
        if np.ptp(px) > 1e-6 * px[0] or np.ptp(py) > 1e-6 * py[0]:
            return None
        cols = (b[:, 0] - b[:, 0].min()) / px[0]
        rows = (b[:, 3].max() - b[:, 3]) / py[0]
        if np.abs(cols - cols.round()).max() > 0.01 or np.abs(rows - rows.round()).max() > 0.01:
            return None  # chips not on one grid (exported from several rasters)
        cols, rows = cols.round().astype(np.int64), rows.round().astype(np.int64)
        h, w = int(rows.max()) + self.size, int(cols.max()) + self.size
        x, y = chips.cache
        bands = x.shape[1]
        if h * w * (bands * 4 + 1) > MOSAIC_BUDGET:
            log("Training windows stay the exported chips: their area is too large to hold as one mosaic.")
            return None
        img = torch.zeros(bands, h, w, dtype=torch.float32)
        lab = torch.full((h, w), IGNORE, dtype=torch.uint8)
        seen = torch.zeros(h, w, dtype=torch.bool)
        s = self.size
        for i in range(len(chips)):
            r, c = rows[i], cols[i]
            # the same pixel has the same value in every chip; a label 255 (validation area, no
            # imagery) is filled by a later chip only where that chip knows it
            lab_win = lab[r:r + s, c:c + s]
            take = lab_win == IGNORE
            lab_win[take] = y[i][take]
            new = ~seen[r:r + s, c:c + s]
            img[:, r:r + s, c:c + s][:, new] = x[i][:, new]
            seen[r:r + s, c:c + s] = True
        # summed-area table of the pixels some chip covers: how much of a window holds imagery, in O(1)
        self.covered = np.pad(seen.numpy().astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        return img, lab, rows, cols

    def _windows(self, positions, gen):
        img, lab = self.mosaic[:2]
        s = self.size
        u = torch.rand(len(positions), 3, generator=gen).numpy()
        xs, ys = [], []
        for j, p in enumerate(positions):
            r0, c0, side = self.cut(p, u[j])
            xi, yi = img[:, r0:r0 + side, c0:c0 + side], lab[r0:r0 + side, c0:c0 + side]
            if side != s:
                xi = F.interpolate(xi[None], size=(s, s), mode="bilinear", align_corners=False, antialias=side > s)[0]
                yi = F.interpolate(yi[None, None].float(), size=(s, s), mode="nearest")[0, 0].to(torch.uint8)
            xs.append(xi)
            ys.append(yi)
        return torch.stack(xs), torch.stack(ys)

    def cut(self, p: int, u) -> tuple[int, int, int]:
        """The window (top row, left column, side in the mosaic) for chip ``p`` and three uniform
        numbers ``u``: scale, row shift, column shift. Kept inside the mosaic."""
        rows, cols = self.mosaic[2:]
        h, w = self.mosaic[1].shape
        s = self.size
        lo, hi = math.log(SCALES[0]), math.log(SCALES[1])
        side = min(max(8, int(round(s * math.exp(lo + u[0] * (hi - lo))))), h, w)
        r0 = int(round(rows[p] + (s - side) / 2 + (2 * u[1] - 1) * SHIFT * s))
        c0 = int(round(cols[p] + (s - side) / 2 + (2 * u[2] - 1) * SHIFT * s))
        r0, c0 = min(max(r0, 0), h - side), min(max(c0, 0), w - side)
        a = self.covered
        inside = a[r0 + side, c0 + side] - a[r0, c0 + side] - a[r0 + side, c0] + a[r0, c0]
        if inside < MIN_COVERED * side * side:  # mostly beyond the chips (sparse labels): the chip itself
            return int(rows[p]), int(cols[p]), s
        return r0, c0, side


def flip_rotate(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one of the 8 flips/90° rotations to each chip, chosen at random."""
    codes = torch.randint(0, 8, (x.shape[0],), generator=gen).tolist()
    xs, ys = [], []
    for i, c in enumerate(codes):
        xi, yi = x[i], y[i]
        if c & 4:
            xi, yi = xi.flip(-1), yi.flip(-1)
        k = c & 3
        if k:
            xi, yi = torch.rot90(xi, k, (-2, -1)), torch.rot90(yi, k, (-2, -1))
        xs.append(xi)
        ys.append(yi)
    return torch.stack(xs), torch.stack(ys)


def colour_jitter(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per chip and band: gain 1 ± GAIN and offset ± OFFSET (in standard deviations: the chips are
    normalised); pixels without imagery (all bands exactly 0 after normalisation) stay 0."""
    n, c = x.shape[:2]
    gain = 1 + GAIN * (2 * torch.rand(n, c, 1, 1, generator=gen) - 1)
    offset = OFFSET * (2 * torch.rand(n, c, 1, 1, generator=gen) - 1)
    has_image = (x != 0).any(1, keepdim=True)
    return torch.where(has_image, x * gain + offset, x)
