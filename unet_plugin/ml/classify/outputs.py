"""Classify Raster's output rasters: written as partial files beside their targets, finished whole.

The class map, confidence and probabilities are GeoTIFFs named ``.NAME.unet-partial-…`` until the
run has them whole; then each is styled, converted where the target is another format, read back and
renamed over its target. Until then an earlier output is untouched; on any failure or cancel the
partial files go. Under torchrun every process writes its band of rows to a part file of its own,
which rank 0 merges.
"""

from __future__ import annotations

import os

import numpy as np
from osgeo import gdal

from ...core.codes import CONFIDENCE_NODATA, NODATA, PROBABILITY_NODATA
from ...core.layers import close_raster, verify_raster
from ...core.outputs import (
    PARTIAL_MARK,
    commit,
    discard,
    partial_path,
    style_path,
    write_error,
    write_text,
)
from ...core.paths import raster_format
from ...core.raster import window_geotransform
from ...core.styles import apply_classes_to_band, classes_qml
from ...core.windows import Window
from .config import ClassifyConfig
from .tiles import row_range

KEYS = ("OUTPUT", "OUTPUT_CONFIDENCE", "OUTPUT_PROBABILITIES")


def targets(config: ClassifyConfig) -> dict:
    """Output key → the user's path (or None) of the three rasters."""
    return dict(zip(KEYS, (config.output, config.output_confidence, config.output_probabilities)))


def _create(path: str, width: int, height: int, gt, wkt: str, dtype: int, nodata: float, bands: int = 1) -> gdal.Dataset:
    ds = gdal.GetDriverByName("GTiff").Create(
        path, width, height, bands, dtype,
        ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2" if dtype == gdal.GDT_Byte else "PREDICTOR=1", "BIGTIFF=IF_SAFER",
         "INTERLEAVE=BAND"],
    )
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for b in range(bands):
        ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
    return ds


def probability_bytes(prob: np.ndarray) -> np.ndarray:
    """Probabilities (k, h, w) as Byte: ``min(round(p × 255), 254)``, read back as value / 255 (GDAL scale)."""
    return np.minimum(np.rint(prob * 255.0), 254).astype(np.uint8)


def _finish_output(tmp: str, final: str, classes: list[dict] | None, key: str) -> None:
    """Style a finished partial GeoTIFF, read it back, and let it replace ``final`` (converted
    first where ``final`` is another format). Until then an earlier ``final`` is untouched."""
    if classes is not None:
        ds = gdal.Open(tmp, gdal.GA_Update)
        apply_classes_to_band(ds.GetRasterBand(1), classes)
        close_raster(ds, key, final)
        ds = None
    driver = raster_format(final, key)
    if driver != "GTiff":
        converted = partial_path(final)
        try:
            gdal.Translate(converted, tmp, format=driver)
        except RuntimeError as exc:
            discard(converted)
            raise write_error(key, final, exc) from None
        finally:
            discard(tmp)
        tmp = converted
    verify_raster(tmp, key, final)
    commit(tmp, final, key)
    if classes is not None:
        write_text(style_path(final), key, classes_qml(classes))


def _part_name(path: str, rank: int, stamp: str) -> str:
    """Where process ``rank`` writes its rows of output ``path`` before rank 0 has the whole: a hidden
    name beside it, unique to this run (``stamp``: rank 0's process id and a random part), so two
    runs onto one OUTPUT never share a file."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}{PARTIAL_MARK}{stamp}" + (".tif" if rank == 0 else f".part{rank}.tif"))


def _merge_parts(config: ClassifyConfig, rows: list[int], height: int, world: int, stamp: str, strip: int = 512) -> None:
    """Copy the other processes' bands of rows into rank 0's outputs (strip by strip), removing the parts."""
    for key, path in (("OUTPUT", config.output), ("OUTPUT_CONFIDENCE", config.output_confidence),
                      ("OUTPUT_PROBABILITIES", config.output_probabilities)):
        if not path:
            continue
        whole = gdal.Open(_part_name(path, 0, stamp), gdal.GA_Update)
        for r in range(1, world):
            y0, y1 = row_range(rows, height, r, world)
            if y1 <= y0:
                continue
            part = gdal.Open(_part_name(path, r, stamp))
            for b in range(1, whole.RasterCount + 1):
                src, dst = part.GetRasterBand(b), whole.GetRasterBand(b)
                for y in range(0, y1 - y0, strip):
                    n = min(strip, y1 - y0 - y)
                    dst.WriteArray(src.ReadAsArray(0, y, part.RasterXSize, n), 0, y0 + y)
            part = None
            gdal.GetDriverByName("GTiff").Delete(_part_name(path, r, stamp))
        close_raster(whole, key, path)
        whole = None


class PartialOutputs:
    """This process's partial output rasters of one run: created, written strip by strip, closed, finished or discarded."""

    def __init__(self, config: ClassifyConfig, classes: list[dict], stamp: str, rank: int, world: int):
        self.config, self.classes, self.stamp = config, classes, stamp
        self.targets = targets(config)
        self.parts = {key: _part_name(path, rank, stamp) for key, path in self.targets.items() if path}
        main = rank == 0
        self.others = [_part_name(p, r, stamp) for r in range(1, world) for p in self.targets.values() if p and main]
        self.datasets: dict = {}
        self.y_off = 0

    def create(self, info, window: Window, y_off: int, height: int) -> None:
        """Create the rasters for rows [y_off, y_off + height) of ``window`` (none when ``height`` is 0)."""
        self.y_off = y_off
        if height <= 0:
            return
        gt = window_geotransform(info.geotransform, Window(window.col, window.row + y_off, window.width, height))
        specs = {"OUTPUT": (gdal.GDT_Byte, NODATA, 1), "OUTPUT_CONFIDENCE": (gdal.GDT_Float32, CONFIDENCE_NODATA, 1),
                 "OUTPUT_PROBABILITIES": (gdal.GDT_Byte, PROBABILITY_NODATA, len(self.classes))}
        for key, part in self.parts.items():
            dtype, nodata, bands = specs[key]
            self.datasets[key] = _create(part, window.width, height, gt, info.crs_wkt, dtype, nodata, bands)
        prob_ds = self.datasets.get("OUTPUT_PROBABILITIES")
        for b, c in enumerate(self.classes if prob_ds is not None else []):
            band = prob_ds.GetRasterBand(b + 1)
            band.SetDescription(c["name"])
            band.SetScale(1.0 / 255.0)
            band.SetOffset(0.0)

    @property
    def wants_confidence(self) -> bool:
        return "OUTPUT_CONFIDENCE" in self.datasets

    @property
    def wants_probabilities(self) -> bool:
        return "OUTPUT_PROBABILITIES" in self.datasets

    def write(self, x: int, y: int, cls: np.ndarray, conf: np.ndarray | None, probs: np.ndarray | None) -> None:
        """Rows of the class map (and confidence, probabilities) at column ``x``, window row ``y``."""
        y -= self.y_off
        self.datasets["OUTPUT"].GetRasterBand(1).WriteArray(cls, x, y)
        if conf is not None:
            self.datasets["OUTPUT_CONFIDENCE"].GetRasterBand(1).WriteArray(conf, x, y)
        if probs is not None:
            prob_ds = self.datasets["OUTPUT_PROBABILITIES"]
            for b in range(probs.shape[0]):
                prob_ds.GetRasterBand(b + 1).WriteArray(probs[b], x, y)

    def close(self) -> None:
        """Flush and close every raster; GDAL's write errors (a full disk) raise here."""
        for key in KEYS:
            ds = self.datasets.pop(key, None)
            if ds is not None:
                close_raster(ds, key, self.targets[key])
            ds = None  # no reference left: the file is closed (whole) here

    def merge(self, rows: list[int], height: int, world: int) -> None:
        """Rank 0: copy the other processes' rows into its rasters."""
        _merge_parts(self.config, rows, height, world, self.stamp)

    @property
    def class_map(self) -> str:
        return self.parts["OUTPUT"]

    def finish(self) -> None:
        """Style, convert, read back and rename every raster over its target."""
        for key, part in self.parts.items():
            _finish_output(part, self.targets[key], self.classes if key == "OUTPUT" else None, key)

    def discard(self) -> None:
        """Remove every partial file of this run (plain removal: a damaged file cannot be opened to be deleted)."""
        self.datasets.clear()
        for p in list(self.parts.values()) + self.others:
            discard(p)
