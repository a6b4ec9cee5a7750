"""Chips written as GeoTIFFs on a thread of their own."""

from __future__ import annotations

import os
import queue
import threading

import numpy as np
from osgeo import gdal

from ..layers import close_raster


def _chip_writer(path: str, data: np.ndarray, gt: tuple, wkt: str, gdal_type: int, nodata: list) -> None:
    ds = gdal.GetDriverByName("GTiff").Create(path, data.shape[2], data.shape[1], data.shape[0], gdal_type)
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for i in range(data.shape[0]):
        band = ds.GetRasterBand(i + 1)
        if nodata[i] is not None:
            band.SetNoDataValue(nodata[i])
        band.WriteArray(data[i])
    close_raster(ds, "OUTPUT", path)  # a full disk is an error here, not "Exception ignored" at close
    ds = None
    if os.path.getsize(path) < data.nbytes:  # uncompressed: a shorter file lost blocks (a size-limited file system)
        raise OSError(28, "No space left on device", path)


class ChipWriter:
    """Writes chips on a thread of its own, so GDAL's encoding overlaps the reading of the next.

    The queue is short (memory stays a few chips); a write error is raised in the caller at its
    next ``put`` or at the end, and leaving the ``with`` block waits for the last chip.
    """

    def __init__(self, depth: int = 8):
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is None:
                try:
                    _chip_writer(*item)
                except BaseException as exc:  # raised in the caller
                    self.error = exc

    def put(self, *item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and self.error is None:
            self.error = exc  # canceled or failed: the chips still queued are dropped, not written
        self.queue.put(None)
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error
        return False
