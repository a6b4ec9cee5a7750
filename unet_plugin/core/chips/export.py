"""Export Training Chips: a raster and labels in, a chip folder (ours and Esri's Classified Tiles) out.

The run as named steps: check the parameters and the raster → label grids (polygons burnt or a
label raster warped onto the image grid, the MASK) → cut the chips and write them (:mod:`.writer`,
band statistics in :mod:`.statistics`) → the metadata and Esri's files → the folder into place
(:mod:`.folder`) or the chips appended to an earlier export (:mod:`.append`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from osgeo import gdal

from .. import labels as lab
from ..codes import IGNORE
from ..errors import Canceled, UserInputError
from ..outputs import partial_path, write_error
from ..raster import (
    check_bands,
    extent_window,
    gdal_cache_budget,
    open_raster,
    raster_info,
    read_window,
    window_bounds,
    window_geotransform,
)
from ..styles import BACKGROUND_COLOR
from ..windows import Window, grid
from . import append as app
from .esri import write_esri_files
from .folder import (
    CHIPS_FORMAT,
    CHIPS_FORMAT_VERSION,
    check_output_folder,
    move_into_place,
)
from .statistics import BandStats
from .writer import ChipWriter


@dataclass(frozen=True)
class ExportConfig:
    """Parameters of Export Training Chips, as plain values (docs/parameters.md)."""

    input: str
    output: str
    bands: list[int] | None = None
    labels: str | None = None                 # OGR polygons in the raster's CRS with field ``code``
    classes: list[dict] | None = None         # classes of ``labels``: value, name, color
    label_raster: str | None = None
    mask: str | None = None                   # OGR polygons in the raster's CRS
    unlabeled: str = "background"             # or "ignore"
    extent: tuple[float, float, float, float] | None = None
    chip_size: int = 256
    stride: int = 0
    min_labeled: float = 0.0
    max_nodata: float = 50.0
    append: bool = False                      # add the chips to the earlier export in ``output`` (core/chips/append.py)


@dataclass
class ExportResult:
    output: str
    chip_count: int
    skipped: dict = field(default_factory=dict)
    chips: list[dict] = field(default_factory=list)
    classes: list[dict] = field(default_factory=list)


def _noop(*_args):
    return False


def validate(config: ExportConfig) -> None:
    """Check the parameters that need no data reading."""
    if bool(config.labels) == bool(config.label_raster):
        raise UserInputError(
            "LABELS", "give exactly one label source: class polygons (LABELS) or a classified raster (LABEL_RASTER)."
        )
    if config.chip_size < 32 or config.chip_size % 32:
        raise UserInputError("CHIP_SIZE", f"{config.chip_size} is not a multiple of 32 (try {max(32, round(config.chip_size / 32) * 32)}).")
    if config.stride < 0:
        raise UserInputError("STRIDE", "must be 0 (= chip size) or a positive number of pixels.")
    if config.unlabeled not in ("background", "ignore"):
        raise UserInputError("UNLABELED", "must be 'background' or 'ignore'.")
    for key, v in (("MIN_LABELED", config.min_labeled), ("MAX_NODATA", config.max_nodata)):
        if not 0 <= v <= 100:
            raise UserInputError(key, "must be a percentage from 0 to 100.")


def export_chips(
    config: ExportConfig,
    progress: Callable[[float], None] = lambda f: None,
    is_canceled: Callable[[], bool] = _noop,
    log: Callable[[str], None] = lambda m: None,
    warn: Callable[[str], None] | None = None,
) -> ExportResult:
    """Run Export Training Chips.

    Chips are written into a temporary folder beside OUTPUT and moved into
    place at the end, so a canceled or failed run leaves nothing that looks
    like a data set.

    Raises:
        UserInputError: for bad parameters or data, naming the parameter.
        Canceled: when ``is_canceled()`` turned true.
    """
    with gdal_cache_budget():
        return _export(config, progress, is_canceled, log, warn)


# above this share of background among labelled pixels, a short training learns "background everywhere"
BACKGROUND_WARNING_SHARE = 0.9


def background_warning(config: ExportConfig, counts: np.ndarray) -> str | None:
    """A warning when polygons with UNLABELED=background leave labels that are nearly all background."""
    labeled = int(counts[:IGNORE].sum())
    if not config.labels or config.unlabeled != "background" or not labeled:
        return None
    share = counts[0] / labeled
    if share <= BACKGROUND_WARNING_SHARE:
        return None
    several = len({int(c["value"]) for c in config.classes or []}) > 1
    return (f"{100 * share:.1f} % of the labelled pixels are background (outside every polygon). "
            + ("Train U-Net takes polygons of several classes on so little of the area for samples and counts "
               "background like one average class, so that every class can show up. " if several and not config.mask else
               "A model trained on this may predict background everywhere. ")
            + "If the polygons do not mark every occurrence of their classes, export with UNLABELED=ignore (and a MASK "
            "of the areas labelled completely); if they do, give those areas as MASK, or train with CLASS_BALANCING.")


def _export(config: ExportConfig, progress, is_canceled, log, warn=None) -> ExportResult:
    validate(config)
    ds = open_raster(config.input, "INPUT")
    info = raster_info(ds, "INPUT")
    bands = check_bands(config.bands, info.band_count)
    window = extent_window(info, config.extent)
    size = config.chip_size
    if window.width < 32 or window.height < 32:
        raise UserInputError(
            "EXTENT" if config.extent else "INPUT",
            f"the area to cut is {window.width}×{window.height} px, smaller than the smallest chip (32×32 px). Use a "
            "larger raster" + (" or a larger EXTENT." if config.extent else " or a raster with a finer pixel size."))
    if size > window.width or size > window.height:
        raise UserInputError(
            "CHIP_SIZE",
            f"{size} px is larger than the area to cut ({window.width}×{window.height} px). "
            f"Use a chip size of at most {max(32, min(window.width, window.height) // 32 * 32)}.",
        )
    stride = config.stride or size
    old = app.load_target(config.output) if config.append else None
    if old is None:
        check_output_folder(config.output, config.input)
    dtypes = {info.data_types[b - 1] for b in bands}
    if len(dtypes) > 1:
        log(f"Bands have different data types {sorted(dtypes)}; chips are written as Float32.")
        gdal_type = gdal.GDT_Float32
    else:
        gdal_type = ds.GetRasterBand(bands[0]).DataType
    if old is not None:
        app.check_compatible(old, info, bands, gdal.GetDataTypeName(gdal_type), size)
    nodata = [info.nodata[b - 1] for b in bands]

    parent = os.path.dirname(os.path.abspath(config.output)) or "."
    try:
        os.makedirs(parent, exist_ok=True)
        work = partial_path(config.output)
        os.makedirs(work)
    except OSError as exc:
        raise write_error("OUTPUT", config.output, exc) from None
    try:
        result = _export_into(config, ds, info, bands, window, size, stride, gdal_type, nodata, work, progress, is_canceled, log,
                              warn, old["classes"] if old else None)
        if old is None:
            move_into_place(work, config.output)
        else:
            with open(os.path.join(work, "dataset.json"), encoding="utf-8") as f:
                merged = app.merge_into(work, config.output, old, json.load(f))
            log(f"{result.chip_count} chips added to the {len(old['chips'])} of '{config.output}' ({len(merged['chips'])} "
                "now); its classes and normalisation are kept.")
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise write_error("OUTPUT", config.output, exc) from None
    except RuntimeError as exc:  # GDAL: a write error of a chip
        shutil.rmtree(work, ignore_errors=True)
        if "write" in str(exc).lower() or "space" in str(exc).lower():
            raise write_error("OUTPUT", config.output, exc) from None
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result.output = config.output
    return result


@dataclass
class _Labels:
    """The label grid (and MASK grid) on the image's pixel grid over the window, and the classes."""

    ds: object  # gdal.Dataset of the label grid
    nodata: float | None
    mask: object | None  # gdal.Dataset of the burnt MASK, or None
    classes: list[dict]


@dataclass
class _Cut:
    """What cutting the chips found: the chips written, label counts, band statistics, why others were skipped."""

    chips: list[dict]
    counts: np.ndarray
    stats: BandStats
    skipped: dict
    windows: int
    any_valid: bool


def _export_into(config, ds, info, bands, window, size, stride, gdal_type, nodata, work, progress, is_canceled, log, warn,
                 known_classes=None):
    scratch = os.path.join(work, ".scratch")
    os.makedirs(scratch)
    os.makedirs(os.path.join(work, "images"))
    os.makedirs(os.path.join(work, "labels"))
    labels = _label_grids(config, info, window, scratch, known_classes)
    cut = _cut_chips(config, ds, info, bands, window, size, stride, gdal_type, nodata, work, labels, progress, is_canceled)
    if not cut.chips:
        raise _nothing_left(config, cut)
    all_classes = [{"value": 0, "name": "background", "color": list(BACKGROUND_COLOR)}] + sorted(labels.classes, key=lambda c: c["value"])
    for c in all_classes:
        c["pixel_count"] = int(cut.counts[c["value"]])
    _write_metadata(config, info, bands, size, stride, gdal_type, nodata, work, all_classes, cut)
    total = sum(cut.skipped.values())
    log(f"{len(cut.chips)} chips written, {total} skipped" + "".join(f"; {v} by {k}" for k, v in cut.skipped.items() if v) + ".")
    labeled = max(int(cut.counts[:IGNORE].sum()), 1)
    log("Class shares of labelled pixels: " + ", ".join(f"{c['name']} {100 * c['pixel_count'] / labeled:.1f}%" for c in all_classes))
    background = background_warning(config, cut.counts)
    if background:
        (warn or log)(background)
    labels.ds = labels.mask = None
    return ExportResult(output=work, chip_count=len(cut.chips), skipped=cut.skipped, chips=cut.chips, classes=all_classes)


def _label_grids(config: ExportConfig, info, window: Window, scratch: str, known_classes) -> _Labels:
    """LABELS burnt (or LABEL_RASTER warped) and MASK burnt onto the image's grid over ``window``."""
    fill = 0 if config.unlabeled == "background" else IGNORE
    label_path = os.path.join(scratch, "labels.tif")
    if config.labels:
        n = lab.burn_polygons(config.labels, label_path, info, window, fill, "LABELS")
        if n == 0:
            raise UserInputError(
                "LABELS", "no label polygon overlaps the raster (or EXTENT). Check the layer and its CRS."
            )
        classes = [dict(c) for c in config.classes or []]
    else:
        classes = lab.raster_classes(config.label_raster)
        # a label raster's nodata, and where it does not reach, are unknown whatever UNLABELED says
        # (UNLABELED is what the area outside every *polygon* means)
        label_path = lab.warp_label_raster(config.label_raster, os.path.join(scratch, "labels"), info, window, IGNORE)
    if known_classes is not None:  # appending: the folder's classes, before any chip is cut
        app.match_classes(known_classes, classes, "LABELS" if config.labels else "LABEL_RASTER")
    label_ds = gdal.Open(label_path)
    mask_ds = None
    if config.mask:
        mask_path = os.path.join(scratch, "mask.tif")
        if lab.burn_mask(config.mask, mask_path, info, window) == 0:
            raise UserInputError("MASK", "no mask polygon overlaps the raster (or EXTENT).")
        mask_ds = gdal.Open(mask_path)
    return _Labels(label_ds, label_ds.GetRasterBand(1).GetNoDataValue(), mask_ds, classes)


def _cut_chips(config, ds, info, bands, window, size, stride, gdal_type, nodata, work, labels: _Labels, progress,
               is_canceled) -> _Cut:
    """Every chip of the grid that passes MASK, MAX_NODATA and MIN_LABELED, written to ``work``."""
    windows = grid(window.col, window.row, window.width, window.height, size, stride)
    cut = _Cut([], np.zeros(256, dtype=np.int64), BandStats(len(bands)),
               {"outside MASK": 0, "MAX_NODATA": 0, "MIN_LABELED": 0, "no labelled pixel": 0}, len(windows), False)
    skipped, chips = cut.skipped, cut.chips
    with ChipWriter() as writer:
        for i, w in enumerate(windows):
            if is_canceled():
                raise Canceled()
            progress(i / len(windows))
            local = Window(w.col - window.col, w.row - window.row, w.width, w.height)
            known = None
            if labels.mask is not None:
                known = labels.mask.ReadAsArray(local.col, local.row, local.width, local.height).astype(bool)
                if not known.any():
                    skipped["outside MASK"] += 1
                    continue
            data, valid = read_window(ds, bands, w, info.nodata)
            cut.any_valid = cut.any_valid or bool(valid.any())
            nodata_pct = 100.0 * (1 - valid.mean())
            if nodata_pct > config.max_nodata:
                skipped["MAX_NODATA"] += 1
                continue
            label = lab.label_values(labels.ds.ReadAsArray(local.col, local.row, local.width, local.height), labels.nodata, IGNORE)
            label[~valid] = IGNORE
            if known is not None:
                label[~known] = IGNORE
            hist = np.bincount(label.ravel(), minlength=256)
            if hist[:IGNORE].sum() == 0:
                skipped["no labelled pixel"] += 1
                continue
            labeled_pct = 100.0 * hist[1:IGNORE].sum() / label.size
            if labeled_pct < config.min_labeled or (config.min_labeled > 0 and labeled_pct == 0):
                skipped["MIN_LABELED"] += 1
                continue
            chip_id = f"{len(chips):09d}"
            gt = window_geotransform(info.geotransform, w)
            writer.put(os.path.join(work, "images", chip_id + ".tif"), data, gt, info.crs_wkt, gdal_type, nodata)
            writer.put(os.path.join(work, "labels", chip_id + ".tif"), label[None], gt, info.crs_wkt, gdal.GDT_Byte, [None])
            cut.stats.add(data, valid)
            cut.counts += hist
            chips.append({
                "id": chip_id, "col": w.col, "row": w.row,
                "bounds": list(window_bounds(info.geotransform, w)),
                "label_shares": {str(v): round(float(hist[v]) / label.size, 6) for v in np.nonzero(hist)[0]},
            })
    progress(1.0)
    return cut


def _nothing_left(config: ExportConfig, cut: _Cut) -> UserInputError:
    """Why no chip is left, naming the parameter that removed them."""
    skipped = cut.skipped
    reasons = ", ".join(f"{k}: {v}" for k, v in skipped.items() if v)
    culprit = max(skipped, key=skipped.get)
    labels_key = "LABELS" if config.labels else "LABEL_RASTER"
    if culprit == "MAX_NODATA" and not cut.any_valid:
        return UserInputError("EXTENT" if config.extent else "INPUT",
                              "the imagery holds only nodata here (no valid pixel in any chip). Check the raster's "
                              "nodata value" + (" and EXTENT." if config.extent else "."))
    if culprit == "no labelled pixel":
        return UserInputError(labels_key, f"no chip has a labelled pixel ({reasons} of {cut.windows}): the labels do "
                              "not overlap the imagery's valid pixels. Check that they cover the same area (their "
                              "CRS) and hold class values 1–254.")
    param = {"outside MASK": "MASK", "MAX_NODATA": "MAX_NODATA", "MIN_LABELED": "MIN_LABELED"}.get(culprit, labels_key)
    return UserInputError(param, f"no chip is left after filtering ({reasons} of {cut.windows}). Relax {param} or check the labels.")


def _write_metadata(config, info, bands, size, stride, gdal_type, nodata, work, all_classes, cut: _Cut) -> None:
    """dataset.json (with the manifest of the export's files) and Esri's files."""
    meta = {
        "format": CHIPS_FORMAT,
        "format_version": CHIPS_FORMAT_VERSION,
        "source": os.path.abspath(config.input),
        "source_band_count": info.band_count,
        "crs": info.crs_wkt,
        "pixel_size": list(info.pixel_size),
        "bands": [{"index": b, "name": info.band_names[b - 1]} for b in bands],
        "data_type": gdal.GetDataTypeName(gdal_type),
        "nodata": nodata,
        "chip_size": size,
        "stride": stride,
        "unlabeled": config.unlabeled,
        "label_source": "polygons" if config.labels else "raster",
        "mask": bool(config.mask),
        "ignore_value": IGNORE,
        "classes": all_classes,
        "ignored_pixel_count": int(cut.counts[IGNORE]),
        "statistics": cut.stats.as_list(bands, info.band_names),
        "chips": cut.chips,
    }
    write_esri_files(work, meta)
    meta["files"] = sorted(os.path.relpath(os.path.join(r, f), work).replace(os.sep, "/")
                           for r, _d, fs in os.walk(work) if not os.path.relpath(r, work).startswith(".scratch")
                           for f in fs) + ["dataset.json"]
    meta["files"] = sorted(set(meta["files"]))
    with open(os.path.join(work, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
