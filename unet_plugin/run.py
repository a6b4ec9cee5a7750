"""The algorithms from resolved parameter values to results, without QGIS.

The Processing glue and the command line differ only in how they resolve a parameter (a QGIS
layer or a path read with GDAL/OGR, a feature sink or an OGR file) — the :class:`Inputs` they
pass in. Everything after that runs here, once, so both give the same results and messages.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from .core.errors import UserInputError
from .i18n import tr
from .inputs import (
    POINT_TYPES,
    POLYGON_TYPES,
    Feedback,
    Inputs,
    check_outputs,
    geometry_names,
    null_value,
    output_file,
    polygons_of,
    refuse_geometry,
)


def export_training_chips(inp: Inputs, fb: Feedback) -> dict:
    from .core.chips import ExportConfig, export_chips
    from .core.labels import class_codes, write_polygons

    source, crs = inp.raster("INPUT")
    label_raster = inp.raster("LABEL_RASTER")
    field = inp.value("CLASS_FIELD") or None
    labels = polygons_of(inp, "LABELS", crs, field)
    if (labels is None) == (label_raster is None):
        raise UserInputError("LABELS", tr("give exactly one label source: class polygons (LABELS) or a classified raster (LABEL_RASTER)."))
    output = inp.output("OUTPUT")
    scratch = tempfile.mkdtemp(prefix="unet-labels-")
    try:
        labels_path = classes = mask_path = None
        if labels is not None:
            if not labels:
                raise UserInputError("LABELS", tr("the layer has no polygons."))
            values = [null_value(v) for _, v in labels]
            if inp.value("APPEND"):  # the folder's classes: names matched to its codes, never renumbered
                from .core.chips.append import codes_for, load_target

                mapping, classes = codes_for(values, load_target(output)["classes"])
            else:
                mapping, classes = class_codes(values, "CLASS_FIELD")
            skipped = sum(v is None for v in values)
            if skipped:
                fb.log(tr("{} polygons without a class value were skipped.").format(skipped))
            labels_path = os.path.join(scratch, "labels.gpkg")
            write_polygons(labels_path, crs, ((w, mapping[v]) for (w, _), v in zip(labels, values) if v is not None))
        mask = polygons_of(inp, "MASK", crs)
        if mask is not None:
            mask_path = os.path.join(scratch, "mask.gpkg")
            write_polygons(mask_path, crs, ((w, 1) for w, _ in mask))
        cfg = ExportConfig(
            input=source, output=output, bands=inp.value("BANDS") or None, labels=labels_path, classes=classes,
            label_raster=label_raster[0] if label_raster else None, mask=mask_path, unlabeled=inp.value("UNLABELED"),
            extent=inp.extent("EXTENT", crs), chip_size=inp.value("CHIP_SIZE"), stride=inp.value("STRIDE"),
            min_labeled=inp.value("MIN_LABELED"), max_nodata=inp.value("MAX_NODATA"), append=bool(inp.value("APPEND")),
        )
        result = export_chips(cfg, fb.progress, fb.is_canceled, fb.log, fb.warn)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outputs = {"OUTPUT": output, "CHIP_COUNT": result.chip_count}
    if inp.output("FOOTPRINTS"):
        outputs["FOOTPRINTS"] = _footprints(inp, crs, result)
    return outputs


def _footprints(inp: Inputs, crs: str, result) -> str:
    from osgeo import ogr

    fields = [("chip_id", "str"), ("col", "int"), ("row", "int")]
    fields += [(f"share_{c['value']}", "float") for c in result.classes] + [("share_ignored", "float")]
    rows = []
    for chip in result.chips:
        x0, y0, x1, y1 = chip["bounds"]
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        shares = chip["label_shares"]
        rows.append((poly.ExportToWkb(), [chip["id"], chip["col"], chip["row"]]
                     + [shares.get(str(c["value"]), 0.0) for c in result.classes] + [shares.get("255", 0.0)]))
    return inp.write_table("FOOTPRINTS", fields, rows, crs, True)


def train_unet(inp: Inputs, fb: Feedback) -> dict:
    from .ml.train import TrainConfig, train

    cfg = TrainConfig(
        chips=inp.value("CHIPS"), output_model=inp.output("OUTPUT_MODEL"), backbone=inp.value("BACKBONE"),
        pretrained=inp.value("PRETRAINED"), encoder_weights=inp.value("ENCODER_WEIGHTS") or None,
        init_model=inp.value("INIT_MODEL") or None, epochs=inp.value("EPOCHS"), time_limit=inp.value("TIME_LIMIT"),
        batch_size=inp.value("BATCH_SIZE"), learning_rate=inp.value("LEARNING_RATE"),
        validation_percent=inp.value("VALIDATION_PERCENT"), early_stopping=inp.value("EARLY_STOPPING"),
        loss=inp.value("LOSS"), class_balancing=inp.value("CLASS_BALANCING"), augment=inp.value("AUGMENT"),
        freeze_encoder=inp.value("FREEZE_ENCODER"), device=inp.value("DEVICE"), precision=inp.value("PRECISION"),
        seed=inp.value("SEED"), output_report=inp.output("OUTPUT_REPORT"), output_onnx=inp.output("OUTPUT_ONNX"),
    )
    result = train(cfg, fb.progress, fb.is_canceled, fb.log)
    if result.canceled:
        fb.warn(tr("Training was canceled; the best model so far was saved."))
    return {"OUTPUT_MODEL": result.model_path, "OUTPUT_REPORT": result.report_path, "OUTPUT_ONNX": result.onnx_path,
            "VALIDATION_MIOU": result.miou, "VALIDATION_ACCURACY": result.accuracy, "EPOCHS_RUN": result.epochs_run}


def classify_raster(inp: Inputs, fb: Feedback) -> dict:
    from .ml.classify import ClassifyConfig, classify

    source, crs = inp.raster("INPUT")
    cfg = ClassifyConfig(
        input=source, model=inp.value("MODEL"), output=inp.output("OUTPUT"), extent=inp.extent("EXTENT", crs),
        tile_size=inp.value("TILE_SIZE"), overlap=inp.value("OVERLAP"), batch_size=inp.value("BATCH_SIZE"),
        tta=inp.value("TTA"), device=inp.value("DEVICE"), output_confidence=inp.output("OUTPUT_CONFIDENCE"),
        output_probabilities=inp.output("OUTPUT_PROBABILITIES"), min_area=inp.value("MIN_AREA"),
        precision=inp.value("PRECISION"), output_polygons=inp.output("OUTPUT_POLYGONS"), bands=inp.value("BANDS") or None,
    )
    classify(cfg, fb.progress, fb.is_canceled, fb.log, fb.warn)
    return {"OUTPUT": cfg.output, "OUTPUT_CONFIDENCE": cfg.output_confidence,
            "OUTPUT_PROBABILITIES": cfg.output_probabilities, "OUTPUT_POLYGONS": cfg.output_polygons}


ACCURACY_FIELDS = [("class_value", "int"), ("class_name", "str"), ("reference_pixels", "int64"), ("mapped_pixels", "int64"),
                   ("producers_accuracy", "float"), ("users_accuracy", "float"), ("f1", "float"), ("iou", "float")]


def assess_accuracy(inp: Inputs, fb: Feedback) -> dict:
    source, crs = inp.raster("INPUT")
    field = inp.value("CLASS_FIELD") or None
    reference = inp.polygons("REFERENCE", crs, field)
    reference_raster = inp.raster("REFERENCE_RASTER")
    if (reference is None) == (reference_raster is None):
        raise UserInputError("REFERENCE", tr("give exactly one reference: polygons or sample points (REFERENCE), or a "
                                             "classified raster (REFERENCE_RASTER)."))
    names = geometry_names(reference)
    if names and names <= set(POINT_TYPES):
        return _assess_sample(inp, fb, source, crs, field, reference)
    if names - set(POLYGON_TYPES):
        refuse_geometry("REFERENCE", names - set(POLYGON_TYPES), "polygons or points")
    if inp.output("OUTPUT_AREAS"):
        raise UserInputError("OUTPUT_AREAS", tr("area estimates need a sample of labelled points as REFERENCE (Create "
                                                "Accuracy Sample); a complete reference is assessed by counting pixels. "
                                                "Leave OUTPUT_AREAS empty."))
    return _assess_complete(inp, fb, source, crs, field, reference, reference_raster)


def _assess_sample(inp: Inputs, fb: Feedback, source: str, crs: str, field: str | None, reference: list) -> dict:
    """Assess Accuracy on labelled sample points: the stratified estimators (:mod:`.core.sample_accuracy`)."""
    from osgeo import ogr

    from .core.sample_accuracy import AREA_FIELDS, assess_sample, write_sample_report

    if not field:
        raise UserInputError("CLASS_FIELD", tr("sample points need the field that holds their reference labels (e.g. "
                                               "reference, as Create Accuracy Sample writes it)."))
    points = []
    for wkb, value in reference:
        g = ogr.CreateGeometryFromWkb(wkb)
        if g.GetGeometryCount() > 1:
            raise UserInputError("REFERENCE", tr("a sample feature holds several points; give one point per feature."))
        g = g.GetGeometryRef(0) if g.GetGeometryCount() == 1 else g
        points.append((g.GetX(), g.GetY(), null_value(value)))
    result = assess_sample(source, points, inp.extent("EXTENT", crs), fb.progress, fb.is_canceled, fb.log)
    rows = [(None, [row[n] for n, _ in ACCURACY_FIELDS]) for row in result.rows]
    table = inp.write_table("OUTPUT_TABLE", ACCURACY_FIELDS, rows, crs, False)
    areas = None
    if inp.output("OUTPUT_AREAS"):
        areas = inp.write_table("OUTPUT_AREAS", AREA_FIELDS, [(None, [a[n] for n, _ in AREA_FIELDS]) for a in result.areas],
                                crs, False)
    report = inp.output("OUTPUT_REPORT")
    if report:
        write_sample_report(report, result, source, inp.source("REFERENCE") or "")
    sc = result.scores
    return {"OUTPUT_TABLE": table, "OUTPUT_REPORT": report, "OUTPUT_AREAS": areas, "OVERALL_ACCURACY": sc["accuracy"],
            "OVERALL_ACCURACY_CI95": sc["accuracy_ci95"], "KAPPA": sc["kappa"], "MEAN_IOU": sc["miou"]}


def _assess_complete(inp: Inputs, fb: Feedback, source: str, crs: str, field: str | None, reference, reference_raster) -> dict:
    """Assess Accuracy on a complete reference (polygons or a raster): pixels counted (:mod:`.core.accuracy`)."""
    from .core.accuracy import AccuracyConfig, assess
    from .core.labels import write_polygons

    scratch = tempfile.mkdtemp(prefix="unet-reference-")
    try:
        polygons = values = None
        if reference is not None:
            if not reference:
                raise UserInputError("REFERENCE", tr("the layer has no polygons."))
            polygons = os.path.join(scratch, "reference.gpkg")
            write_polygons(polygons, crs, ((w, 1) for w, _ in reference))
            if field:
                values = [null_value(v) for _, v in reference]
        cfg = AccuracyConfig(input=source, reference=polygons, reference_values=values,
                             reference_raster=reference_raster[0] if reference_raster else None,
                             unlabeled=inp.value("UNLABELED"), extent=inp.extent("EXTENT", crs),
                             output_report=inp.output("OUTPUT_REPORT"))
        result = assess(cfg, fb.progress, fb.is_canceled, fb.log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = [(None, [row[n] for n, _ in ACCURACY_FIELDS]) for row in result.rows]
    table = inp.write_table("OUTPUT_TABLE", ACCURACY_FIELDS, rows, crs, False)
    sc = result.scores
    return {"OUTPUT_TABLE": table, "OUTPUT_REPORT": result.report, "OUTPUT_AREAS": None, "OVERALL_ACCURACY": sc["accuracy"],
            "OVERALL_ACCURACY_CI95": None, "KAPPA": sc["kappa"], "MEAN_IOU": sc["miou"]}


SAMPLE_FIELDS = [("id", "int"), ("map_value", "int"), ("map_class", "str"), ("reference", "str"),
                 ("stratum_pixels", "int64"), ("stratum_area_ha", "float")]


def create_accuracy_sample(inp: Inputs, fb: Feedback) -> dict:
    from osgeo import ogr

    from .core.regions import write_points_qml
    from .core.sample import SampleConfig, create_sample

    source, crs = inp.raster("INPUT")
    cfg = SampleConfig(input=source, sample_size=inp.value("SAMPLE_SIZE"),
                       target_standard_error=inp.value("TARGET_STANDARD_ERROR"),
                       expected_users_accuracy=inp.value("EXPECTED_USERS_ACCURACY"), allocation=inp.value("ALLOCATION"),
                       min_per_class=inp.value("MIN_PER_CLASS"), extent=inp.extent("EXTENT", crs), seed=inp.value("SEED"))
    result = create_sample(cfg, fb.progress, fb.is_canceled, fb.log)
    names = {int(c["value"]): c["name"] for c in result.classes}
    size = dict(zip(result.strata.values, zip(result.strata.pixels, result.strata.area_ha)))
    rows = []
    for i, p in enumerate(result.points, 1):
        g = ogr.Geometry(ogr.wkbPoint)
        g.AddPoint_2D(p["x"], p["y"])
        px, ha = size[p["map_value"]]
        rows.append((g.ExportToWkb(), [i, p["map_value"], names[p["map_value"]], None, int(px), float(ha)]))
    out = inp.write_table("OUTPUT", SAMPLE_FIELDS, rows, crs, "point")

    if output_file(out):
        write_points_qml(out, result.classes)
    fb.log(f"{len(rows)} sample points written. Fill in each point's reference field (a class name or value of the map), "
           "then run Assess Accuracy with the points as REFERENCE and CLASS_FIELD=reference.")
    return {"OUTPUT": out, "POINT_COUNT": len(rows)}


def _checked(spec_id: str, runner):
    def run(inp: Inputs, fb: Feedback) -> dict:
        from . import params as P

        check_outputs(P.ALGORITHMS[spec_id], inp)
        return runner(inp, fb)
    run.__name__ = runner.__name__
    run.__doc__ = runner.__doc__
    return run


def suggest_labeling_areas(inp: Inputs, fb: Feedback) -> dict:
    from osgeo import ogr

    from .core.labels import write_polygons
    from .core.regions import write_windows_qml
    from .ml.suggest import SuggestConfig, check, suggest

    source, crs = inp.raster("INPUT")
    labelled = polygons_of(inp, "EXISTING_LABELS", crs)
    cfg = SuggestConfig(input=source, model=inp.value("MODEL"), count=inp.value("COUNT"), window_size=inp.value("WINDOW_SIZE"),
                        strategy=inp.value("STRATEGY"), extent=inp.extent("EXTENT", crs), device=inp.value("DEVICE"),
                        precision=inp.value("PRECISION"), seed=inp.value("SEED"))
    check(cfg)
    scratch = tempfile.mkdtemp(prefix="unet-labelled-")
    try:
        if labelled:
            cfg = SuggestConfig(**dict(cfg.__dict__, existing_labels=os.path.join(scratch, "labelled.gpkg")))
            write_polygons(cfg.existing_labels, crs, ((w, 1) for w, _ in labelled))
        proposals, classes, wkt = suggest(cfg, fb.progress, fb.is_canceled, fb.log, fb.warn)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    values = [int(c["value"]) for c in classes]
    fields = [("rank", "int"), ("score", "float"), ("uncertainty", "float")] + \
        [(f"share_{v}", "float") for v in values] + [("class", "str")]
    rows = []
    for p in proposals:
        x0, y0, x1, y1 = p.bounds
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)):
            ring.AddPoint_2D(x, y)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        rows.append((poly.ExportToWkb(), [p.rank, p.score, p.uncertainty] + [p.shares[v] for v in values] + [None]))
    out = inp.write_table("OUTPUT", fields, rows, wkt, "polygon")
    if output_file(out):
        write_windows_qml(out)
    return {"OUTPUT": out, "WINDOW_COUNT": len(rows)}


RUNNERS = {name: _checked(name, fn) for name, fn in (
    ("exporttrainingchips", export_training_chips), ("trainunet", train_unet),
    ("classifyraster", classify_raster), ("assessaccuracy", assess_accuracy),
    ("createaccuracysample", create_accuracy_sample), ("suggestlabelingareas", suggest_labeling_areas))}
