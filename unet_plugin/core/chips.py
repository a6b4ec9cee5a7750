"""Export Training Chips: cut imagery and labels into a georeferenced chip data set.

The folder format (``dataset.json``, ``images/``, ``labels/``) is described in
docs/contract.md; the Esri "Classified Tiles" files are written beside it so the same
folder trains in arcgis.learn.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from osgeo import gdal

from . import append as app
from . import labels as lab
from .errors import Canceled, UserInputError
from .layers import close_raster
from .outputs import apply_umask, partial_path, write_error
from .raster import (
    check_bands, extent_window, gdal_cache_budget, open_raster, raster_info, read_window,
    window_bounds, window_geotransform,
)
from .styles import BACKGROUND_COLOR
from .windows import Window, grid

FORMAT_NAME = "unet-qgis-chips"
FORMAT_VERSION = 1
IGNORE = 255


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
    append: bool = False                      # add the chips to the earlier export in ``output`` (core/append.py)


@dataclass
class ExportResult:
    output: str
    chip_count: int
    skipped: dict = field(default_factory=dict)
    chips: list[dict] = field(default_factory=list)
    classes: list[dict] = field(default_factory=list)


def _noop(*_args):
    return False


class _BandStats:
    """Per-band count, mean, standard deviation, min and max over valid pixels, chip by chip.

    Each chip's mean and sum of squared deviations are merged into the running ones (Chan et
    al.'s pairwise update), which stays exact where a sum of squares would lose digits to large
    values. Integer bands of up to 16 bits are counted in a histogram, the cheapest pass over
    them; other types in float64.
    """

    _OFFSETS = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 0, np.dtype(np.int8): 128, np.dtype(np.int16): 32768}

    def __init__(self, n: int):
        self.count = np.zeros(n)
        self.mean = np.zeros(n)
        self.m2 = np.zeros(n)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)

    def add(self, data: np.ndarray, valid: np.ndarray) -> None:
        n = int(np.count_nonzero(valid))
        if n == 0:
            return
        every = n == valid.size
        offset = self._OFFSETS.get(data.dtype)
        for i in range(data.shape[0]):
            px = data[i].ravel() if every else data[i][valid]
            if offset is not None:
                hist = np.bincount(px.astype(np.int32) + offset if offset else px)
                values = np.arange(len(hist), dtype=np.float64) - offset
                mean = float(hist @ values) / n
                m2 = float(hist @ np.square(values - mean))
                seen = np.flatnonzero(hist)
                lo, hi = values[seen[0]], values[seen[-1]]
            else:
                x = px.astype(np.float64)
                mean = float(x.mean())
                d = x - mean
                m2 = float(d @ d)
                lo, hi = float(x.min()), float(x.max())
            total = self.count[i] + n
            delta = mean - self.mean[i]
            self.mean[i] += delta * n / total
            self.m2[i] += m2 + delta * delta * self.count[i] * n / total
            self.count[i] = total
            self.min[i] = min(self.min[i], lo)
            self.max[i] = max(self.max[i], hi)

    def as_list(self, bands: list[int], names: tuple) -> list[dict]:
        std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        return [
            {"band": b, "name": names[b - 1], "min": float(self.min[i]), "max": float(self.max[i]),
             "mean": float(self.mean[i]), "std": float(std[i]), "count": int(self.count[i])}
            for i, b in enumerate(bands)
        ]


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


def check_output_folder(output: str, source: str) -> None:
    """Refuse to mix data sets: OUTPUT must be new, empty, or an earlier export of the same raster."""
    replaced = output.rstrip("/\\") + ".replaced"  # left by versions before 0.4.2 killed while replacing
    if os.path.isdir(replaced):
        if os.path.exists(output):
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            os.replace(replaced, output)
    if not os.path.exists(output):
        return
    if not os.path.isdir(output):
        raise UserInputError("OUTPUT", f"'{output}' is a file, not a folder.")
    entries = os.listdir(output)
    if not entries:
        return
    meta = os.path.join(output, "dataset.json")
    if os.path.exists(meta):
        try:
            with open(meta, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = {}
        if old.get("format") == FORMAT_NAME and os.path.abspath(old.get("source", "")) == os.path.abspath(source):
            return  # a re-run of the same export: replaced as a whole at the end
        raise UserInputError(
            "OUTPUT",
            f"'{output}' already holds a chip data set of another raster "
            f"({old.get('source', 'unknown')}). Choose a new or empty folder; data sets are never mixed.",
        )
    raise UserInputError(
        "OUTPUT", f"'{output}' is not empty ({len(entries)} entries). Choose a new or empty folder."
    )


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


class _ChipWriter:
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
            _move_into_place(work, config.output)
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


#: what an export writes besides the chips; with the chips' files, the export's own (its manifest)
EXPORT_FILES = ("dataset.json", "map.txt", "esri_model_definition.emd", "esri_accumulated_stats.json", "stats.txt")


def owned_files(output: str) -> list[str]:
    """The files (relative paths) an earlier export wrote into ``output``: its manifest in
    dataset.json, or for exports before 0.4.2 the chips it lists and the files every export writes."""
    try:
        with open(os.path.join(output, "dataset.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return [f for f in EXPORT_FILES if os.path.exists(os.path.join(output, f))]
    if isinstance(meta.get("files"), list):
        return [str(f) for f in meta["files"]] + ["dataset.json"]
    chips = [c.get("id") for c in meta.get("chips", []) if isinstance(c, dict)]
    return ([os.path.join(sub, f"{c}.tif") for c in chips if c for sub in ("images", "labels")]
            + [f for f in EXPORT_FILES if os.path.exists(os.path.join(output, f))])


def _move_into_place(work: str, output: str) -> None:
    """The finished export in ``work`` becomes ``output``; an earlier export there is replaced file
    by file — exactly the files it wrote (its manifest); anything else in the folder stays."""
    shutil.rmtree(os.path.join(work, ".scratch"), ignore_errors=True)
    apply_umask(work)
    if not os.path.isdir(output) or not os.listdir(output):
        if os.path.isdir(output):
            os.rmdir(output)
        os.replace(work, output)
        return
    old = partial_path(output)  # the earlier export's files, until the new ones are in place
    for rel in owned_files(output):
        src = os.path.join(output, rel)
        if os.path.isfile(src) and os.path.normpath(rel).split(os.sep)[0] not in ("", "..", "."):
            os.renames(src, os.path.join(old, rel))
    for root, _dirs, files in os.walk(work):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), work)
            os.makedirs(os.path.dirname(os.path.join(output, rel)), exist_ok=True)
            os.replace(os.path.join(root, f), os.path.join(output, rel))
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _export_into(config, ds, info, bands, window, size, stride, gdal_type, nodata, work, progress, is_canceled, log, warn,
                 known_classes=None):
    scratch = os.path.join(work, ".scratch")
    os.makedirs(scratch)
    os.makedirs(os.path.join(work, "images"))
    os.makedirs(os.path.join(work, "labels"))
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
    label_nodata = label_ds.GetRasterBand(1).GetNoDataValue()
    mask_ds = None
    if config.mask:
        mask_path = os.path.join(scratch, "mask.tif")
        if lab.burn_mask(config.mask, mask_path, info, window) == 0:
            raise UserInputError("MASK", "no mask polygon overlaps the raster (or EXTENT).")
        mask_ds = gdal.Open(mask_path)

    windows = grid(window.col, window.row, window.width, window.height, size, stride)
    stats = _BandStats(len(bands))
    counts = np.zeros(256, dtype=np.int64)
    skipped = {"outside MASK": 0, "MAX_NODATA": 0, "MIN_LABELED": 0, "no labelled pixel": 0}
    chips = []
    any_valid = False
    with _ChipWriter() as writer:
        for i, w in enumerate(windows):
            if is_canceled():
                raise Canceled()
            progress(i / len(windows))
            local = Window(w.col - window.col, w.row - window.row, w.width, w.height)
            known = None
            if mask_ds is not None:
                known = mask_ds.ReadAsArray(local.col, local.row, local.width, local.height).astype(bool)
                if not known.any():
                    skipped["outside MASK"] += 1
                    continue
            data, valid = read_window(ds, bands, w, info.nodata)
            any_valid = any_valid or bool(valid.any())
            nodata_pct = 100.0 * (1 - valid.mean())
            if nodata_pct > config.max_nodata:
                skipped["MAX_NODATA"] += 1
                continue
            label = lab.label_values(label_ds.ReadAsArray(local.col, local.row, local.width, local.height), label_nodata, IGNORE)
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
            stats.add(data, valid)
            counts += hist
            chips.append({
                "id": chip_id, "col": w.col, "row": w.row,
                "bounds": list(window_bounds(info.geotransform, w)),
                "label_shares": {str(v): round(float(hist[v]) / label.size, 6) for v in np.nonzero(hist)[0]},
            })
    progress(1.0)
    if not chips:
        reasons = ", ".join(f"{k}: {v}" for k, v in skipped.items() if v)
        culprit = max(skipped, key=skipped.get)
        labels_key = "LABELS" if config.labels else "LABEL_RASTER"
        if culprit == "MAX_NODATA" and not any_valid:
            raise UserInputError("EXTENT" if config.extent else "INPUT",
                                 "the imagery holds only nodata here (no valid pixel in any chip). Check the raster's "
                                 "nodata value" + (" and EXTENT." if config.extent else "."))
        if culprit == "no labelled pixel":
            raise UserInputError(labels_key, f"no chip has a labelled pixel ({reasons} of {len(windows)}): the labels do "
                                 "not overlap the imagery's valid pixels. Check that they cover the same area (their "
                                 "CRS) and hold class values 1–254.")
        param = {"outside MASK": "MASK", "MAX_NODATA": "MAX_NODATA", "MIN_LABELED": "MIN_LABELED"}.get(culprit, labels_key)
        raise UserInputError(param, f"no chip is left after filtering ({reasons} of {len(windows)}). Relax {param} or check the labels.")

    all_classes = [{"value": 0, "name": "background", "color": list(BACKGROUND_COLOR)}] + sorted(classes, key=lambda c: c["value"])
    for c in all_classes:
        c["pixel_count"] = int(counts[c["value"]])
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
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
        "ignored_pixel_count": int(counts[IGNORE]),
        "statistics": stats.as_list(bands, info.band_names),
        "chips": chips,
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
    total = sum(skipped.values())
    log(f"{len(chips)} chips written, {total} skipped" + "".join(f"; {v} by {k}" for k, v in skipped.items() if v) + ".")
    labeled = max(int(counts[:IGNORE].sum()), 1)
    log("Class shares of labelled pixels: " + ", ".join(f"{c['name']} {100 * c['pixel_count'] / labeled:.1f}%" for c in all_classes))
    background = background_warning(config, counts)
    if background:
        (warn or log)(background)
    label_ds = mask_ds = None
    return ExportResult(output=work, chip_count=len(chips), skipped=skipped, chips=chips, classes=all_classes)


ESRI_IGNORE_NAME = "ignore (unlabelled or nodata)"


def esri_classes(meta: dict) -> list[dict]:
    """The classes as Esri's Classified Tiles lists them: no 0 (Esri's NoData), and our ignore value
    255 as a class of its own when the labels hold it.

    arcgis.learn feeds label values unchanged to its loss when the class values are 1..n without
    gaps, so a 255 it does not know ends in "Target 255 is out of bounds". Declared as a class,
    it is mapped to a class index like any other, and ``UnetClassifier(data, ignore_classes=[255])``
    leaves it out of the loss, which is what 255 means here.
    """
    classes = [dict(c) for c in meta["classes"] if c["value"] != 0]
    if meta.get("ignored_pixel_count", 0) > 0:
        classes.append({"value": IGNORE, "name": ESRI_IGNORE_NAME, "color": [0, 0, 0],
                        "pixel_count": int(meta["ignored_pixel_count"])})
    return classes


def write_esri_files(folder: str, meta: dict) -> None:
    """Write the files arcgis.learn's ``prepare_data(dataset_type="Classified_Tiles")`` reads, in Pro's layout.

    ``esri_model_definition.emd`` (classes with Value/Name/Color, band statistics without nodata
    in ``AllTilesStats``, ``InputRastersProps``), ``esri_accumulated_stats.json`` (class pixel and
    image counts under ``ClassPixelStats``, which arcgis.learn's class balancing and multi-folder
    merging read; ``BandStatsState``), ``map.txt`` and ``stats.txt``.
    """
    size = meta["chip_size"]
    classes = esri_classes(meta)
    chips = meta["chips"]
    images_per_class = [sum(1 for ch in chips if ch["label_shares"].get(str(c["value"]), 0) > 0) for c in classes]
    with open(os.path.join(folder, "map.txt"), "w", encoding="utf-8") as f:
        for chip in chips:
            f.write(f"images\\{chip['id']}.tif labels\\{chip['id']}.tif\n")
    stats = meta["statistics"]
    emd = {
        "Framework": "arcgis.learn.models._inferencing",
        "ModelConfiguration": "_unet",
        "ModelType": "ImageClassification",
        "MetaDataMode": "Classified_Tiles",
        "ExtractBands": list(range(len(meta["bands"]))),
        "ImageHeight": size,
        "ImageWidth": size,
        "ImageSpaceUsed": "MAP_SPACE",
        "Classes": [{"Value": c["value"], "Name": c["name"], "Color": list(c["color"][:3])} for c in classes],
        "InputRastersProps": {
            "RasterCount": 1,
            "BandNames": [b["name"] for b in meta["bands"]],
            "DataType": meta["data_type"],
            "NoData": meta.get("nodata"),
            "CellSize": {"x": meta["pixel_size"][0], "y": meta["pixel_size"][1]},
            "SpatialReference": {"wkt": meta["crs"]},
        },
        "AllTilesStats": [{"BandName": s.get("name", ""), "Min": s["min"], "Max": s["max"], "Mean": s["mean"],
                           "StdDev": s["std"]} for s in stats],
    }
    with open(os.path.join(folder, "esri_model_definition.emd"), "w", encoding="utf-8") as f:
        json.dump(emd, f, indent=1)
    accumulated = {
        "Version": 1,
        "MetaDataMode": "Classified_Tiles",
        "ImageFormat": "TIFF",
        "NumTiles": len(chips),
        "TileSizeX": size,
        "TileSizeY": size,
        "NumBands": len(meta["bands"]),
        "NumClasses": len(classes),
        "OutputFeatures": False,
        "ImageSpaceUsed": "MAP_SPACE",
        "CellSize": {"x": meta["pixel_size"][0], "y": meta["pixel_size"][1]},
        "SpatialReference": {"wkt": meta["crs"]},
        "Classes": [{"ClassValue": c["value"], "ClassName": c["name"], "ClassColor": list(c["color"][:3])} for c in classes],
        "ClassPixelStats": {
            "NumClasses": len(classes),
            "NumImagesTotal": len(chips),
            "NumImagesPerClass": images_per_class,
            "NumPixelsPerClass": [int(c["pixel_count"]) for c in classes],
        },
        # Min, Max, M1 (mean), M2 (sum of squared deviations) and Num over valid pixels: what
        # arcgis.learn merges across folders into AllTilesStats
        "BandStatsState": [{"Min": s["min"], "Max": s["max"], "M1": s["mean"], "M2": s["std"] ** 2 * s.get("count", 0),
                            "Num": s.get("count", 0)} for s in stats],
    }
    with open(os.path.join(folder, "esri_accumulated_stats.json"), "w", encoding="utf-8") as f:
        json.dump(accumulated, f, indent=1)
    with open(os.path.join(folder, "stats.txt"), "w", encoding="utf-8") as f:
        f.write(f"Total number of tiles: {len(chips)}\n")
        for c in classes:
            f.write(f"Class {c['value']} ({c['name']}): {c['pixel_count']} pixels\n")
