"""Assess Accuracy: a class raster against reference polygons or a reference raster.

Without torch and without QGIS. The reference is brought onto the class raster's own grid
(polygons rasterised by pixel centre, a reference raster resampled by nearest neighbour) and
compared strip by strip, so memory does not grow with the raster. Pixels that are nodata in
either, or unknown in the reference (255), do not count.
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from osgeo import gdal

from . import labels as lab
from .codes import IGNORE
from .errors import Canceled, UserInputError
from .metrics import confusion, scores
from .raster import (
    STRIP_ROWS,
    extent_window,
    gdal_cache_budget,
    open_raster,
    raster_info,
)
from .styles import default_color, hex_color
from .windows import Window


@dataclass(frozen=True)
class AccuracyConfig:
    """Parameters of Assess Accuracy, as plain values (docs/parameters.md)."""

    input: str
    reference: str | None = None              # polygons (field ``code``) in the class raster's CRS
    reference_values: list | None = None      # the class field's value of each polygon, in order (None: class 1)
    reference_raster: str | None = None
    unlabeled: str = "ignore"
    extent: tuple[float, float, float, float] | None = None
    output_report: str | None = None


@dataclass
class AccuracyResult:
    classes: list[dict]
    confusion: np.ndarray
    scores: dict
    pixels: int
    rows: list[dict] = field(default_factory=list)
    report: str | None = None


def map_classes(path: str, parameter: str = "INPUT") -> list[dict]:
    """The class raster's classes: the values it holds and every value it names (category names,
    as Classify Raster writes them for all of the model's classes, mapped or not), with names
    and colours; values without a name are ``class <value>``.
    """
    classes = {int(c["value"]): c for c in lab.raster_classes(path, parameter, keep_zero=True)}
    ds = open_raster(path, parameter)
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()  # also makes GDAL 3.6 load the names kept beside a GeoTIFF
    table = band.GetColorTable()
    for value, name in enumerate(band.GetCategoryNames() or []):
        if name and value not in classes and value != nodata and value <= 254:
            color = list(table.GetColorEntry(value)[:3]) if table is not None and value < table.GetCount() else default_color(value)
            classes[value] = {"value": value, "name": name, "color": color}
    return [classes[v] for v in sorted(classes)]


def _match_names(values: list, classes: list[dict]) -> dict:
    """Reference field values → map class values: codes by value, text by class name (case-insensitive)."""
    present = sorted({v for v in values if v is not None and v != ""}, key=str)
    by_name = {str(c["name"]).strip().lower(): int(c["value"]) for c in classes}
    by_value = {int(c["value"]) for c in classes}
    mapping, unknown = {}, []
    for v in present:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
            if int(v) in by_value:
                mapping[v] = int(v)
            else:
                unknown.append(str(int(v)))
        elif str(v).strip().lower() in by_name:
            mapping[v] = by_name[str(v).strip().lower()]
        else:
            unknown.append(str(v))
    if unknown:
        raise UserInputError(
            "CLASS_FIELD",
            f"reference classes {', '.join(sorted(unknown))} are not classes of the map. The map's classes are: "
            + ", ".join(f"{c['value']} {c['name']}" for c in classes)
            + ". Use the map's class names or values in the reference, or recode it.")
    return mapping


def _reference_grid(config: AccuracyConfig, info, window: Window, classes: list[dict], scratch: str) -> str:
    """A reference raster on the class raster's grid (window), values = map class values, 255 unknown."""
    if config.reference:
        values = config.reference_values
        fill = IGNORE
        if config.unlabeled == "background":
            zero = [c for c in classes if int(c["value"]) == 0]
            if not zero:
                raise UserInputError("UNLABELED", "the map has no class 0 (background) for the area outside the reference "
                                                  "polygons; use UNLABELED=ignore.")
            fill = 0
        coded = os.path.join(scratch, "reference.gpkg")
        if values is not None:
            mapping = _match_names(values, classes)
            src = lab.read_polygons(config.reference, "REFERENCE")
            lab.write_polygons(coded, info.crs_wkt, ((w, mapping[v]) for (w, _), v in zip(src, values) if v in mapping))
        else:
            if 1 not in {int(c["value"]) for c in classes}:
                raise UserInputError("CLASS_FIELD", "without a class field every reference polygon is class 1, which the map "
                                                    "does not have; choose the field that holds the classes.")
            shutil.copy(config.reference, coded)
        out = os.path.join(scratch, "reference.tif")
        if lab.burn_polygons(coded, out, info, window, fill, "REFERENCE") == 0:
            raise UserInputError("REFERENCE", "no reference polygon overlaps the class raster (or EXTENT). Check the layer and its CRS.")
        return out
    ref_classes = lab.raster_classes(config.reference_raster, "REFERENCE_RASTER", keep_zero=True)
    known = {int(c["value"]) for c in classes}
    unknown = [c for c in ref_classes if int(c["value"]) not in known]
    if unknown:
        raise UserInputError(
            "REFERENCE_RASTER",
            "reference classes " + ", ".join(f"{c['value']} {c['name']}" for c in unknown) + " are not classes of the map. "
            "The map's classes are: " + ", ".join(f"{c['value']} {c['name']}" for c in classes) + ". Reclassify the reference.")
    return lab.warp_label_raster(config.reference_raster, os.path.join(scratch, "reference"), info, window, IGNORE,
                                 "REFERENCE_RASTER")


def assess(
    config: AccuracyConfig,
    progress: Callable[[float], None] = lambda f: None,
    is_canceled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda m: None,
) -> AccuracyResult:
    """Run Assess Accuracy; see the module docstring.

    Raises:
        UserInputError: bad input, naming the parameter (reference classes the map does not know list both).
        Canceled: the run was canceled.
    """
    if (config.reference is None) == (config.reference_raster is None):
        raise UserInputError("REFERENCE", "give exactly one reference: polygons (REFERENCE) or a classified raster (REFERENCE_RASTER).")
    if config.unlabeled not in ("background", "ignore"):
        raise UserInputError("UNLABELED", "must be 'background' or 'ignore'.")
    if config.output_report:
        from .paths import check_output_file

        check_output_file(config.output_report, "OUTPUT_REPORT")
    with gdal_cache_budget():
        ds = open_raster(config.input, "INPUT")
        info = raster_info(ds, "INPUT")
        classes = map_classes(config.input)
        window = extent_window(info, config.extent)
        scratch = tempfile.mkdtemp(prefix="unet-accuracy-")
        try:
            ref_path = _reference_grid(config, info, window, classes, scratch)
            ref_ds = gdal.Open(ref_path)
            ref_nodata = ref_ds.GetRasterBand(1).GetNoDataValue()
            map_nodata = ds.GetRasterBand(1).GetNoDataValue()
            k = len(classes)
            lut = np.full(65536, -1, dtype=np.int64)
            for i, c in enumerate(classes):
                lut[int(c["value"])] = i
            cm = np.zeros((k, k), dtype=np.int64)
            for r0 in range(0, window.height, STRIP_ROWS):
                if is_canceled():
                    raise Canceled()
                h = min(STRIP_ROWS, window.height - r0)
                mapped = ds.GetRasterBand(1).ReadAsArray(window.col, window.row + r0, window.width, h)
                mapped = np.where(np.isfinite(mapped), mapped, -1).astype(np.int64) if mapped.dtype.kind == "f" else mapped.astype(np.int64)
                ref = lab.label_values(ref_ds.GetRasterBand(1).ReadAsArray(0, r0, window.width, h), ref_nodata, IGNORE)
                ok = (ref != IGNORE) & (mapped >= 0) & (mapped <= 65535)
                if map_nodata is not None:
                    ok &= mapped != int(map_nodata)
                mi, ri = lut[mapped[ok]], lut[ref[ok].astype(np.int64)]
                known = (mi >= 0) & (ri >= 0)
                cm += confusion(ri[known], mi[known], k)
                progress(min(1.0, (r0 + h) / window.height))
            ref_ds = None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    if cm.sum() == 0:
        raise UserInputError("REFERENCE", "no pixel has both a map class and a reference class; check that the reference "
                                          "covers the map (and EXTENT).")
    sc = scores(cm)
    rows = []
    for i, c in enumerate(classes):
        rows.append({"class_value": int(c["value"]), "class_name": c["name"],
                     "reference_pixels": sc["reference_pixels"][i], "mapped_pixels": sc["mapped_pixels"][i],
                     "producers_accuracy": _num(sc["recall"][i]), "users_accuracy": _num(sc["precision"][i]),
                     "f1": _num(sc["f1"][i]), "iou": _num(sc["iou"][i])})
    result = AccuracyResult(classes, cm, sc, int(cm.sum()), rows)
    log(f"{result.pixels:,} pixels compared: overall accuracy {sc['accuracy']:.3f}, kappa {sc['kappa']:.3f}, "
        f"mean IoU {sc['miou']:.3f}.")
    for row in rows:
        if row["reference_pixels"] or row["mapped_pixels"]:
            log(f"  {row['class_name']}: producer's {_fmt(row['producers_accuracy'])}, user's {_fmt(row['users_accuracy'])}, "
                f"F1 {_fmt(row['f1'])}, IoU {_fmt(row['iou'])} ({row['reference_pixels']:,} reference pixels)")
    if config.output_report:
        write_accuracy_report(config.output_report, result, config)
        result.report = config.output_report
    return result


def _num(v):
    return None if v is None or v != v else float(v)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def confusion_html(cm: np.ndarray, names: list[str], colors: list | None = None) -> str:
    """A confusion matrix as an HTML table: reference in rows, map in columns, shaded by row share."""
    head = "<tr><th>reference \\ map</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "<th>total</th></tr>"
    rows = []
    for i, n in enumerate(names):
        sw = f"<span class='sw' style='background:{hex_color(colors[i])}'></span>" if colors else ""
        cells = "".join(f"<td style='background:rgba(55,126,184,{cm[i, j] / max(cm[i].sum(), 1):.2f})'>{int(cm[i, j]):,}</td>"
                        for j in range(len(names)))
        rows.append(f"<tr><th>{sw}{html.escape(n)}</th>{cells}<td>{int(cm[i].sum()):,}</td></tr>")
    total = "<tr><th>total</th>" + "".join(f"<td>{int(cm[:, j].sum()):,}</td>" for j in range(len(names))) + \
        f"<td>{int(cm.sum()):,}</td></tr>"
    return f"<table>{head}{''.join(rows)}{total}</table>"


REPORT_STYLE = """body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } .sw { display: inline-block; width: 12px; height: 12px; margin-right: 6px; border: 1px solid #555; }"""


def write_accuracy_report(path: str, result: AccuracyResult, config: AccuracyConfig) -> None:
    """One self-contained HTML page: the figures, the per-class table and the confusion matrix."""
    sc = result.scores
    shown = [i for i, r in enumerate(result.rows) if r["reference_pixels"] or r["mapped_pixels"]]
    names = [result.classes[i]["name"] for i in shown]
    colors = [result.classes[i].get("color") or default_color(int(result.classes[i]["value"])) for i in shown]
    table = "".join(
        f"<tr><td style='text-align:left'><span class='sw' style='background:{hex_color(colors[n])}'></span>"
        f"{html.escape(r['class_name'])} ({r['class_value']})</td><td>{r['reference_pixels']:,}</td><td>{r['mapped_pixels']:,}</td>"
        f"<td>{_fmt(r['producers_accuracy'])}</td><td>{_fmt(r['users_accuracy'])}</td><td>{_fmt(r['f1'])}</td><td>{_fmt(r['iou'])}</td></tr>"
        for n, r in enumerate(result.rows[i] for i in shown))
    reference = config.reference_raster or config.reference or ""
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Accuracy assessment</title><style>{REPORT_STYLE}</style></head><body>
<h1>Accuracy assessment</h1>
<p>Class raster <code>{html.escape(config.input)}</code> against the reference <code>{html.escape(reference)}</code>
({'polygons; outside them ' + config.unlabeled if config.reference else 'raster'}): {result.pixels:,} pixels compared.</p>
<table>
<tr><th>overall accuracy</th><td><b>{sc['accuracy']:.3f}</b></td></tr>
<tr><th>Cohen's kappa</th><td><b>{sc['kappa']:.3f}</b></td></tr>
<tr><th>mean IoU</th><td><b>{sc['miou']:.3f}</b></td></tr>
</table>
<h2>Per class</h2>
<table><tr><th>class</th><th>reference pixels</th><th>mapped pixels</th><th>producer's accuracy</th>
<th>user's accuracy</th><th>F1</th><th>IoU</th></tr>{table}</table>
<p>Producer's accuracy: the share of a class's reference pixels that the map gets right (recall); user's accuracy:
the share of the pixels mapped as a class that are that class (precision).</p>
<h2>Confusion matrix (pixels)</h2>
{confusion_html(result.confusion[np.ix_(shown, shown)], names, colors)}
</body></html>
"""
    from .outputs import write_text

    write_text(path, "OUTPUT_REPORT", doc)
