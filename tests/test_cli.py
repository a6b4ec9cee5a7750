"""The algorithms without QGIS: ``python -m unet_plugin`` and ``torchrun -m unet_plugin``.

Every command runs in a child process in which ``import qgis`` fails (a ``qgis`` package that
raises is first on its path), from the repository root as a user runs it from the plugin folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from conftest import NC_IMAGE, NC_POLYGONS, NC_STRATA, cli, plugin_module

def results(run) -> dict:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])["results"]


def read(path):
    return gdal.Open(str(path)).ReadAsArray()


def features(path) -> list[dict]:
    """The attributes of every feature of a vector file's first layer (the data source held while reading)."""
    ds = ogr.Open(str(path))
    rows = [f.items() for f in ds.GetLayer(0)]
    ds = None
    return rows


def test_qgis_is_really_blocked(no_qgis):
    run = subprocess.run([sys.executable, "-c", "import qgis"], env=no_qgis(), capture_output=True, text=True)
    assert run.returncode != 0 and "blocked" in run.stderr


def test_help_comes_from_the_declarations_qgis_uses(no_qgis, provider):
    """One source of truth: every key, enum name, default and help text of the QGIS parameters is in --help."""
    run = cli(no_qgis(), "--help")
    assert run.returncode == 0
    for alg_id in ("exporttrainingchips", "trainunet", "classifyraster", "assessaccuracy"):
        assert alg_id in run.stdout
        text = cli(no_qgis(), alg_id, "--help").stdout
        flat = " ".join(text.split())
        alg = provider.algorithm(alg_id)
        for d in alg.parameterDefinitions():
            assert f"{d.name()}: {d.description()}" in text, d.name()
            assert " ".join(d.help().split()) in flat, d.name()
            if d.type() == "enum":
                assert ", ".join(d.options()) in text and f"default {d.defaultValue()}" in text
            elif d.type() == "number" and d.defaultValue() is not None:
                assert f"default {d.defaultValue()}" in text, d.name()


def test_export_equals_processing_and_reprojects_with_ogr(no_qgis, provider, tmp_path):
    """Polygons read with OGR give the chips QGIS gives; polygons in another CRS are reprojected."""
    import processing

    args = ["CLASS_FIELD=label", "UNLABELED=ignore", "CHIP_SIZE=64", "STRIDE=64"]
    out = results(cli(no_qgis(), "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}", *args,
                      f"OUTPUT={tmp_path / 'cli'}", f"FOOTPRINTS={tmp_path / 'fp.csv'}", "--json"))
    ref = processing.run("unet:exporttrainingchips", {"INPUT": NC_IMAGE, "LABELS": NC_POLYGONS, "CLASS_FIELD": "label",
                                                       "UNLABELED": "ignore", "CHIP_SIZE": 64, "STRIDE": 64,
                                                       "OUTPUT": str(tmp_path / "qgis")})
    assert out["CHIP_COUNT"] == ref["CHIP_COUNT"] > 10
    ours, theirs = (json.load(open(tmp_path / d / "dataset.json")) for d in ("cli", "qgis"))
    assert ours["classes"] == theirs["classes"]
    for chip in ours["chips"]:
        assert np.array_equal(read(tmp_path / "cli" / "labels" / f"{chip['id']}.tif"),
                              read(tmp_path / "qgis" / "labels" / f"{chip['id']}.tif"))
    assert len(features(tmp_path / "fp.csv")) == out["CHIP_COUNT"]

    # the same polygons in WGS 84: reprojected on the way in
    wgs84 = str(tmp_path / "wgs84.gpkg")
    gdal.VectorTranslate(wgs84, NC_POLYGONS, dstSRS="EPSG:4326", format="GPKG")
    cli(no_qgis(), "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABELS={wgs84}", *args, f"OUTPUT={tmp_path / 'wgs'}")
    same = total = 0
    for chip in ours["chips"]:
        a, b = read(tmp_path / "cli" / "labels" / f"{chip['id']}.tif"), read(tmp_path / "wgs" / "labels" / f"{chip['id']}.tif")
        same, total = same + int((a == b).sum()), total + a.size
    assert same / total > 0.995


def test_the_chain_without_qgis_gives_the_core_results(no_qgis, strata_chips, tmp_path):
    """Train, classify (with polygons) and assess from the command line; the map is what the core draws."""
    from unet_segmentation.unet_plugin.core.accuracy import AccuracyConfig, assess
    from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify

    env = no_qgis()
    model = tmp_path / "m.pt"
    trained = results(cli(env, "unet:trainunet", f"CHIPS={strata_chips}", "BACKBONE=resnet18", "PRETRAINED=false",
                          "EPOCHS=2", "LEARNING_RATE=0.002", f"OUTPUT_MODEL={model}", "--json"))
    assert trained["EPOCHS_RUN"] == 2 and 0 < trained["VALIDATION_ACCURACY"] <= 1 and model.exists()
    run = cli(env, "classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={model}", "PRECISION=full", "MIN_AREA=3",
              f"OUTPUT={tmp_path / 'map.tif'}", f"OUTPUT_POLYGONS={tmp_path / 'map.gpkg'}", "--json")
    results(run)
    assert "Classifying 489×443 px" in run.stdout and "Results" not in run.stdout  # --json: results as JSON only
    classify(ClassifyConfig(input=NC_IMAGE, model=str(model), output=str(tmp_path / "core.tif"), precision="full",
                            min_area=3), log=lambda m: None)
    assert np.array_equal(read(tmp_path / "map.tif"), read(tmp_path / "core.tif"))
    assert len(features(tmp_path / "map.gpkg")) > 10
    scores = results(cli(env, "assessaccuracy", f"INPUT={tmp_path / 'map.tif'}", f"REFERENCE_RASTER={NC_STRATA}",
                         f"OUTPUT_TABLE={tmp_path / 'acc.csv'}", "--json"))
    core = assess(AccuracyConfig(input=str(tmp_path / "map.tif"), reference_raster=NC_STRATA), log=lambda m: None)
    assert scores["OVERALL_ACCURACY"] == pytest.approx(core.scores["accuracy"]) and scores["KAPPA"] == pytest.approx(core.scores["kappa"])
    assert [r["class_name"] for r in features(tmp_path / "acc.csv")] == [r["class_name"] for r in core.rows]


def test_bad_input_is_a_message_and_a_nonzero_exit(no_qgis, strata_chips, tmp_path):
    env = no_qgis()
    cases = [
        (["trainunet", f"CHIPS={strata_chips}", "LOSS=dice", f"OUTPUT_MODEL={tmp_path / 'm.pt'}"],
         "LOSS: 'dice' is not one of cross-entropy, focal, cross-entropy+dice"),
        (["exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABEL_RASTER={NC_STRATA}", "UNLABELED=1", f"OUTPUT={tmp_path / 'c'}"],
         "UNLABELED: '1' is not one of background, ignore (values are names, not positions)"),
        (["trainunet", f"CHIPS={strata_chips}"], "OUTPUT_MODEL: required"),
        (["trainunet", f"CHIPS={strata_chips}", "EPOCHS=-1", f"OUTPUT_MODEL={tmp_path / 'm.pt'}"], "EPOCHS: -1 is out of range"),
        (["trainunet", f"CHIPS={strata_chips}", "EPOCH=3", f"OUTPUT_MODEL={tmp_path / 'm.pt'}"], "EPOCH: trainunet has no such parameter"),
        (["classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={NC_IMAGE}", f"OUTPUT={tmp_path / 'x.tif'}"], "MODEL: "),
        (["exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}", "CLASS_FIELD=nope", f"OUTPUT={tmp_path / 'c'}"],
         "CLASS_FIELD: the field does not exist in the class polygons."),
        (["classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={tmp_path / 'm.pt'}", "EXTENT=1,2,3", f"OUTPUT={tmp_path / 'x.tif'}"],
         "EXTENT: '1,2,3' is not an extent"),
        (["nosuchalgorithm"], "no algorithm 'nosuchalgorithm'"),
    ]
    for args, message in cases:
        run = cli(env, *args)
        assert run.returncode != 0 and message in run.stderr, (args, run.stderr[-1500:])
        assert "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "c").exists()


def test_extent_in_another_crs(no_qgis, tiny_model, tmp_path):
    """EXTENT as qgis_process writes it (xmin,xmax,ymin,ymax [CRS]) is reprojected to the raster's CRS."""
    ds = gdal.Open(NC_IMAGE)
    gt = ds.GetGeoTransform()
    xmin, ymax = gt[0] + 100 * gt[1], gt[3] + 100 * gt[5]
    xmax, ymin = xmin + 200 * gt[1], ymax + 150 * gt[5]
    src, dst = osr.SpatialReference(wkt=ds.GetProjection()), osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y0, x1, y1 = osr.CoordinateTransformation(src, dst).TransformBounds(xmin, ymin, xmax, ymax, 21)
    results(cli(no_qgis(), "classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}",
                f"EXTENT={xmin},{xmax},{ymin},{ymax}", f"OUTPUT={tmp_path / 'a.tif'}", "--json"))
    results(cli(no_qgis(), "classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}",
                f"EXTENT={x0},{x1},{y0},{y1} [EPSG:4326]", f"OUTPUT={tmp_path / 'b.tif'}", "--json"))
    a, b = gdal.Open(str(tmp_path / "a.tif")), gdal.Open(str(tmp_path / "b.tif"))
    assert (a.RasterXSize, a.RasterYSize) == (200, 150)
    # the reprojected box covers the asked one (a little more: the bounds of a curved outline)
    assert b.RasterXSize >= 200 and b.RasterYSize >= 150 and b.RasterXSize < 215


def test_torchrun_classification_equals_one_process(no_qgis, tiny_model, tmp_path):
    """Two processes (gloo) split the rows; the map, confidence and probabilities equal one process's, bit for bit."""
    env = no_qgis(OMP_NUM_THREADS="1")
    common = [f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}", "TILE_SIZE=64", "OVERLAP=25", "MIN_AREA=3", "DEVICE=cpu"]
    outputs = {}
    for n, name in ((0, "one"), (2, "two")):
        run = cli(env, "classifyraster", *common, f"OUTPUT={tmp_path / name}.tif", f"OUTPUT_CONFIDENCE={tmp_path / name}_c.tif",
                  f"OUTPUT_PROBABILITIES={tmp_path / name}_p.tif", f"OUTPUT_POLYGONS={tmp_path / name}.gpkg", "--json",
                  torchrun=n)
        outputs[name] = results(run)
        if n:
            assert "torchrun: 2 processes (gloo)" in run.stdout
            assert run.stdout.count("Classifying") == 1  # rank 0 logs
    for suffix in ("", "_c", "_p"):
        one, two = read(f"{tmp_path / 'one'}{suffix}.tif"), read(f"{tmp_path / 'two'}{suffix}.tif")
        assert np.array_equal(one, two), suffix
    assert gdal.Info(str(tmp_path / "two.tif"), format="json")["bands"][0]["categories"] == \
        gdal.Info(str(tmp_path / "one.tif"), format="json")["bands"][0]["categories"]
    assert os.path.exists(tmp_path / "two.qml")
    counts = [len(features(tmp_path / f"{n}.gpkg")) for n in ("one", "two")]
    assert counts[0] == counts[1] > 10
    assert not [f for f in os.listdir(tmp_path) if "part" in f]  # no partial or part files left


def test_torchrun_failure_stops_all_and_leaves_nothing(no_qgis, tiny_model, tmp_path):
    """One process failing mid-run: the job fails with its message; no output or part file is left."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent("""
        import os, sys, threading, time
        if os.environ.get("RANK") == "1":
            def patch():
                while "unet_plugin.ml.classify.strips" not in sys.modules or not hasattr(sys.modules["unet_plugin.ml.classify.strips"], "read_window"):
                    time.sleep(0.005)
                m = sys.modules["unet_plugin.ml.classify.strips"]
                real, calls = m.read_window, [0]
                def failing(*a, **k):
                    calls[0] += 1
                    if calls[0] > 12:
                        raise OSError("disk failure injected by the test")
                    return real(*a, **k)
                m.read_window = failing
            threading.Thread(target=patch, daemon=True).start()
    """))
    out = tmp_path / "out"
    out.mkdir()
    run = cli(no_qgis(PYTHONPATH=str(hook), OMP_NUM_THREADS="1"), "classifyraster", f"INPUT={NC_IMAGE}",
              f"MODEL={tiny_model[0]}", "TILE_SIZE=64", "DEVICE=cpu", f"OUTPUT={out / 'map.tif'}",
              f"OUTPUT_CONFIDENCE={out / 'conf.tif'}", torchrun=2, timeout=300)
    assert run.returncode != 0
    assert "disk failure injected by the test" in run.stderr
    assert os.listdir(out) == []


def test_torchrun_training_matches_one_process(no_qgis, strata_chips, tmp_path):
    """Data-parallel training (2 processes, gloo) gives a model that maps the sample about as well as one process."""
    env = no_qgis(OMP_NUM_THREADS="1")
    common = [f"CHIPS={strata_chips}", "BACKBONE=resnet18", "PRETRAINED=false", "EPOCHS=4", "BATCH_SIZE=4",
              "LEARNING_RATE=0.002", "EARLY_STOPPING=0", "DEVICE=cpu"]
    acc = {}
    for n, name in ((0, "one"), (2, "two")):
        run = cli(env, "trainunet", *common, f"OUTPUT_MODEL={tmp_path / name}.pt", f"OUTPUT_REPORT={tmp_path / name}.html",
                  "--json", torchrun=n)
        res = results(run)
        assert res["EPOCHS_RUN"] == 4
        if n:
            assert "in each of 2 processes (torchrun, gloo)" in run.stdout and run.stdout.count("Epoch 4/4") == 1
        classified = results(cli(env, "classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={tmp_path / name}.pt",
                                 "PRECISION=full", f"OUTPUT={tmp_path / name}.tif", "--json"))
        scores = results(cli(env, "assessaccuracy", f"INPUT={classified['OUTPUT']}", f"REFERENCE_RASTER={NC_STRATA}",
                             f"OUTPUT_TABLE={tmp_path / name}.csv", "--json"))
        acc[name] = scores["OVERALL_ACCURACY"]
    meta = plugin_module("unet_plugin.ml.model.modelfile").read_model_file(str(tmp_path / "two.pt"))["metadata"]
    assert meta["training"]["epochs"] == 4 and os.path.exists(tmp_path / "two.html")
    print("overall accuracy: one process", acc["one"], "two processes", acc["two"])
    assert acc["two"] > 0.5 and abs(acc["two"] - acc["one"]) < 0.1, acc
