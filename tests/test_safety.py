"""Your data is safe: an adversarial catalogue over the four algorithms and three ways to run them.

Every case runs as a user would — ``python -m unet_plugin``, ``qgis_process`` or ``processing.run``
— and checks four things: the exit status, one message that names the parameter to change, no
traceback, and the files before and after (checksums of every input and earlier output, no partial
files left). Disk-full cases write to a real, small tmpfs (CI runs as root); without root they skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from conftest import NC_IMAGE, NC_POLYGONS, NC_STRATA, QGIS_PROCESS, ROOT, cli

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


# ---- what a case checks --------------------------------------------------------------------------

def digest(path) -> dict:
    """sha256 of a file, or of every file under a folder (relative path → digest)."""
    path = str(path)
    if os.path.isdir(path):
        out = {}
        for root, _dirs, files in os.walk(path):
            for f in files:
                p = os.path.join(root, f)
                out[os.path.relpath(p, path)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
        return out
    return {"": hashlib.sha256(open(path, "rb").read()).hexdigest()}


def leftovers(folder) -> list[str]:
    """Partial files or folders of our runs under ``folder``."""
    found = []
    for root, dirs, files in os.walk(str(folder)):
        for name in dirs + files:
            if "unet-partial" in name or name.endswith((".partial", ".partial.tif")) or name.startswith(".chips-partial"):
                found.append(os.path.join(root, name))
    return found


class Kept:
    """Checksums of files that must come out of a run untouched."""

    def __init__(self, *paths):
        self.before = {str(p): digest(p) for p in paths if os.path.exists(str(p))}

    def check(self):
        for p, d in self.before.items():
            assert os.path.exists(p), f"{p} is gone"
            assert digest(p) == d, f"{p} was changed"


def refused(run, key: str):
    """A refusal: non-zero exit, a message naming ``key``, no traceback."""
    rc, text = run
    assert rc not in (0, None), text[-2000:]
    assert "Traceback" not in text, text[-3000:]
    # the error line names the key (qgis_process also echoes every input as "KEY:\tvalue": not that)
    assert re.search(rf"(^|Error:\s*|ERROR:\s*){key}: \S", text, re.M), f"{key} not named in: {text[-1500:]}"


def layers(path) -> dict:
    """Layer name → feature count of a vector data source."""
    ds = ogr.Open(str(path))
    out = {ds.GetLayer(i).GetName(): ds.GetLayer(i).GetFeatureCount() for i in range(ds.GetLayerCount())}
    ds = None
    return out


# ---- the three ways to run ------------------------------------------------------------------------

def run_cli(env, alg, params: dict, timeout=600):
    r = cli(env, alg, *[f"{k}={v}" for k, v in params.items()], timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def run_qgis_process(env, alg, params: dict):
    r = subprocess.run([QGIS_PROCESS, "run", f"unet:{alg}", "--"] + [f"{k}={v}" for k, v in params.items()],
                       env=env, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stdout + r.stderr


def run_processing(alg, params: dict):
    import processing
    from qgis.core import QgsProcessingException

    try:
        processing.run(f"unet:{alg}", dict(params))
    except QgsProcessingException as exc:
        return 1, str(exc)
    return 0, ""


# ---- the world the cases run in -------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model, strata_chips):
    """A small NC raster, a project GeoPackage of several layers, the tiny model and chips, and
    crafted and damaged files."""
    base = tmp_path_factory.mktemp("safety")
    w = {"base": base, "model": tiny_model[0], "chips": strata_chips}
    small = str(base / "small.tif")
    gdal.Translate(small, NC_IMAGE, srcWin=[0, 0, 128, 128])
    w["small"] = small
    # the user's project: labels, a layer of roads (lines), a table of notes
    project = str(base / "project.gpkg")
    gdal.VectorTranslate(project, NC_POLYGONS, format="GPKG", layerName="landuse")
    ds = ogr.Open(project, 1)
    roads = ds.CreateLayer("roads", ds.GetLayer(0).GetSpatialRef(), ogr.wkbLineString)
    f = ogr.Feature(roads.GetLayerDefn())
    f.SetGeometry(ogr.CreateGeometryFromWkt("LINESTRING (630000 215000, 640000 225000)"))
    roads.CreateFeature(f)
    notes = ds.CreateLayer("notes", None, ogr.wkbNone)
    notes.CreateField(ogr.FieldDefn("text", ogr.OFTString))
    f = ogr.Feature(notes.GetLayerDefn())
    f.SetField(0, "field visit 2026")
    notes.CreateFeature(f)
    ds = None
    w["project"] = project
    w["labels"] = project + "|layername=landuse"
    # points first, polygons second: a GeoPackage whose first layer is not polygons
    points = str(base / "points_first.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(points)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(gdal.Open(NC_IMAGE).GetProjection())
    pl = ds.CreateLayer("samples", srs, ogr.wkbPoint)
    pl.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    for x, y in ((633000, 220000), (635000, 221000)):
        f = ogr.Feature(pl.GetLayerDefn())
        f.SetField(0, 1)
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))
        pl.CreateFeature(f)
    ds = None
    gdal.VectorTranslate(points, NC_POLYGONS, format="GPKG", layerName="landuse", accessMode="update")
    w["points"] = points
    # models: empty, a folder, NaN weights, crafted metadata
    import torch

    payload = torch.load(w["model"], weights_only=True)
    (base / "empty.pt").write_bytes(b"")
    w["empty"] = str(base / "empty.pt")
    nan = dict(payload, state_dict=dict(payload["state_dict"]))
    name = next(k for k, v in nan["state_dict"].items() if v.is_floating_point() and v.ndim == 4)
    nan["state_dict"][name] = nan["state_dict"][name].clone().fill_(float("nan"))
    torch.save(nan, base / "nan.pt")
    w["nan"] = str(base / "nan.pt")
    for tag, change in (("short_norm", lambda m: m["normalization"].update(mean=m["normalization"]["mean"][:2])),
                        ("band0", lambda m: m["bands"][0].update(index=0)),
                        ("class300", lambda m: m["classes"][1].update(value=300)),
                        ("named", lambda m: None)):
        meta = json.loads(json.dumps(payload["metadata"]))
        change(meta)
        torch.save(dict(payload, metadata=meta), base / f"{tag}.pt")
        w[tag] = str(base / f"{tag}.pt")
    # rasters: bands reversed with descriptions, too many bands, complex values, 1×1, all nodata
    names = [b["name"] for b in payload["metadata"]["bands"]]  # the NC bands' own names (TM1_blue, …)
    rev = str(base / "reversed.tif")
    gdal.Translate(rev, small, bandList=[6, 5, 4, 3, 2, 1])
    ds = gdal.Open(rev, gdal.GA_Update)
    for i, n in enumerate(reversed(names)):
        ds.GetRasterBand(i + 1).SetDescription(n)
    ds = None
    w["reversed"] = rev
    many = str(base / "many.tif")
    gdal.Translate(many, small, bandList=[1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6])
    w["many"] = many
    cplx = str(base / "complex.tif")
    gdal.Translate(cplx, small, outputType=gdal.GDT_CFloat32)
    w["complex"] = cplx
    tiny = str(base / "one_pixel.tif")
    gdal.Translate(tiny, small, srcWin=[0, 0, 1, 1])
    w["one_pixel"] = tiny
    empty = str(base / "nodata.tif")
    gdal.Translate(empty, small, noData=0, scaleParams=[[0, 1e9, 0, 0]], outputType=gdal.GDT_Float32)
    w["all_nodata"] = empty
    elsewhere = str(base / "labels_elsewhere.tif")  # a label raster 200 km away from the imagery
    src = gdal.Open(NC_STRATA)
    gt = src.GetGeoTransform()
    gdal.Translate(elsewhere, src, outputBounds=[gt[0] + 2e5, gt[3], gt[0] + 2e5 + src.RasterXSize * gt[1],
                                                 gt[3] + src.RasterYSize * gt[5]])
    w["labels_elsewhere"] = elsewhere
    # damaged chip folders
    for tag in ("truncated", "nokeys", "missing", "esri_bad", "latin1"):
        shutil.copytree(strata_chips, base / f"chips_{tag}")
        w[f"chips_{tag}"] = str(base / f"chips_{tag}")
    meta_path = base / "chips_truncated" / "dataset.json"
    meta_path.write_text(meta_path.read_text()[:500])
    meta = json.loads((base / "chips_nokeys" / "dataset.json").read_text())
    del meta["chips"]
    (base / "chips_nokeys" / "dataset.json").write_text(json.dumps(meta))
    first = json.loads((base / "chips_missing" / "dataset.json").read_text())["chips"][0]["id"]
    os.remove(base / "chips_missing" / "images" / f"{first}.tif")
    for tag in ("esri_bad", "latin1"):
        os.remove(base / f"chips_{tag}" / "dataset.json")
    emd = json.loads((base / "chips_esri_bad" / "esri_model_definition.emd").read_text())
    emd["ImageHeight"] = "wide"
    emd["Classes"] = "none"
    (base / "chips_esri_bad" / "esri_model_definition.emd").write_text(json.dumps(emd))
    (base / "chips_latin1" / "map.txt").write_bytes("images/ä.tif labels/ö.tif\n".encode("latin-1") * 3)
    # a malicious "weights file": a pickle that would run code
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    (base / "evil.pth").write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    w["evil"] = str(base / "evil.pth")
    # an earlier good output of each kind, which a failing run must leave as it was
    earlier = base / "earlier"
    earlier.mkdir()
    shutil.copy(w["model"], earlier / "model.pt")
    gdal.Translate(str(earlier / "map.tif"), small, bandList=[1], outputType=gdal.GDT_Byte)
    w["earlier"] = earlier
    return w


def out(w, name):
    """A fresh path for an output of one case."""
    folder = w["base"] / "out" / f"{name}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    return folder


# ---- refusals before any work: one table, three ways to run -------------------------------------

def _refusals():
    """(id, algorithm, parameters(world, folder), key, files that must stay) — all refused before work."""
    C, T, E, A = "classifyraster", "trainunet", "exporttrainingchips", "assessaccuracy"
    return [
        # an output that is an input, or another output
        ("classify-output-is-input", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": w["small"]},
         "OUTPUT", lambda w: [w["small"]]),
        ("classify-confidence-is-output", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": w["earlier"] / "map.tif",
                                                           "OUTPUT_CONFIDENCE": w["earlier"] / "map.tif"},
         "OUTPUT_CONFIDENCE", lambda w: [w["earlier"] / "map.tif"]),
        ("classify-probabilities-is-input", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.tif",
                                                             "OUTPUT_PROBABILITIES": w["small"]},
         "OUTPUT_PROBABILITIES", lambda w: [w["small"]]),
        ("classify-output-is-model", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["earlier"] / "model.pt",
                                                      "OUTPUT": w["earlier"] / "model.pt"},
         "OUTPUT", lambda w: [w["earlier"] / "model.pt"]),
        ("classify-polygons-is-output", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "a.tif",
                                                         "OUTPUT_POLYGONS": d / "a.tif"},
         "OUTPUT_POLYGONS", lambda w: []),
        ("train-report-is-model", T, lambda w, d: {"CHIPS": w["chips"], "OUTPUT_MODEL": w["earlier"] / "model.pt",
                                                   "OUTPUT_REPORT": w["earlier"] / "model.pt"},
         "OUTPUT_REPORT", lambda w: [w["earlier"] / "model.pt"]),
        ("train-model-is-init-model", T, lambda w, d: {"CHIPS": w["chips"], "INIT_MODEL": w["earlier"] / "model.pt",
                                                       "OUTPUT_MODEL": w["earlier"] / "model.pt"},
         "OUTPUT_MODEL", lambda w: [w["earlier"] / "model.pt"]),
        ("train-onnx-is-model", T, lambda w, d: {"CHIPS": w["chips"], "OUTPUT_MODEL": d / "m.pt", "OUTPUT_ONNX": d / "m.pt"},
         "OUTPUT_ONNX", lambda w: []),
        ("export-footprints-is-labels", E, lambda w, d: {"INPUT": w["small"], "LABELS": w["labels"], "CLASS_FIELD": "label",
                                                         "OUTPUT": d / "chips", "FOOTPRINTS": w["labels"]},
         "FOOTPRINTS", lambda w: [w["project"]]),
        ("export-output-is-input-file", E, lambda w, d: {"INPUT": w["small"], "LABELS": w["labels"], "OUTPUT": w["small"]},
         "OUTPUT", lambda w: [w["small"]]),
        ("assess-table-is-reference", A, lambda w, d: {"INPUT": w["earlier"] / "map.tif", "REFERENCE": w["labels"],
                                                       "OUTPUT_TABLE": w["labels"]},
         "OUTPUT_TABLE", lambda w: [w["project"], w["earlier"] / "map.tif"]),
        ("assess-report-is-input", A, lambda w, d: {"INPUT": w["earlier"] / "map.tif", "REFERENCE_RASTER": w["earlier"] / "map.tif",
                                                    "OUTPUT_TABLE": d / "t.csv", "OUTPUT_REPORT": w["earlier"] / "map.tif"},
         "OUTPUT_REPORT", lambda w: [w["earlier"] / "map.tif"]),
        # formats that would not keep the output, and outputs that cannot be written: before any work
        ("classify-vrt", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.vrt"}, "OUTPUT", lambda w: []),
        ("classify-jpg", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.jpg"}, "OUTPUT", lambda w: []),
        ("classify-png", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.png"}, "OUTPUT", lambda w: []),
        ("classify-confidence-jpg", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.tif",
                                                     "OUTPUT_CONFIDENCE": d / "c.jpg"}, "OUTPUT_CONFIDENCE", lambda w: []),
        ("export-footprints-bad-format", E, lambda w, d: {"INPUT": w["small"], "LABELS": w["labels"], "OUTPUT": d / "chips",
                                                          "FOOTPRINTS": d / "f.xyz"}, "FOOTPRINTS", lambda w: []),
        ("export-footprints-unwritable", E, lambda w, d: {"INPUT": w["small"], "LABELS": w["labels"], "OUTPUT": d / "chips",
                                                          "FOOTPRINTS": "/proc/no/such/f.gpkg"}, "FOOTPRINTS", lambda w: []),
        ("assess-table-bad-format", A, lambda w, d: {"INPUT": w["earlier"] / "map.tif", "REFERENCE_RASTER": w["earlier"] / "map.tif",
                                                     "OUTPUT_TABLE": d / "t.xyz", "OUTPUT_REPORT": d / "r.html"},
         "OUTPUT_TABLE", lambda w: []),
        # damaged or crafted inputs
        ("classify-empty-model", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["empty"], "OUTPUT": d / "m.tif"}, "MODEL", lambda w: []),
        ("classify-model-folder", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["base"], "OUTPUT": d / "m.tif"}, "MODEL", lambda w: []),
        ("classify-nan-model", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["nan"], "OUTPUT": d / "m.tif"}, "MODEL", lambda w: []),
        ("classify-short-normalisation", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["short_norm"], "OUTPUT": d / "m.tif"},
         "MODEL", lambda w: []),
        ("classify-band-index-0", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["band0"], "OUTPUT": d / "m.tif"}, "MODEL", lambda w: []),
        ("classify-class-300", C, lambda w, d: {"INPUT": w["small"], "MODEL": w["class300"], "OUTPUT": d / "m.tif"}, "MODEL", lambda w: []),
        ("classify-bands-reversed", C, lambda w, d: {"INPUT": w["reversed"], "MODEL": w["named"], "OUTPUT": d / "m.tif"},
         "BANDS", lambda w: []),
        ("classify-too-many-bands", C, lambda w, d: {"INPUT": w["many"], "MODEL": w["model"], "OUTPUT": d / "m.tif"}, "BANDS", lambda w: []),
        ("classify-complex", C, lambda w, d: {"INPUT": w["complex"], "MODEL": w["model"], "OUTPUT": d / "m.tif"}, "INPUT", lambda w: []),
        ("train-empty-init-model", T, lambda w, d: {"CHIPS": w["chips"], "INIT_MODEL": w["empty"], "OUTPUT_MODEL": d / "m.pt"},
         "INIT_MODEL", lambda w: []),
        ("train-truncated-dataset", T, lambda w, d: {"CHIPS": w["chips_truncated"], "PRETRAINED": "false", "OUTPUT_MODEL": d / "m.pt"}, "CHIPS", lambda w: []),
        ("train-dataset-without-chips", T, lambda w, d: {"CHIPS": w["chips_nokeys"], "PRETRAINED": "false", "OUTPUT_MODEL": d / "m.pt"}, "CHIPS", lambda w: []),
        ("train-chip-missing", T, lambda w, d: {"CHIPS": w["chips_missing"], "PRETRAINED": "false", "OUTPUT_MODEL": d / "m.pt"}, "CHIPS", lambda w: []),
        ("train-bad-emd", T, lambda w, d: {"CHIPS": w["chips_esri_bad"], "PRETRAINED": "false", "OUTPUT_MODEL": d / "m.pt"}, "CHIPS", lambda w: []),
        ("train-latin1-map", T, lambda w, d: {"CHIPS": w["chips_latin1"], "PRETRAINED": "false", "OUTPUT_MODEL": d / "m.pt"}, "CHIPS", lambda w: []),
        ("train-malicious-weights", T, lambda w, d: {"CHIPS": w["chips"], "ENCODER_WEIGHTS": w["evil"], "OUTPUT_MODEL": d / "m.pt"},
         "ENCODER_WEIGHTS", lambda w: []),
        ("export-points-as-labels", E, lambda w, d: {"INPUT": w["small"], "LABELS": w["points"], "OUTPUT": d / "chips"},
         "LABELS", lambda w: [w["points"]]),
        ("export-one-pixel-raster", E, lambda w, d: {"INPUT": w["one_pixel"], "LABELS": w["labels"], "OUTPUT": d / "chips"},
         "INPUT", lambda w: []),
        ("export-all-nodata", E, lambda w, d: {"INPUT": w["all_nodata"], "LABELS": w["labels"], "CHIP_SIZE": 64,
                                               "OUTPUT": d / "chips"}, "INPUT", lambda w: []),
        ("export-labels-elsewhere", E, lambda w, d: {"INPUT": w["small"], "LABEL_RASTER": w["labels_elsewhere"], "CHIP_SIZE": 64,
                                                     "OUTPUT": d / "chips"}, "LABEL_RASTER", lambda w: []),
        ("export-complex", E, lambda w, d: {"INPUT": w["complex"], "LABELS": w["labels"], "OUTPUT": d / "chips"}, "INPUT", lambda w: []),
        ("assess-complex", A, lambda w, d: {"INPUT": w["complex"], "REFERENCE": w["labels"], "OUTPUT_TABLE": d / "t.csv"},
         "INPUT", lambda w: []),
    ]


REFUSALS = _refusals()
CLI_ONLY = [  # values that only text can carry (QGIS's own widgets refuse them)
    ("train-time-limit-inf", "trainunet", lambda w, d: {"CHIPS": w["chips"], "TIME_LIMIT": "inf", "OUTPUT_MODEL": d / "m.pt"},
     "TIME_LIMIT", lambda w: []),
    ("classify-extent-nan", "classifyraster", lambda w, d: {"INPUT": w["small"], "MODEL": w["model"], "OUTPUT": d / "m.tif",
                                                            "EXTENT": "nan,634000,219000,222000"}, "EXTENT", lambda w: []),
]


# what some messages must (and must not) say besides the key
WORDING = {"classify-model-folder": ("is a folder", None),
           "train-malicious-weights": ("run code", "weights_only"),  # never torch's advice to load it unsafely
           "export-one-pixel-raster": ("smaller than the smallest chip", None),
           "export-all-nodata": ("only nodata", None),
           "classify-bands-reversed": ("BANDS=6,5,4,3,2,1", None)}


def _check_refusal(run, w, name, params, key, kept):
    d = out(w, name)
    keep = Kept(*kept(w))
    rc, text = run(params(w, d))
    refused((rc, text), key)
    must, must_not = WORDING.get(name, (None, None))
    assert must is None or must in text, text[-1500:]
    errors = "\n".join(ln for ln in text.splitlines() if f"{key}: " in ln)
    assert must_not is None or must_not not in errors, errors
    keep.check()
    assert not leftovers(w["base"]), leftovers(w["base"])
    assert not [p for p in os.listdir(d)], f"{name} left {os.listdir(d)}"


@pytest.mark.parametrize("name,alg,params,key,kept", REFUSALS + CLI_ONLY, ids=[c[0] for c in REFUSALS + CLI_ONLY])
def test_cli_refuses_before_work(no_qgis, world, name, alg, params, key, kept):
    env = no_qgis()
    _check_refusal(lambda p: run_cli(env, alg, p), world, name, lambda w, d: params(w, d), key, kept)


PROCESSING_CASES = [c for c in REFUSALS if c[0] in (
    "classify-output-is-input", "classify-confidence-is-output", "classify-polygons-is-output", "train-report-is-model",
    "train-model-is-init-model", "export-footprints-is-labels", "assess-table-is-reference", "classify-vrt", "classify-jpg",
    "export-footprints-bad-format", "classify-nan-model", "classify-bands-reversed", "classify-too-many-bands",
    "train-chip-missing", "export-points-as-labels", "assess-complex")]


def _qgis_values(params: dict) -> dict:
    return {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in params.items()}


@pytest.mark.parametrize("name,alg,params,key,kept", PROCESSING_CASES, ids=[c[0] for c in PROCESSING_CASES])
def test_processing_run_refuses_before_work(provider, world, name, alg, params, key, kept):
    _check_refusal(lambda p: run_processing(alg, _qgis_values(p)), world, name, params, key, kept)


QGIS_PROCESS_CASES = [c for c in REFUSALS if c[0] in (
    "classify-output-is-input", "train-report-is-model", "export-footprints-is-labels", "assess-table-is-reference",
    "classify-png", "classify-empty-model", "classify-bands-reversed", "train-truncated-dataset")]


@pytest.mark.skipif(not QGIS_PROCESS, reason="qgis_process not installed")
@pytest.mark.parametrize("name,alg,params,key,kept", QGIS_PROCESS_CASES, ids=[c[0] for c in QGIS_PROCESS_CASES])
def test_qgis_process_refuses_before_work(installed_zip, world, name, alg, params, key, kept):
    _check_refusal(lambda p: run_qgis_process(installed_zip, alg, p), world, name, params, key, kept)


# ---- GeoPackages of the user's project: only our layer ------------------------------------------

def test_gpkg_outputs_write_one_layer_and_keep_the_others(no_qgis, world, tmp_path):
    """Footprints, polygons and the accuracy table into the user's project GeoPackage: each adds or
    replaces its own layer; landuse, roads and notes stay as they were."""
    project = str(tmp_path / "project.gpkg")
    shutil.copy(world["project"], project)
    before = layers(project)
    (tmp_path / "project.qml").write_text("<qgis>the user's own style of the project's layer</qgis>")
    style = Kept(tmp_path / "project.qml")
    env = no_qgis()
    rc, text = run_cli(env, "exporttrainingchips", {"INPUT": world["small"], "LABELS": project + "|layername=landuse",
                                                    "CLASS_FIELD": "label", "CHIP_SIZE": 64, "OUTPUT": tmp_path / "chips",
                                                    "FOOTPRINTS": project + "|layername=footprints"})
    assert rc == 0, text
    rc, text = run_cli(env, "classifyraster", {"INPUT": world["small"], "MODEL": world["model"], "OUTPUT": tmp_path / "map.tif",
                                               "OUTPUT_POLYGONS": project + "|layername=classes"})
    assert rc == 0, text
    rc, text = run_cli(env, "assessaccuracy", {"INPUT": tmp_path / "map.tif", "REFERENCE_RASTER": tmp_path / "map.tif",
                                               "OUTPUT_TABLE": project + "|layername=accuracy"})
    assert rc == 0, text
    now = layers(project)
    for name, count in before.items():
        assert now[name] == count, (name, before, now)
    assert now["footprints"] > 0 and now["classes"] > 0 and now["accuracy"] > 0
    style.check()  # the polygons' style went beside it under the layer's name, not over the project's
    assert (tmp_path / "project.classes.qml").exists()
    # again: the layers are replaced, not appended to, and nothing else changes
    rc, text = run_cli(env, "classifyraster", {"INPUT": world["small"], "MODEL": world["model"], "OUTPUT": tmp_path / "map.tif",
                                               "OUTPUT_POLYGONS": project + "|layername=classes"})
    assert rc == 0, text
    assert layers(project) == now
    assert not leftovers(tmp_path)


def test_processing_sink_into_a_project_gpkg_keeps_its_layers(provider, world, tmp_path):
    import processing

    project = str(tmp_path / "project.gpkg")
    shutil.copy(world["project"], project)
    before = layers(project)
    processing.run("unet:assessaccuracy", {"INPUT": NC_STRATA, "REFERENCE_RASTER": NC_STRATA, "OUTPUT_TABLE": project})
    now = layers(project)
    assert {k: now[k] for k in before} == before and now["project"] > 0


# ---- chip folders: an export owns what it wrote ---------------------------------------------------

def test_reexport_replaces_only_its_own_files(no_qgis, world, tmp_path):
    env = no_qgis()
    chips = tmp_path / "chips"
    args = {"INPUT": world["small"], "LABELS": world["labels"], "CLASS_FIELD": "label", "CHIP_SIZE": 64, "OUTPUT": chips}
    assert run_cli(env, "exporttrainingchips", dict(args, STRIDE=64))[0] == 0
    first = json.loads((chips / "dataset.json").read_text())
    assert "dataset.json" in first["files"] and all((chips / f).exists() for f in first["files"])
    (chips / "notes.txt").write_text("my notes")
    shutil.copy(world["model"], chips / "model.pt")
    keep = Kept(chips / "notes.txt", chips / "model.pt")
    # leftovers of killed runs: an old partial folder and the .replaced folder of version 0.4.1
    (tmp_path / ".chips-partial-abc").mkdir()
    os.utime(tmp_path / ".chips-partial-abc", (0, 0))
    (tmp_path / f".chips{'.unet-partial-'}99999999-0123abcd").mkdir()
    rc, text = run_cli(env, "exporttrainingchips", dict(args, STRIDE=32))
    assert rc == 0, text
    keep.check()
    second = json.loads((chips / "dataset.json").read_text())
    assert len(second["chips"]) > len(first["chips"])
    on_disk = {os.path.relpath(os.path.join(r, f), chips) for r, _d, fs in os.walk(chips) for f in fs}
    assert on_disk == set(second["files"]) | {"notes.txt", "model.pt"}
    assert not leftovers(tmp_path) and not (tmp_path / ".chips-partial-abc").exists()
    mode = os.stat(chips / "dataset.json").st_mode & 0o777
    assert mode == 0o666 & ~_umask(), oct(mode)


def _umask():
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_killed_run_partials_are_removed_and_live_ones_kept(no_qgis, world, tmp_path):
    dead = tmp_path / ".map.tif.unet-partial-99999999-0123abcd.tif"
    live = tmp_path / f".map.tif.unet-partial-{os.getpid()}-0123abcd.tif"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    rc, text = run_cli(no_qgis(), "classifyraster", {"INPUT": world["small"], "MODEL": world["model"], "OUTPUT": tmp_path / "map.tif"})
    assert rc == 0, text
    assert not dead.exists() and live.exists()
    assert os.stat(tmp_path / "map.tif").st_mode & 0o777 == 0o666 & ~_umask()


def test_two_runs_onto_one_output_both_finish(no_qgis, world, tmp_path):
    """Batch mode or two terminals: each run writes its own partial file; OUTPUT is a whole map."""
    env = no_qgis()
    cmd = [sys.executable, "-m", "unet_plugin", "classifyraster", f"INPUT={world['small']}", f"MODEL={world['model']}",
           f"OUTPUT={tmp_path / 'map.tif'}", "PRECISION=full"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert gdal.Open(str(tmp_path / "map.tif")).ReadAsArray().shape == (128, 128)
    assert not leftovers(tmp_path)


# ---- silent wrong results -------------------------------------------------------------------------

def test_diverging_training_names_the_learning_rate_and_saves_nothing(no_qgis, world, tmp_path):
    model = tmp_path / "model.pt"
    shutil.copy(world["model"], model)
    keep = Kept(model)
    rc, text = run_cli(no_qgis(), "trainunet", {"CHIPS": world["chips"], "BACKBONE": "resnet18", "PRETRAINED": "false",
                                                "EPOCHS": 2, "LEARNING_RATE": 1e6, "PRECISION": "full",
                                                "OUTPUT_MODEL": model, "OUTPUT_REPORT": tmp_path / "r.html"})
    refused((rc, text), "LEARNING_RATE")
    assert "diverged" in text
    keep.check()
    assert os.listdir(tmp_path) == ["model.pt"]


def test_bands_picks_and_orders(no_qgis, world, tmp_path):
    """The reversed raster classified with BANDS in the model's order gives the original's map."""
    env = no_qgis()
    assert run_cli(env, "classifyraster", {"INPUT": world["small"], "MODEL": world["named"], "OUTPUT": tmp_path / "a.tif",
                                           "PRECISION": "full"})[0] == 0
    rc, text = run_cli(env, "classifyraster", {"INPUT": world["reversed"], "MODEL": world["named"], "BANDS": "6,5,4,3,2,1",
                                               "OUTPUT": tmp_path / "b.tif", "PRECISION": "full"})
    assert rc == 0, text
    a, b = (gdal.Open(str(tmp_path / n)).ReadAsArray() for n in ("a.tif", "b.tif"))
    assert np.array_equal(a, b)
    rc, text = run_cli(env, "classifyraster", {"INPUT": world["reversed"], "MODEL": world["named"], "OUTPUT": tmp_path / "c.tif"})
    refused((rc, text), "BANDS")
    assert "BANDS=6,5,4,3,2,1" in text


# ---- disk full, read-only: for real, on a small tmpfs ---------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MB tmpfs (root only, as in CI)."""
    if not ROOT_USER or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_disk_full_classify_keeps_the_earlier_map(no_qgis, world, small_disk):
    env = no_qgis()
    shutil.copy(world["earlier"] / "map.tif", small_disk / "map.tif")
    keep = Kept(small_disk / "map.tif")
    st = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 12 * 1024))  # 12 kB left: less than the map
    rc, text = run_cli(env, "classifyraster", {"INPUT": NC_IMAGE, "MODEL": world["model"], "OUTPUT": small_disk / "map.tif"})
    refused((rc, text), "OUTPUT")
    assert "disk is full" in text
    keep.check()
    assert sorted(os.listdir(small_disk)) == ["filler", "map.tif"]


def test_disk_full_export_says_so_and_leaves_nothing(no_qgis, world, small_disk):
    rc, text = run_cli(no_qgis(), "exporttrainingchips", {"INPUT": NC_IMAGE, "LABELS": world["labels"], "CLASS_FIELD": "label",
                                                          "CHIP_SIZE": 64, "STRIDE": 32, "OUTPUT": small_disk / "chips"})
    refused((rc, text), "OUTPUT")
    assert "disk is full" in text and "chips written" not in text
    assert os.listdir(small_disk) == []


def test_disk_full_training_keeps_the_earlier_model(no_qgis, world, small_disk):
    shutil.copy(world["earlier"] / "map.tif", small_disk / "old.tif")
    rc, text = run_cli(no_qgis(), "trainunet", {"CHIPS": world["chips"], "BACKBONE": "resnet18", "PRETRAINED": "false",
                                                "EPOCHS": 1, "LEARNING_RATE": 0.002, "OUTPUT_MODEL": small_disk / "m.pt"})
    refused((rc, text), "OUTPUT_MODEL")
    assert sorted(os.listdir(small_disk)) == ["old.tif"]


def test_read_only_file_system_is_a_message(no_qgis, world, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    rc, text = run_cli(no_qgis(), "exporttrainingchips", {"INPUT": world["small"], "LABELS": world["labels"], "CHIP_SIZE": 64,
                                                          "OUTPUT": small_disk / "chips"})
    refused((rc, text), "OUTPUT")


# ---- signals are the Cancel button ----------------------------------------------------------------

def _interrupt_after(env, args, marker: str, sig=signal.SIGINT, timeout=600):
    """Run the command line, send ``sig`` once ``marker`` appears in its output; return (rc, output)."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "unet_plugin"] + [str(a) for a in args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    t0 = time.monotonic()
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            proc.send_signal(sig)
            break
        assert time.monotonic() - t0 < timeout
    rest = proc.communicate(timeout=timeout)[0]
    return proc.returncode, "".join(seen) + rest


def test_ctrl_c_in_training_keeps_the_best_model_and_writes_the_report(no_qgis, world, tmp_path):
    model = tmp_path / "model.pt"
    rc, text = _interrupt_after(no_qgis(), ["trainunet", f"CHIPS={world['chips']}", "BACKBONE=resnet18", "PRETRAINED=false",
                                            "EPOCHS=50", "LEARNING_RATE=0.002", f"OUTPUT_MODEL={model}",
                                            f"OUTPUT_REPORT={tmp_path / 'r.html'}"], "Epoch 1/")
    assert rc == 130, text
    assert "Traceback" not in text and "best model so far" in text
    assert model.exists() and (tmp_path / "r.html").exists() and "<html" in (tmp_path / "r.html").read_text()[:200].lower()
    assert not leftovers(tmp_path)


def test_sigterm_in_classify_keeps_the_earlier_map(no_qgis, world, tmp_path):
    shutil.copy(world["earlier"] / "map.tif", tmp_path / "map.tif")
    keep = Kept(tmp_path / "map.tif")
    rc, text = _interrupt_after(no_qgis(), ["classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={world['model']}", "TILE_SIZE=64",
                                            "BATCH_SIZE=1", "PRECISION=full", f"OUTPUT={tmp_path / 'map.tif'}"],
                                "Classifying", sig=signal.SIGTERM)
    assert rc == 130 and "Traceback" not in text and "Canceled" in text, text
    keep.check()
    assert os.listdir(tmp_path) == ["map.tif"]


# ---- the guarantees one by one (each also a mutation in scripts/mutate.py) ------------------------

def test_close_errors_are_errors(world, small_disk):
    """A write that fails only when GDAL flushes (a full disk) raises, naming the output."""
    from unet_segmentation.unet_plugin.core.errors import UserInputError
    from unet_segmentation.unet_plugin.core.layers import close_raster

    path = str(small_disk / "big.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 2048, 2048, 1, gdal.GDT_Byte, ["TILED=YES"])
    pixels = np.random.default_rng(0).integers(0, 255, (2048, 2048), dtype=np.uint8)
    # pieces that do not cover whole blocks stay in GDAL's block cache until the flush (GDAL 3.10 writes
    # whole blocks through at once, and a single WriteArray of the raster would fail there already)
    for y in range(0, 2048, 200):
        for x in range(0, 2048, 200):
            ds.GetRasterBand(1).WriteArray(pixels[y:y + 200, x:x + 200], x, y)
    with pytest.raises(UserInputError, match="disk is full") as e:
        close_raster(ds, "OUTPUT", path)
    assert e.value.parameter == "OUTPUT"
    ds = None


def test_a_non_finite_model_is_never_saved(world, tmp_path):
    import torch

    from unet_segmentation.unet_plugin.ml.model.modelfile import build_model, read_model_file, save_model

    payload = read_model_file(world["model"])
    model = build_model(payload["metadata"])
    model.load_state_dict(payload["state_dict"])
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(ValueError, match="not finite"):
        save_model(str(tmp_path / "m.pt"), model, payload["metadata"])
    assert os.listdir(tmp_path) == []


def test_a_truncated_raster_fails_the_read_back(world, tmp_path):
    """What replaces a target is read back whole first: a file cut short (a network drive that
    dropped the end) is an error naming the output, not a new map."""
    from unet_segmentation.unet_plugin.core.errors import UserInputError
    from unet_segmentation.unet_plugin.core.layers import verify_raster

    path = str(tmp_path / "cut.tif")
    gdal.Translate(path, world["small"], creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    verify_raster(path, "OUTPUT")  # whole: fine
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) * 2 // 3])
    with pytest.raises(UserInputError) as e:
        verify_raster(path, "OUTPUT", "/data/map.tif")
    assert e.value.parameter == "OUTPUT" and "/data/map.tif" in e.value.message


def test_the_earlier_model_stays_until_training_has_one_to_keep(world, tmp_path):
    """Training writes its best epoch beside OUTPUT_MODEL: during the run the earlier model is the
    file there, byte for byte; at the end the new one replaces it."""
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    model = tmp_path / "model.pt"
    shutil.copy(world["model"], model)
    before = digest(model)
    seen = []

    def watch():  # called before every step: what a colleague opening OUTPUT_MODEL now would get
        seen.append(digest(model) == before)
        return False
    logs = []
    train(TrainConfig(chips=world["chips"], output_model=str(model), backbone="resnet18", pretrained=False, epochs=3,
                      learning_rate=0.002, early_stopping=0), is_canceled=watch, log=logs.append)
    assert sum("best, saved" in m for m in logs) >= 1 and len(seen) > 20
    assert all(seen)  # untouched through every epoch, also after "best, saved"
    assert digest(model) != before and not leftovers(tmp_path)
