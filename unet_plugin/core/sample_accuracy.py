"""Assess Accuracy on a point sample: the stratified estimators of Olofsson et al. (2014).

When the reference is a sample of points (from Create Accuracy Sample, or any random sample
stratified by the map's classes), counting pixels would be biased: each point stands for the
area of its stratum. The map's classes are the strata; their sizes are counted on the map (within
EXTENT), every labelled point is read on the map, and :func:`.area.stratified_estimate` gives the
error matrix in proportions of area, the accuracies and the error-adjusted area of every class,
each with its 95 % confidence interval.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .accuracy import REPORT_STYLE, AccuracyResult, _match_names, map_classes
from .area import AreaEstimate, kappa_of, stratified_estimate
from .errors import UserInputError
from .raster import extent_window, gdal_cache_budget, open_raster, raster_info
from .sample import count_strata
from .styles import default_color, hex_color

FEW_POINTS = 10  # reference points of a class below which its interval is flagged as resting on few points
#: fields of OUTPUT_AREAS, in order (the contract)
AREA_FIELDS = [("class_value", "int"), ("class_name", "str"), ("mapped_area_ha", "float"), ("area_ha", "float"),
               ("area_ci95_ha", "float"), ("users_accuracy", "float"), ("users_ci95", "float"),
               ("producers_accuracy", "float"), ("producers_ci95", "float")]


@dataclass
class SampleAssessment(AccuracyResult):
    estimate: AreaEstimate | None = None
    areas: list[dict] | None = None
    points_used: int = 0
    points_unlabelled: int = 0
    points_outside: int = 0
    no_sample: list | None = None


def _reference_codes(values: list, classes: list[dict]) -> list:
    """Reference labels as map class values: codes, class names, or codes typed as text ("3")."""
    def as_code(v):
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v.strip())
        return v.strip() if isinstance(v, str) else v
    cleaned = [None if v is None or (isinstance(v, str) and not v.strip()) else as_code(v) for v in values]
    mapping = _match_names(cleaned, classes)
    return [None if v is None else mapping[v] for v in cleaned]


def assess_sample(input_path: str, points: list[tuple[float, float, object]], extent=None,
                  progress: Callable[[float], None] = lambda f: None, is_canceled: Callable[[], bool] = lambda: False,
                  log: Callable[[str], None] = lambda m: None) -> SampleAssessment:
    """Assess a class raster on labelled sample points ``(x, y, reference label)`` in its CRS."""
    with gdal_cache_budget():
        ds = open_raster(input_path, "INPUT")
        info = raster_info(ds, "INPUT")
        classes = map_classes(input_path)
        window = extent_window(info, extent)
        strata = count_strata(ds, info, window, is_canceled, progress)
        codes = _reference_codes([v for _, _, v in points], classes)
        gt = info.geotransform
        band = ds.GetRasterBand(1)
        nodata = band.GetNoDataValue()
        index = {int(c["value"]): i for i, c in enumerate(classes)}
        k = len(classes)
        counts = np.zeros((k, k), dtype=np.int64)
        unlabelled = outside = 0
        for (x, y, _), ref in zip(points, codes):
            if ref is None:
                unlabelled += 1
                continue
            col, row = int(np.floor((x - gt[0]) / gt[1])), int(np.floor((y - gt[3]) / gt[5]))
            if not (window.col <= col < window.col + window.width and window.row <= row < window.row + window.height):
                outside += 1
                continue
            value = band.ReadAsArray(col, row, 1, 1)[0, 0]
            if (nodata is not None and value == nodata) or int(value) not in index:
                outside += 1
                continue
            counts[index[int(value)], index[ref]] += 1
    used = int(counts.sum())
    if unlabelled:
        log(f"{unlabelled} points have no reference label yet and were left out (fill in the reference field).")
    if outside:
        log(f"{outside} points lie outside the map (or EXTENT) or on its nodata and were left out.")
    if used < 2:
        raise UserInputError("REFERENCE", f"{used} labelled sample points lie on the map; label the points' reference "
                                          "field (class names or values of the map) first.")
    sizes = np.zeros(k)
    for v, ha in zip(strata.values, strata.area_ha):
        if v in index:
            sizes[index[v]] = ha
    est = stratified_estimate(counts, sizes, 1.0)
    return _result(classes, counts, est, used, unlabelled, outside, log)


def _result(classes, counts, est: AreaEstimate, used, unlabelled, outside, log) -> SampleAssessment:
    p = est.proportions
    iou = np.array([p[i, i] / (p[i].sum() + p[:, i].sum() - p[i, i]) if p[i].sum() + p[:, i].sum() > 0 else np.nan
                    for i in range(len(classes))])
    rows, areas = [], []
    for i, c in enumerate(classes):
        u, pr = est.users[i], est.producers[i]
        f1 = 2 * u * pr / (u + pr) if u == u and pr == pr and u + pr > 0 else float("nan")
        rows.append({"class_value": int(c["value"]), "class_name": c["name"], "reference_pixels": int(counts[:, i].sum()),
                     "mapped_pixels": int(counts[i].sum()), "producers_accuracy": _num(pr), "users_accuracy": _num(u),
                     "f1": _num(f1), "iou": _num(iou[i])})
        if est.map_area[i] > 0 or counts[:, i].sum():
            areas.append({"class_value": int(c["value"]), "class_name": c["name"], "mapped_area_ha": float(est.map_area[i]),
                          "area_ha": float(est.area[i]), "area_ci95_ha": _num(est.area_ci95[i]),
                          "users_accuracy": _num(u), "users_ci95": _num(est.ci95(est.users_se[i])),
                          "producers_accuracy": _num(pr), "producers_ci95": _num(est.ci95(est.producers_se[i]))})
    scores = {"accuracy": est.overall, "accuracy_ci95": float(est.ci95(est.overall_se)), "kappa": kappa_of(p),
              "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")}
    no_sample = [c["name"] for i, c in enumerate(classes) if est.map_area[i] > 0 and counts[i].sum() == 0]
    log(f"{used} labelled sample points; stratified estimators (Olofsson et al. 2014), the map's classes as strata: "
        f"overall accuracy {est.overall:.3f} ± {scores['accuracy_ci95']:.3f} (95 %).")
    for a in areas:
        log(f"  {a['class_name']}: {a['area_ha']:,.1f} ± {_show(a['area_ci95_ha'], ',.1f')} ha (mapped {a['mapped_area_ha']:,.1f} ha); "
            f"user's {_show(a['users_accuracy'])} ± {_show(a['users_ci95'])}, producer's {_show(a['producers_accuracy'])} "
            f"± {_show(a['producers_ci95'])}")
    few = [f"{c['name']} ({int(counts[:, i].sum())})" for i, c in enumerate(classes)
           if 0 < counts[:, i].sum() < FEW_POINTS and est.map_area[i] > 0]
    if few:
        log("Warning: few sample points are of the reference classes " + ", ".join(few) + ": their area intervals rest on "
            "few points and may be too narrow (the normal approximation). Add points where they may have been missed.")
    if no_sample:
        log("Warning: no sample point in the map classes " + ", ".join(no_sample) + ": their user's accuracy cannot be "
            "estimated and their area counts as mapped without correction. Add points there (Create Accuracy Sample).")
    result = SampleAssessment(classes, counts.T.copy(), scores, used, rows)
    result.estimate, result.areas = est, areas
    result.points_used, result.points_unlabelled, result.points_outside = used, unlabelled, outside
    result.no_sample = no_sample
    return result


def _num(v):
    return None if v is None or v != v else float(v)


def _show(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def _matrix(values: np.ndarray, names: list[str], fmt) -> str:
    head = "<tr><th>map \\ reference</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "<th>total</th></tr>"
    body = "".join(f"<tr><th>{html.escape(n)}</th>" + "".join(f"<td>{fmt(values[i, j])}</td>" for j in range(len(names)))
                   + f"<td>{fmt(values[i].sum())}</td></tr>" for i, n in enumerate(names))
    total = "<tr><th>total</th>" + "".join(f"<td>{fmt(values[:, j].sum())}</td>" for j in range(len(names))) + \
        f"<td>{fmt(values.sum())}</td></tr>"
    return f"<table>{head}{body}{total}</table>"


def write_sample_report(path: str, result: SampleAssessment, input_path: str, reference: str) -> None:
    """The report of a sample assessment: both error matrices, the area table with intervals, the estimator."""
    from .outputs import write_text

    est = result.estimate
    shown = [i for i, c in enumerate(result.classes) if est.map_area[i] > 0 or est.counts[:, i].sum()]
    names = [result.classes[i]["name"] for i in shown]
    sub = np.ix_(shown, shown)
    colors = [result.classes[i].get("color") or default_color(int(result.classes[i]["value"])) for i in shown]
    area_rows = "".join(
        f"<tr><td style='text-align:left'><span class='sw' style='background:{hex_color(colors[n])}'></span>"
        f"{html.escape(a['class_name'])} ({a['class_value']})</td><td>{a['mapped_area_ha']:,.1f}</td>"
        f"<td><b>{a['area_ha']:,.1f}</b></td><td>± {_show(a['area_ci95_ha'], ',.1f')}</td>"
        f"<td>{_show(a['users_accuracy'])} ± {_show(a['users_ci95'])}</td>"
        f"<td>{_show(a['producers_accuracy'])} ± {_show(a['producers_ci95'])}</td></tr>"
        for n, a in enumerate(result.areas))
    sc = result.scores
    missing = result.no_sample or []
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Accuracy and area estimates</title><style>{REPORT_STYLE}</style></head><body>
<h1>Accuracy and area estimates</h1>
<p>Class raster <code>{html.escape(input_path)}</code>, reference sample <code>{html.escape(reference)}</code>:
{result.points_used:,} labelled points{f', {result.points_unlabelled} without a label' if result.points_unlabelled else ''}
{f', {result.points_outside} off the map' if result.points_outside else ''}.</p>
<p><b>Estimator:</b> the reference is a sample of points, so every point stands for the area of its stratum and
counting them like pixels would be biased. The map's classes are the strata; the stratified estimators of
Olofsson et al. (2014, <i>Remote Sensing of Environment</i> 148: 42–57, equations 1–12) give the error matrix in
proportions of area, overall, user's and producer's accuracy and the error-adjusted area of each class, with 95 %
confidence intervals (± 1.96 standard errors). They assume a random sample within each map class (as Create Accuracy
Sample draws it).</p>
<table>
<tr><th>overall accuracy</th><td><b>{sc['accuracy']:.3f}</b> ± {sc['accuracy_ci95']:.3f}</td></tr>
<tr><th>Cohen's kappa (for comparison only)</th><td>{sc['kappa']:.3f}</td></tr>
</table>
<h2>Area by class</h2>
<table><tr><th>class</th><th>mapped area (ha)</th><th>estimated area (ha)</th><th>95 % interval</th>
<th>user's accuracy</th><th>producer's accuracy</th></tr>{area_rows}</table>
{('<p>No sample point in ' + html.escape(', '.join(missing)) + ': no estimate of their accuracy; add points there.</p>') if missing else ''}
<h2>Error matrix: sample counts</h2>
{_matrix(est.counts[sub], names, lambda v: f"{int(v):,}")}
<h2>Error matrix: proportions of area</h2>
{_matrix(est.proportions[sub], names, lambda v: f"{v:.4f}")}
</body></html>
"""
    write_text(path, "OUTPUT_REPORT", doc)
