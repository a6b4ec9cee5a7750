"""Small GDAL helpers shared by export and classification."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from .errors import UserInputError
from .windows import Window

gdal.UseExceptions()

STRIP_ROWS = 256  # rows per read where a whole raster is walked in strips (counts, samples, accuracy)


@dataclass(frozen=True)
class RasterInfo:
    """What export and classification need to know about an image."""

    path: str
    width: int
    height: int
    band_count: int
    geotransform: tuple
    crs_wkt: str
    data_types: tuple[str, ...]
    nodata: tuple[float | None, ...]
    band_names: tuple[str, ...]

    @property
    def pixel_size(self) -> tuple[float, float]:
        return abs(self.geotransform[1]), abs(self.geotransform[5])


def open_raster(path: str, parameter: str = "INPUT") -> gdal.Dataset:
    """Open a raster read-only, or raise a :class:`UserInputError` naming ``parameter``."""
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise UserInputError(parameter, f"cannot open raster '{path}': {exc}") from None
    if ds is None or ds.RasterCount == 0:
        raise UserInputError(parameter, f"'{path}' is not a raster with bands")
    return ds


def raster_info(ds: gdal.Dataset, parameter: str = "INPUT") -> RasterInfo:
    """Describe ``ds``; refuse rasters without a CRS or with a rotated grid."""
    wkt = ds.GetProjection() or ""
    if not wkt:
        raise UserInputError(
            parameter,
            "the raster has no coordinate reference system. Assign one "
            "(Raster ▸ Projections ▸ Assign Projection) and run again.",
        )
    gt = ds.GetGeoTransform()
    if gt[2] != 0 or gt[4] != 0:
        raise UserInputError(
            parameter, "the raster grid is rotated; warp it to a north-up grid first (gdalwarp)."
        )
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    complex_types = sorted({gdal.GetDataTypeName(b.DataType) for b in bands if gdal.DataTypeIsComplex(b.DataType)})
    if complex_types:
        raise UserInputError(
            parameter, f"the raster holds complex values ({', '.join(complex_types)}), e.g. radar in SLC form; convert "
            "them to real bands first (amplitude or intensity, e.g. with the Raster Calculator).")
    return RasterInfo(
        path=ds.GetDescription(),
        width=ds.RasterXSize,
        height=ds.RasterYSize,
        band_count=ds.RasterCount,
        geotransform=tuple(gt),
        crs_wkt=wkt,
        data_types=tuple(gdal.GetDataTypeName(b.DataType) for b in bands),
        nodata=tuple(b.GetNoDataValue() for b in bands),
        band_names=tuple(b.GetDescription() or f"Band {i + 1}" for i, b in enumerate(bands)),
    )


def check_bands(bands: list[int] | None, band_count: int, parameter: str = "BANDS") -> list[int]:
    """Validate 1-based band numbers; ``None`` or empty means every band in order."""
    if not bands:
        return list(range(1, band_count + 1))
    bad = [b for b in bands if b < 1 or b > band_count]
    if bad:
        raise UserInputError(
            parameter, f"band(s) {bad} do not exist; the raster has bands 1 to {band_count}."
        )
    if len(set(bands)) != len(bands):
        raise UserInputError(parameter, "a band is listed twice.")
    return list(bands)


def extent_window(
    info: RasterInfo, extent: tuple[float, float, float, float] | None, parameter: str = "EXTENT"
) -> Window:
    """The pixel window covering ``extent`` (xmin, ymin, xmax, ymax in the raster's CRS).

    Pixels partly inside the extent are included; the window is clipped to the
    raster. ``None`` means the whole raster.
    """
    if extent is None:
        return Window(0, 0, info.width, info.height)
    x0, px, _, y0, _, py = info.geotransform
    xmin, ymin, xmax, ymax = extent
    c0 = int(np.floor((xmin - x0) / px + 1e-9))
    c1 = int(np.ceil((xmax - x0) / px - 1e-9))
    # py is negative for north-up rasters
    r0 = int(np.floor((ymax - y0) / py + 1e-9)) if py < 0 else int(np.floor((ymin - y0) / py + 1e-9))
    r1 = int(np.ceil((ymin - y0) / py - 1e-9)) if py < 0 else int(np.ceil((ymax - y0) / py - 1e-9))
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, info.width), min(r1, info.height)
    if c1 <= c0 or r1 <= r0:
        raise UserInputError(
            parameter,
            "the extent does not overlap the raster. Pick an extent inside the raster "
            "(or leave it empty for the whole raster).",
        )
    return Window(c0, r0, c1 - c0, r1 - r0)


def window_geotransform(gt: tuple, window: Window) -> tuple:
    """Geotransform of ``window`` inside a raster with geotransform ``gt``."""
    return (
        gt[0] + window.col * gt[1] + window.row * gt[2],
        gt[1],
        gt[2],
        gt[3] + window.col * gt[4] + window.row * gt[5],
        gt[4],
        gt[5],
    )


def window_bounds(gt: tuple, window: Window) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a window on a north-up grid."""
    x0, y0 = gt[0] + window.col * gt[1], gt[3] + window.row * gt[5]
    x1, y1 = x0 + window.width * gt[1], y0 + window.height * gt[5]
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def read_window(
    ds: gdal.Dataset, bands: list[int], window: Window, nodata: tuple, parameter: str = "INPUT"
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``bands`` in ``window``.

    Returns:
        ``(data, valid)``: data of shape (bands, height, width) in the source
        type, and a boolean (height, width) mask that is False where any band is
        nodata or not finite.
    """
    try:
        data = ds.ReadAsArray(window.col, window.row, window.width, window.height, band_list=bands)
    except RuntimeError as exc:  # a damaged block: say where, not just "IReadBlock failed"
        raise UserInputError(
            parameter, f"'{ds.GetDescription()}' cannot be read at pixels {window.col}–{window.col + window.width}, "
            f"rows {window.row}–{window.row + window.height} ({str(exc).splitlines()[0]}). The file is damaged or "
            "incomplete; copy or export it again.") from None
    if data.ndim == 2:
        data = data[None]
    valid = np.ones(data.shape[1:], dtype=bool)
    for i, b in enumerate(bands):
        nd = nodata[b - 1]
        if nd is not None:
            valid &= data[i] != nd
        if data.dtype.kind == "f":
            valid &= np.isfinite(data[i])
    return data, valid


def same_crs(wkt_a: str, wkt_b: str) -> bool:
    """Whether two WKT strings describe the same CRS."""
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


# GDAL block cache for one run. Export and classification read a raster once, row of chips by row
# of tiles; blocks are reused only by the next chip or tile and, with overlap, the next row: a
# row of blocks of a wide raster is a few dozen MB. More cache would only hold memory.
GDAL_CACHE_BUDGET = 64 * 1024 * 1024


_budget_lock = threading.Lock()
_budget = {"runs": 0, "saved": None}


@contextmanager
def gdal_cache_budget(nbytes: int = GDAL_CACHE_BUDGET):
    """Cap GDAL's block cache while runs are active, then restore the user's setting.

    GDAL keeps up to 5 % of the RAM of blocks read and written by default; streaming a raster
    once reuses few of them, so a large raster would fill that cache and memory would grow with
    the raster's size up to the cap. A fixed, smaller cap keeps the run's memory flat.

    The cache limit is process-wide and QGIS runs algorithms in parallel tasks, so the runs
    share one cap: the first run to start saves the setting, the last one to end restores it
    (saving and restoring per run would leave the cap in place when two runs overlap).
    """
    with _budget_lock:
        if _budget["runs"] == 0:
            _budget["saved"] = gdal.GetCacheMax()
        _budget["runs"] += 1
        gdal.SetCacheMax(min(_budget["saved"], nbytes, gdal.GetCacheMax()))
    try:
        yield
    finally:
        with _budget_lock:
            _budget["runs"] -= 1
            if _budget["runs"] == 0:
                gdal.SetCacheMax(_budget["saved"])
                _budget["saved"] = None
