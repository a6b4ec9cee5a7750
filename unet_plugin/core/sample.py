"""Create Accuracy Sample: a stratified random sample of points on a class map.

The map's classes are the strata (Olofsson et al. 2014). Two streaming passes over the class
raster, strip by strip, so memory does not grow with the raster: the first counts every class's
pixels and area, the second picks, for each class, the pixels whose rank among that class's
pixels (in raster order) was drawn at random — a simple random sample without replacement within
each stratum. Nodata is never sampled. Same SEED, same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from osgeo import osr

from .area import allocate, sample_size
from .errors import Canceled, UserInputError
from .raster import (
    STRIP_ROWS,
    extent_window,
    gdal_cache_budget,
    open_raster,
    raster_info,
)
from .windows import Window

EARTH_RADIUS = 6371007.2  # authalic sphere: areas of geographic pixels within a few tenths of a per cent


@dataclass
class Strata:
    """The map's classes on the assessed area: pixels and area (hectares) of each value."""

    values: list[int]
    pixels: np.ndarray
    area_ha: np.ndarray


def row_area_ha(info, window: Window) -> np.ndarray:
    """Area in hectares of one pixel of each row of ``window`` (the same for every row in a projected CRS)."""
    srs = osr.SpatialReference()
    srs.ImportFromWkt(info.crs_wkt)
    px, py = info.geotransform[1], info.geotransform[5]
    if not srs.IsGeographic():
        return np.full(window.height, abs(px * py) * srs.GetLinearUnits() ** 2 / 1e4)
    y0 = info.geotransform[3] + window.row * py
    top = y0 + np.arange(window.height) * py
    lat1, lat2 = np.radians(top), np.radians(top + py)
    return np.abs(EARTH_RADIUS ** 2 * math.radians(abs(px)) * (np.sin(lat1) - np.sin(lat2))) / 1e4


def _strips(ds, window: Window, is_canceled, progress, offset: float, share: float):
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    for r0 in range(0, window.height, STRIP_ROWS):
        if is_canceled():
            raise Canceled()
        h = min(STRIP_ROWS, window.height - r0)
        a = band.ReadAsArray(window.col, window.row + r0, window.width, h)
        if a.dtype.kind == "f":
            a = np.where(np.isfinite(a), a, -1)
            if np.any(a != np.round(a)):
                raise UserInputError("INPUT", "the raster holds values that are not whole numbers: choose a class raster "
                                              "(e.g. Classify Raster's OUTPUT), not imagery or probabilities.")
        a = a.astype(np.int64)
        if nodata is not None:
            a[a == int(nodata)] = -1
        a[(a < 0) | (a > 254)] = -1  # class values are 0–254; others (255: unknown) are never sampled
        progress(offset + share * (r0 + h) / window.height)
        yield r0, a


def count_strata(ds, info, window: Window, is_canceled=lambda: False, progress=lambda f: None,
                 offset: float = 0.0, share: float = 1.0) -> Strata:
    """Pixels and area of every class value on ``window`` (one pass)."""
    areas = row_area_ha(info, window)
    pixels = np.zeros(255, dtype=np.int64)
    area = np.zeros(255, dtype=np.float64)
    for r0, a in _strips(ds, window, is_canceled, progress, offset, share):
        for r in range(a.shape[0]):
            c = np.bincount(a[r][a[r] >= 0], minlength=255)
            pixels += c
            area += c * areas[r0 + r]
    values = [int(v) for v in np.flatnonzero(pixels)]
    return Strata(values, pixels[values], area[values])


@dataclass(frozen=True)
class SampleConfig:
    """Parameters of Create Accuracy Sample, as plain values (see docs)."""

    input: str
    sample_size: int = 0
    target_standard_error: float = 0.01
    expected_users_accuracy: float = 0.8
    allocation: str = "minimum-per-class"
    min_per_class: int = 50
    extent: tuple[float, float, float, float] | None = None
    seed: int = 42


@dataclass
class SampleResult:
    points: list[dict]   # x, y, col, row, map_value
    strata: Strata
    allocation: dict     # value → points
    size: int
    classes: list[dict]


def create_sample(config: SampleConfig, progress: Callable[[float], None] = lambda f: None,
                  is_canceled: Callable[[], bool] = lambda: False, log: Callable[[str], None] = lambda m: None) -> SampleResult:
    """Run Create Accuracy Sample; see the module docstring."""
    from .accuracy import map_classes

    if config.sample_size < 0:
        raise UserInputError("SAMPLE_SIZE", "must be 0 (computed) or a number of points.")
    with gdal_cache_budget():
        ds = open_raster(config.input, "INPUT")
        info = raster_info(ds, "INPUT")
        if ds.RasterCount != 1:
            raise UserInputError("INPUT", "choose a class raster: one band of whole-number class values (e.g. Classify "
                                          "Raster's OUTPUT), not imagery.")
        window = extent_window(info, config.extent)
        strata = count_strata(ds, info, window, is_canceled, progress, 0.0, 0.5)
        if not strata.values:
            raise UserInputError("EXTENT" if config.extent else "INPUT", "the class raster holds only nodata here; "
                                 "there is nothing to sample.")
        weights = strata.area_ha / strata.area_ha.sum()
        n = config.sample_size
        if n == 0:
            n = sample_size(weights, config.expected_users_accuracy, config.target_standard_error)
            log(f"Sample size {n} points: a standard error of overall accuracy of {config.target_standard_error:g} "
                f"with user's accuracies of {config.expected_users_accuracy:g} (Olofsson et al. 2014, eq. 13).")
        counts = allocate(n, strata.pixels, config.allocation, config.min_per_class)
        chosen = _draw(ds, info, window, strata, counts, config.seed, is_canceled, progress)
    names = {int(c["value"]): c for c in map_classes(config.input)}
    classes = [names.get(v, {"value": v, "name": f"class {v}", "color": [128, 128, 128]}) for v in strata.values]
    allocation = {v: int(c) for v, c in zip(strata.values, counts)}
    for c, v, px, ha in zip(classes, strata.values, strata.pixels, strata.area_ha):
        log(f"  {c['name']} ({v}): {allocation[v]} points in {int(px):,} pixels ({ha:,.1f} ha, {100 * ha / strata.area_ha.sum():.2f} %)")
    sparse = [c["name"] for c, v in zip(classes, strata.values) if allocation[v] < 2]
    if sparse:
        log("Warning: " + ", ".join(sparse) + " got fewer than 2 points: no standard error can be estimated for "
            "them. Use ALLOCATION=minimum-per-class or a larger SAMPLE_SIZE.")
    return SampleResult(chosen, strata, allocation, int(counts.sum()), classes)


def _draw(ds, info, window, strata: Strata, counts, seed: int, is_canceled, progress) -> list[dict]:
    rng = np.random.default_rng(seed)
    ranks = {v: np.sort(rng.choice(int(N), size=int(c), replace=False)) for v, N, c in zip(strata.values, strata.pixels, counts)}
    seen = {v: 0 for v in strata.values}
    gt = info.geotransform
    points = []
    for r0, a in _strips(ds, window, is_canceled, progress, 0.5, 0.5):
        flat = a.ravel()
        for v in strata.values:
            want = ranks[v]
            if not len(want):
                continue
            where = np.flatnonzero(flat == v)
            lo, hi = np.searchsorted(want, [seen[v], seen[v] + len(where)])
            for rank in want[lo:hi]:
                pos = where[rank - seen[v]]
                row, col = r0 + pos // window.width, pos % window.width
                c, r = window.col + col, window.row + row
                points.append({"col": int(c), "row": int(r), "map_value": v,
                               "x": gt[0] + (c + 0.5) * gt[1], "y": gt[3] + (r + 0.5) * gt[5]})
            seen[v] += len(where)
    points.sort(key=lambda p: (p["row"], p["col"]))
    return points
