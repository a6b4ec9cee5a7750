"""The three algorithms together: the shipped Modeler model and batch processing of Classify Raster."""

import importlib.util
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal

from conftest import BEFL_IMAGE, NC_IMAGE, NC_POLYGONS, PACKAGE, QGIS_PROCESS, ROOT

MODEL3 = os.path.join(ROOT, "resources", "unet_workflow.model3")


def _make_model_script():
    spec = importlib.util.spec_from_file_location("make_model", os.path.join(ROOT, "scripts", "make_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_this_qgis_writes(path: str, tmp_path, drop_outputs: bool = False) -> str:
    """A .model3 file read and written again by the running QGIS, in canonical XML (attributes in
    order): files written by another QGIS version (3.40 adds entries 3.22 does not write) compare
    by what they say, not by how a version spells it.

    ``drop_outputs``: leave out the model's own output parameters and its internal version. A model
    built in code by QGIS 3.40 is a "Version2" model, whose outputs are named "chips", "classes"; the
    shipped files are written by 3.22 as "Version1" models, whose outputs keep the names users' commands
    give ("export:Chips", "classify:Classes") on every QGIS (tests/test_workflow.py runs them by those
    names on 3.22 and 3.40). So the shipped files are made on QGIS 3.22 (scripts/make_model.py).
    """
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(path)
    again = str(tmp_path / ("again-" + os.path.basename(path)))
    assert model.toFile(again)
    root = ET.parse(again).getroot()
    if drop_outputs:
        for parent in root.iter():
            for child in list(parent):
                if child.get("name") == "internal_version" or (
                        parent.get("name") == "parameterDefinitions"
                        and any(o.get("name") == "_modelChildOutputName" for o in child.iter())):
                    parent.remove(child)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def _same_model(fresh: str, shipped: str, tmp_path) -> bool:
    """Whether the script's model (built by the running QGIS) is the shipped file, as far as this
    QGIS writes models like the one that wrote the file (see :func:`_as_this_qgis_writes`)."""
    from qgis.core import Qgis

    across_versions = Qgis.QGIS_VERSION_INT >= 33000  # a later QGIS than the files' 3.22
    return _as_this_qgis_writes(fresh, tmp_path, across_versions) == _as_this_qgis_writes(shipped, tmp_path, across_versions)


def test_shipped_model_is_what_the_script_writes(provider, tmp_path):
    fresh = tmp_path / "fresh.model3"
    assert _make_model_script().build_model().toFile(str(fresh))
    assert _same_model(str(fresh), MODEL3, tmp_path), (
        "resources/unet_workflow.model3 is out of date: run scripts/make_model.py")


def test_shipped_model_chains_the_three_algorithms(provider):
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelChildParameterSource as Source

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    ok, issues = model.validate()
    assert ok, issues
    children = model.childAlgorithms()
    assert {c.algorithmId() for c in children.values()} == {"unet:exporttrainingchips", "unet:trainunet", "unet:classifyraster"}
    chips = children["train"].parameterSources()["CHIPS"][0]
    child_output = getattr(Source, "ChildOutput", None)
    if child_output is None:  # QGIS 3.40: a scoped enum
        from qgis.core import Qgis

        child_output = Qgis.ProcessingModelChildParameterSource.ChildOutput
    assert chips.source() == child_output and (chips.outputChildId(), chips.outputName()) == ("export", "OUTPUT")
    model_file = children["classify"].parameterSources()["MODEL"][0]
    assert (model_file.outputChildId(), model_file.outputName()) == ("train", "OUTPUT_MODEL")
    assert model.dependsOnChildAlgorithms("classify") == {"export", "train"}
    names = {p.name() for p in model.parameterDefinitions()}
    assert {"INPUT", "LABELS", "CLASS_FIELD", "LABEL_RASTER", "CLASSIFY_INPUT", "export:Chips", "train:Model",
            "classify:Classes"} <= names


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
def test_model_runs_with_qgis_process(installed_zip, tmp_path):
    """The .model3 from the installed plugin, run headless on the NC polygons (text classes)."""
    from unet_segmentation.unet_plugin.ml.model.modelfile import load_model

    model3 = os.path.join(installed_zip["QGIS_PLUGINPATH"], PACKAGE, "resources", "unet_workflow.model3")
    args = [QGIS_PROCESS, "run", model3, "--", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}", "CLASS_FIELD=label",
            "CHIP_SIZE=64", "BACKBONE=resnet18", "PRETRAINED=false", "EPOCHS=1", f"CLASSIFY_INPUT={NC_IMAGE}",
            f"export:Chips={tmp_path / 'chips'}", f"train:Model={tmp_path / 'model.pt'}",
            f"train:Report={tmp_path / 'report.html'}", f"classify:Classes={tmp_path / 'classes.tif'}"]
    run = subprocess.run(args, env=installed_zip, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"Executed 3 algorithm(s|\(s\))", run.stdout)  # 3.22: "3 algorithms", 3.40: "3 algorithm(s)"
    assert (tmp_path / "chips" / "dataset.json").exists() and (tmp_path / "report.html").stat().st_size > 10_000
    _, meta = load_model(str(tmp_path / "model.pt"), "cpu")
    names = [c["name"] for c in meta["classes"]]
    assert "water" in names and "forest" in names and len(names) >= 5  # text classes of the polygons
    ds = gdal.Open(str(tmp_path / "classes.tif"))
    assert (ds.RasterXSize, ds.RasterYSize) == (489, 443)
    values = set(np.unique(ds.ReadAsArray()).tolist())
    assert values <= {int(c["value"]) for c in meta["classes"]} | {255} and len(values - {255}) >= 1
    assert ds.GetRasterBand(1).GetColorTable() is not None  # GDAL 3.6 reads the .aux.xml only after this
    assert ds.GetRasterBand(1).GetCategoryNames()[int(meta["classes"][0]["value"])] == meta["classes"][0]["name"]
    assert (tmp_path / "classes.qml").exists()


# --- batch processing ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch_rasters(tmp_path_factory):
    """Three different cut-outs of the NC image (sizes and places differ), as separate files."""
    folder = tmp_path_factory.mktemp("batch")
    paths = []
    for i, win in enumerate([(0, 0, 200, 150), (150, 100, 250, 200), (300, 250, 189, 193)]):
        path = str(folder / f"part{i}.tif")
        gdal.Translate(path, NC_IMAGE, srcWin=list(win))
        paths.append(path)
    return paths


def _check_class_raster(path, source, model_meta):
    out, src = gdal.Open(path), gdal.Open(source)
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert np.allclose(out.GetGeoTransform(), src.GetGeoTransform())
    values = set(np.unique(out.ReadAsArray()).tolist())
    assert values <= {int(c["value"]) for c in model_meta["classes"]} | {255}
    assert out.GetRasterBand(1).GetColorTable() is not None
    assert os.path.exists(os.path.splitext(path)[0] + ".qml")
    return out.ReadAsArray()


def test_batch_as_a_loop_of_processing_run(provider, tiny_model, batch_rasters, tmp_path):
    import processing
    from unet_segmentation.unet_plugin.ml.model.modelfile import load_model

    model, _ = tiny_model
    _, meta = load_model(model, "cpu")
    maps = []
    for i, raster in enumerate(batch_rasters):
        res = processing.run("unet:classifyraster", {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / f"c{i}.tif")})
        maps.append(_check_class_raster(res["OUTPUT"], raster, meta))
    # nothing carries over between runs: the middle raster alone gives the same map as in the batch
    alone = processing.run("unet:classifyraster", {"INPUT": batch_rasters[1], "MODEL": model, "OUTPUT": str(tmp_path / "alone.tif")})
    assert np.array_equal(gdal.Open(alone["OUTPUT"]).ReadAsArray(), maps[1])
    # and each part agrees with the whole image classified at once, away from the parts' edges
    whole = gdal.Open(processing.run("unet:classifyraster", {"INPUT": NC_IMAGE, "MODEL": model,
                                                              "OUTPUT": str(tmp_path / "whole.tif")})["OUTPUT"]).ReadAsArray()
    inner = maps[1][32:-32, 32:-32]
    assert np.mean(inner == whole[100 + 32:300 - 32, 150 + 32:400 - 32]) > 0.8


def _qgis_version() -> int:
    from qgis.core import Qgis

    return Qgis.QGIS_VERSION_INT


@pytest.mark.skipif(_qgis_version() >= 33000, reason="drives the internals of QGIS 3.22's Python BatchAlgorithmDialog "
                    "(3.40 runs rows in tasks and crashes with these stand-ins); batch mode on 3.40: "
                    "test_batch_as_a_loop_of_processing_run")
def test_batch_dialog_runs_every_row_and_reports_the_failing_one(provider, tiny_model, batch_rasters, tmp_path, qgis_iface):
    """QGIS's own batch runner (BatchAlgorithmDialog.runAlgorithm) with the rows' parameters given
    directly instead of typed into its table: one algorithm instance, a fresh context per row."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    model, _ = tiny_model
    rows = [{"INPUT": batch_rasters[0], "MODEL": model, "OUTPUT": str(tmp_path / "b0.tif")},
            {"INPUT": BEFL_IMAGE, "MODEL": model, "OUTPUT": str(tmp_path / "b1.tif")},  # 3 bands, model needs 6
            {"INPUT": batch_rasters[2], "MODEL": model, "OUTPUT": str(tmp_path / "b2.tif")}]
    dialog = BatchAlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("unet:classifyraster"))
    panel = dialog.mainWidget()
    panel.checkLoadLayersOnCompletion.setChecked(False)
    panel.batchRowCount = lambda: len(rows)
    panel.parametersForRow = lambda row, **_kwargs: (dict(rows[row]), True)  # 3.40 passes context= too
    finished = {}
    dialog.finish = lambda results, errors: finished.update(results=results, errors=errors)
    try:
        dialog.runAlgorithm()
    finally:
        # the dialog keeps its progress task referenced (a signal connection), so it never ends
        # by itself; end it as closing the dialog in QGIS would, or QGIS cannot exit
        from qgis.core import QgsProxyProgressTask
        from qgis.PyQt import sip

        for task in QgsApplication.taskManager().tasks():
            if task.description().startswith("Batch Processing"):
                sip.cast(task, QgsProxyProgressTask).finalize(True)

    assert [r["parameters"]["OUTPUT"] for r in finished["results"]] == [rows[0]["OUTPUT"], rows[2]["OUTPUT"]]
    assert len(finished["errors"]) == 1
    message = " ".join(finished["errors"][0]["errors"])
    assert "BANDS" in message and "6 bands" in message and "Traceback" not in message
    assert not os.path.exists(rows[1]["OUTPUT"]) and not os.path.exists(rows[1]["OUTPUT"] + ".partial.tif")
    single = {}
    for i in (0, 2):
        import processing

        single[i] = processing.run("unet:classifyraster", dict(rows[i], OUTPUT=str(tmp_path / f"single{i}.tif")))["OUTPUT"]
        assert np.array_equal(gdal.Open(rows[i]["OUTPUT"]).ReadAsArray(), gdal.Open(single[i]).ReadAsArray())
    dialog.deleteLater()


def test_shipped_model_stores_enum_names_not_positions(provider):
    """A saved model keeps its meaning when an option is added: enums store 'resnet34', not 1."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    backbone = model.parameterDefinition("BACKBONE")
    assert backbone.usesStaticStrings() and backbone.defaultValue() == "resnet34"
    assert backbone.options() == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    static = [o.get("value") for o in ET.parse(MODEL3).getroot().iter("Option") if o.get("name") == "uses_static_strings"]
    assert static and all(v == "true" for v in static)  # every enum of the three algorithms, stored by name


LOOP3 = os.path.join(ROOT, "resources", "unet_labelling_round.model3")


def test_shipped_labelling_round_is_what_the_script_writes(provider, tmp_path):
    script = _make_model_script()
    fresh = tmp_path / "loop.model3"
    assert script.build_model(script.LOOP).toFile(str(fresh))
    assert _same_model(str(fresh), LOOP3, tmp_path), (
        "resources/unet_labelling_round.model3 is out of date: run scripts/make_model.py")


def test_a_labelling_round_in_the_modeler(provider, strata_chips, tiny_model, tmp_path):
    """The shipped round: the windows the analyst labelled join the chip folder, the model is
    fine-tuned from the last one, the imagery classified, and the next windows proposed elsewhere."""
    import json
    import shutil

    import processing
    from osgeo import ogr, osr
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(LOOP3)
    ok, issues = model.validate()
    assert ok, issues
    chips = tmp_path / "chips"
    shutil.copytree(strata_chips, chips)
    before = len(json.loads((chips / "dataset.json").read_text())["chips"])
    src = gdal.Open(NC_IMAGE)
    gt = src.GetGeoTransform()
    windows = str(tmp_path / "windows.gpkg")  # two windows the analyst labelled (with the NC polygons inside)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(windows)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(src.GetProjection())
    layer = ds.CreateLayer("windows", srs, ogr.wkbPolygon)
    for r, c in ((120, 120), (250, 300)):
        x0, y0 = gt[0] + c * gt[1], gt[3] + r * gt[5]
        x1, y1 = x0 + 96 * gt[1], y0 + 96 * gt[5]
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"))
        layer.CreateFeature(f)
    ds = None
    res = processing.run(model, {
        "INPUT": NC_IMAGE, "LABELS": NC_POLYGONS, "CLASS_FIELD": "label", "WINDOWS": windows, "CHIP_SIZE": 64,
        "INIT_MODEL": tiny_model[0], "TIME_LIMIT": 0.2, "COUNT": 3,
        "export:Chips": str(chips), "train:Model": str(tmp_path / "round1.pt"),
        "classify:Classes": str(tmp_path / "classes.tif"), "suggest:Next windows": str(tmp_path / "next.gpkg")})
    after = json.loads((chips / "dataset.json").read_text())
    assert len(after["chips"]) > before and after["appended"]
    assert os.path.exists(tmp_path / "round1.pt") and os.path.exists(tmp_path / "classes.tif")
    proposed = ogr.Open(str(tmp_path / "next.gpkg"))
    boxes = [f.GetGeometryRef().Clone() for f in proposed.GetLayer(0)]
    labelled = ogr.Open(windows)
    done = [f.GetGeometryRef().Clone() for f in labelled.GetLayer(0)]
    assert len(boxes) == 3 and not any(b.Intersection(w).GetArea() > 0 for b in boxes for w in done)
    assert res["suggest:Next windows"]
