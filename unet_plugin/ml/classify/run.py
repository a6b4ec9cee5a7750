"""Classify Raster: stream a raster through a trained U-Net in blended, overlapping tiles.

The run as named steps: check the parameters and the raster against the model, plan the tile
grid, choose the forward pass, open the partial outputs, stream the strips (:mod:`.strips`),
finish the outputs (merge, sieve, polygons, style, rename) and report.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...core.codes import NODATA
from ...core.errors import UserInputError
from ...core.outputs import check_aliases
from ...core.paths import check_output_file, check_output_format
from ...core.raster import extent_window, gdal_cache_budget, open_raster, raster_info
from ...core.windows import Window
from .. import distributed
from ..device import check_precision, pick_device
from ..model import ModelFileError, load_model
from .bands import check_input, model_bands
from .config import BLOCK_WIDTH, ClassifyConfig, ClassifyResult
from .engines import forward_engine
from .outputs import PartialOutputs
from .precision import sample_tiles
from .strips import Source, StripRunner
from .tiles import TileGrid, plan_tiles


@dataclass
class Job:
    """What a checked run works with: the model, the raster and the window to classify."""

    device: torch.device
    model: torch.nn.Module
    meta: dict
    info: object  # RasterInfo
    source: Source
    tile: int
    warnings: list[str]

    @property
    def classes(self) -> list[dict]:
        return self.meta["classes"]

    @property
    def window(self) -> Window:
        return self.source.window


def classify(
    config: ClassifyConfig,
    progress: Callable[[float], None] = lambda f: None,
    is_canceled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> ClassifyResult:
    """Run Classify Raster.

    Raises:
        UserInputError: bad parameters, a file that is not a model, mismatching bands.
        Canceled: the run was canceled; no output is left behind.
    """
    with gdal_cache_budget():
        return _classify(config, progress, is_canceled, log, warn)


def _classify(config: ClassifyConfig, progress, is_canceled, log, warn) -> ClassifyResult:
    t0 = time.time()
    job = _check(config, log, warn)
    grid = plan_tiles(job.window.width, job.window.height, job.tile, config.overlap, int(config.block_width or BLOCK_WIDTH),
                      distributed.rank(), distributed.world())
    forward, engine = _engine(config, job, grid, log)
    log(f"Classifying {job.window.width}×{job.window.height} px in {grid.n_tiles} tiles of {grid.tw}×{grid.th} px "
        f"(overlap {config.overlap:g} %, stride {grid.stride} px) on {job.device} with {engine}; model "
        f"{job.meta['backbone']}, {len(job.classes)} classes.")
    stamp = distributed.agree(f"{os.getpid()}-{secrets.token_hex(4)}")  # one run's partial names, on every process
    outputs = PartialOutputs(config, job.classes, stamp, distributed.rank(), distributed.world())
    try:
        counts, run, skipped = _stream(config, job, grid, forward, outputs, progress, is_canceled)
        if distributed.active():
            counts[:] = distributed.total(counts)
            distributed.barrier()  # every process's rows are written
            if not distributed.is_main():
                return _result_of(config, job.classes, run, skipped, t0, counts, job.warnings, engine, log, job.window,
                                  job.device, False)
            outputs.merge(grid.rows, job.window.height, distributed.world())
        _refine(config, outputs.class_map, job.classes, is_canceled, log)
        outputs.finish()
    except BaseException:
        outputs.discard()
        raise
    return _result_of(config, job.classes, run, skipped, t0, counts, job.warnings, engine, log, job.window, job.device, True)


def _check(config: ClassifyConfig, log, warn) -> Job:
    """Every parameter, the model file and the raster checked before any tile runs."""
    warnings: list[str] = []

    def _warn(msg):
        warnings.append(msg)
        (warn or log)(msg)

    device = pick_device(config.device)
    try:
        model, meta = load_model(config.model, device)
    except ModelFileError as exc:
        raise UserInputError("MODEL", str(exc)) from None
    ds = open_raster(config.input, "INPUT")
    info = raster_info(ds, "INPUT")
    bands = model_bands(meta, info, config.bands)
    window = extent_window(info, config.extent)
    tile = int(config.tile_size or meta["chip_size"])
    if tile < 32 or tile % 32:
        raise UserInputError("TILE_SIZE", f"{tile} is not usable: the model needs a multiple of 32 (e.g. {max(32, round(tile / 32) * 32)}).")
    if not 0 <= config.overlap <= 75:
        raise UserInputError("OVERLAP", "must be a percentage from 0 to 75.")
    if config.batch_size < 1:
        raise UserInputError("BATCH_SIZE", "must be at least 1.")
    if config.min_area < 0:
        raise UserInputError("MIN_AREA", "must be 0 (off) or a number of pixels.")
    outputs = {"OUTPUT": config.output, "OUTPUT_CONFIDENCE": config.output_confidence,
               "OUTPUT_PROBABILITIES": config.output_probabilities, "OUTPUT_POLYGONS": config.output_polygons}
    check_aliases({"INPUT": config.input, "MODEL": config.model}, outputs)
    for key, path in outputs.items():
        if path:
            check_output_file(path, key)
            check_output_format(path, key, "vector_out" if key == "OUTPUT_POLYGONS" else "raster_out")
    check_input(ds, info, meta, bands, _warn)
    check_precision(config.precision)
    mean = np.array(meta["normalization"]["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.array(meta["normalization"]["std"], dtype=np.float32).reshape(-1, 1, 1)
    return Job(device, model, meta, info, Source(ds, bands, window, info.nodata, mean, std), tile, warnings)


def _engine(config: ClassifyConfig, job: Job, grid: TileGrid, log):
    """The forward pass and its name; PRECISION=auto calibrates on tiles of this raster."""
    def calibration():
        return sample_tiles(lambda r, c: job.source.read(c, r, grid.tw, grid.th), grid.rows, grid.cols)

    return forward_engine(job.model, job.meta, config, job.device, grid.th, grid.tw, grid.n_tiles, log, calibration)


def _stream(config: ClassifyConfig, job: Job, grid: TileGrid, forward, outputs: PartialOutputs, progress, is_canceled):
    """Every tile of this process's rows through the model into closed partial rasters: (counts, run, skipped).

    Rank 0 writes the whole raster; other processes their band of rows into part files it merges.
    """
    main = distributed.is_main()
    y_off = 0 if main else grid.y0
    outputs.create(job.info, job.window, y_off, job.window.height if main else grid.y1 - grid.y0)
    lut = np.array([int(c["value"]) for c in job.classes], dtype=np.uint8)
    runner = StripRunner(job.source, grid, forward, lut, job.device, outputs, config.batch_size, config.tta)
    runner.run_all(progress, is_canceled)
    outputs.close()
    return runner.counts, runner.run, runner.skipped


def _refine(config: ClassifyConfig, class_map: str, classes: list[dict], is_canceled, log) -> None:
    """MIN_AREA's sieve and OUTPUT_POLYGONS, on the whole class map."""
    if config.min_area <= 0 and not config.output_polygons:
        return
    from ...core.regions import polygonize, sieve

    if config.min_area > 0:
        sieve(class_map, config.min_area, is_canceled)
        log(f"Minimum mapping unit {config.min_area} px: smaller regions merged into the largest neighbouring region.")
    if config.output_polygons:
        n_polygons = polygonize(class_map, config.output_polygons, classes, is_canceled)
        log(f"{n_polygons:,} polygons written to {config.output_polygons}.")


def _result_of(config, classes, run, skipped, t0, counts, warnings, engine, log, window, device, report) -> ClassifyResult:
    total = max(int(counts[:NODATA].sum()), 1)
    shares = {c["name"]: float(counts[int(c["value"])]) / total for c in classes}
    seconds = time.time() - t0
    if report:
        procs = distributed.world()
        log(f"{run} tiles classified{f' by rank 0 of {procs} processes' if procs > 1 else ''}, {skipped} skipped (all nodata), "
            f"{seconds:.1f} s ({window.width * window.height / 1e6 / max(seconds, 1e-9):.2f} Mpx/s) on {device} with {engine}.")
        log("Class shares: " + ", ".join(f"{n} {100 * s:.1f}%" for n, s in shares.items()))
    return ClassifyResult(config.output, config.output_confidence, classes, run, skipped, seconds, shares, warnings, engine)
