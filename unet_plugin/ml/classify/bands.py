"""Which of the raster's bands feed the model, and whether the raster looks like the training data."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from ...core.errors import UserInputError
from ...core.raster import check_bands, same_crs

_GENERIC_BAND = re.compile(r"^band[ _]?\d+$", re.IGNORECASE)


def _informative(name: str) -> bool:
    """A band name that says what the band is ("red", "B08"), not only where it is ("Band 3")."""
    return bool(name) and not _GENERIC_BAND.match(name.strip())


def model_bands(meta: dict, info, chosen: list[int] | None = None) -> list[int]:
    """The raster's bands to feed the model, in its order: BANDS when given, else the training bands
    by number (on a raster like the training raster) or all bands when the counts match; band names
    are compared where both sides have real ones (a raster with the bands in another order is an
    error, not a silent wrong map)."""
    wanted = [int(b["index"]) for b in meta["bands"]]
    names = [str(b.get("name") or "") for b in meta["bands"]]
    n, count = len(wanted), info.band_count
    expected = ", ".join(f"{i + 1}: {nm or 'band ' + str(w)}" for i, (w, nm) in enumerate(zip(wanted, names)))
    if chosen:
        chosen = check_bands(chosen, count, "BANDS")
        if len(chosen) != n:
            raise UserInputError("BANDS", f"the model takes {n} bands, in this order: {expected}; {len(chosen)} were given.")
        return chosen
    source_count = int(meta.get("source_band_count") or 0)
    if max(wanted) <= count and source_count in (0, count):
        picked = wanted
    elif count == n:
        picked = list(range(1, n + 1))
    else:
        raise UserInputError(
            "BANDS", f"the model takes {n} bands, in this order: {expected}; the raster has {count}. Give BANDS with the "
            f"raster's band numbers in the model's order (e.g. BANDS={','.join(str(b) for b in _by_name(names, info) or wanted[:count])}).")
    have = [info.band_names[b - 1] for b in picked]
    clash = [(i, m, h) for i, (m, h) in enumerate(zip(names, have)) if _informative(m) and _informative(h) and m.strip().lower() != h.strip().lower()]
    if clash:
        i, m, h = clash[0]
        hint = _by_name(names, info)
        raise UserInputError(
            "BANDS", f"the raster's bands do not match the model's: model band {i + 1} is '{m}', the raster gives '{h}'. "
            f"The model takes, in this order: {expected}. "
            + (f"Give BANDS={','.join(map(str, hint))} to feed the raster's bands in that order." if hint else
               "Use imagery with those bands, or give BANDS to pick and order them."))
    return picked


def _by_name(names: list[str], info) -> list[int] | None:
    """The raster's band numbers holding the model's band names, in the model's order, if all are there."""
    lookup = {nm.strip().lower(): i + 1 for i, nm in enumerate(info.band_names) if _informative(nm)}
    found = [lookup.get(nm.strip().lower()) for nm in names]
    return found if names and all(found) else None


def check_input(ds, info, meta: dict, bands: list[int], warn: Callable[[str], None]) -> None:
    """Compare the raster with the model's training data; warn where results may suffer."""
    dtypes = {info.data_types[b - 1] for b in bands}
    if meta.get("data_type") and dtypes != {meta["data_type"]}:
        warn(f"The raster's data type ({', '.join(sorted(dtypes))}) differs from the training data's ({meta['data_type']}).")
    if meta.get("pixel_size"):
        ratio = info.pixel_size[0] / float(meta["pixel_size"][0])
        if ratio > 1.5 or ratio < 1 / 1.5:
            warn(f"The raster's pixel size ({info.pixel_size[0]:g}) is far from the training data's ({float(meta['pixel_size'][0]):g}); "
                 "resample the raster to the training resolution for reliable results.")
    if meta.get("crs") and not same_crs(meta["crs"], info.crs_wkt):
        warn("The raster's CRS differs from the training data's; results are fine if the pixel size matches.")
    # a coarse look at the values: a raster scaled differently (0–1 vs 0–10000) would give garbage.
    # 16 windows of 64 px spread over the raster, not a decimated read of all of it (which GDAL does by
    # reading every pixel where there are no overviews: seconds on a large raster)
    side = 64
    xs = np.linspace(0, max(info.width - side, 0), 4).astype(int)
    ys = np.linspace(0, max(info.height - side, 0), 4).astype(int)
    sample = np.concatenate([
        ds.ReadAsArray(int(x), int(y), min(side, info.width), min(side, info.height), band_list=bands)
        .reshape(len(bands), -1) for y in ys for x in xs], axis=1).astype(np.float64)
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    for i, b in enumerate(bands):
        nd = info.nodata[b - 1]
        v = sample[i][np.isfinite(sample[i]) & ((sample[i] != nd) if nd is not None else True)]
        if v.size and abs(np.median(v) - mean[i]) > 5 * max(std[i], 1e-6):
            warn(f"Band {b}: values (median {np.median(v):.4g}) are far from the training data's (mean {mean[i]:.4g}, "
                 f"std {std[i]:.4g}); is the raster scaled the same way?")
