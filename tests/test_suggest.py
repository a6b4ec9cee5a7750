"""Suggest Areas to Label: windows where the model is unsure, for the analyst to label next."""

from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from conftest import NC_IMAGE, cli


def _windows(path) -> list[dict]:
    ds = ogr.Open(str(path))
    out = []
    for f in ds.GetLayer(0):
        x0, x1, y0, y1 = f.GetGeometryRef().GetEnvelope()
        out.append(dict(f.items(), bounds=(x0, y0, x1, y1)))
    ds = None
    return out


def _probability_rasters(folder, k=3, size=240, hot=((40, 40, 60, None),), seed=0):
    """A class raster and Byte probabilities (scale 1/255) where the model is sure everywhere except
    in the squares ``hot`` (row, col, side, probabilities): every class about equally likely, or as given."""
    rng = np.random.default_rng(seed)
    p = np.zeros((k, size, size), dtype=np.float64)
    p[0] = 0.96
    p[1:] = 0.04 / (k - 1)
    for r, c, s, profile in hot:
        base = np.full(k, 1.0 / k) if profile is None else np.array(profile)
        p[:, r:r + s, c:c + s] = base[:, None, None] + rng.uniform(-0.02, 0.02, (k, s, s))
    probs = np.minimum(np.rint(p / p.sum(0) * 255), 254).astype(np.uint8)
    classes = (p.argmax(0) + 1).astype(np.uint8)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    paths = []
    for name, data in (("probs.tif", probs), ("classes.tif", classes[None])):
        path = str(folder / name)
        ds = gdal.GetDriverByName("GTiff").Create(path, size, size, data.shape[0], gdal.GDT_Byte)
        ds.SetGeoTransform((500000, 10, 0, 5600000, 0, -10))
        ds.SetProjection(srs.ExportToWkt())
        for b in range(data.shape[0]):
            ds.GetRasterBand(b + 1).WriteArray(data[b])
        ds = None
        paths.append(path)
    return paths


def test_the_uncertain_area_is_proposed_first(tmp_path):
    from unet_segmentation.unet_plugin.ml.suggest import score_windows, select

    # a large area where every class is equally likely, and a small one elsewhere where the model hesitates a little less
    probs, classes = _probability_rasters(tmp_path, hot=((40, 40, 90, None), (176, 176, 32, (0.2, 0.5, 0.3))))
    candidates = score_windows(probs, classes, None, 32, [1, 2, 3])
    top = select(candidates, 3, "uncertainty", 32)
    r, c = top[0]["row"], top[0]["col"]
    assert 40 <= r and r + 32 <= 130 and 40 <= c and c + 32 <= 130  # inside the big uncertain square
    assert top[0]["score"] > 0.95 and all(t["score"] < 0.3 for t in candidates if t["row"] > 140 and t["col"] < 100)
    assert [t["priority"] for t in top] == sorted([t["priority"] for t in top], reverse=True)
    # uncertainty alone takes a second window from the big square; diverse goes to the other one
    diverse = select(candidates, 2, "diverse", 32)
    assert 140 <= diverse[1]["row"] <= 200 and 140 <= diverse[1]["col"] <= 200, diverse[1]
    assert top[1]["row"] < 130 and top[1]["col"] < 130


def test_windows_follow_the_rules_on_a_real_model(no_qgis, tiny_model, tmp_path):
    """On the NC scene with a trained model: COUNT windows of the chip size on the pixel grid, inside the
    raster's image data, apart from each other and from the areas already labelled; ranks follow
    scores; the same seed gives the same windows."""
    env = no_qgis()
    labelled = str(tmp_path / "labelled.gpkg")
    src = gdal.Open(NC_IMAGE)
    gt = src.GetGeoTransform()
    wkt = src.GetProjection()
    x0, y0 = gt[0] + 150 * gt[1], gt[3] + 150 * gt[5]
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(labelled)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    layer = ds.CreateLayer("labelled", srs, ogr.wkbPolygon)
    f = ogr.Feature(layer.GetLayerDefn())
    f.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x0 + 200 * gt[1]} {y0}, {x0 + 200 * gt[1]} {y0 + 150 * gt[5]}, "
                                            f"{x0} {y0 + 150 * gt[5]}, {x0} {y0}))"))
    layer.CreateFeature(f)
    ds = None
    args = [f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}", "COUNT=6", f"EXISTING_LABELS={labelled}", "PRECISION=full"]
    run = cli(env, "suggestlabelingareas", *args, f"OUTPUT={tmp_path / 'a.gpkg'}")
    assert run.returncode == 0, run.stderr
    windows = _windows(tmp_path / "a.gpkg")
    assert [w["rank"] for w in windows] == list(range(1, 7))
    assert [w["score"] for w in windows] == sorted((w["score"] for w in windows), reverse=True)
    image = src.ReadAsArray()
    valid = (image != -99999).all(0)
    boxes = []
    for w in windows:
        c0, r0 = round((w["bounds"][0] - gt[0]) / gt[1]), round((w["bounds"][3] - gt[3]) / gt[5])
        c1, r1 = round((w["bounds"][2] - gt[0]) / gt[1]), round((w["bounds"][1] - gt[3]) / gt[5])
        assert (c1 - c0, r1 - r0) == (64, 64) and 0 <= c0 and c1 <= src.RasterXSize and 0 <= r0 and r1 <= src.RasterYSize
        assert valid[r0:r1, c0:c1].mean() >= 0.75  # on the image, not on its nodata border
        assert c1 <= 150 or c0 >= 350 or r1 <= 150 or r0 >= 300  # never on the labelled area
        assert w["class"] is None and 0 <= w["uncertainty"] <= 1
        assert sum(v for k, v in w.items() if k.startswith("share_")) == pytest.approx(1.0, abs=1e-6)
        boxes.append((r0, c0))
    for i, (ra, ca) in enumerate(boxes):  # apart from each other
        for rb, cb in boxes[i + 1:]:
            assert abs(ra - rb) >= 64 or abs(ca - cb) >= 64
    assert os.path.exists(tmp_path / "a.qml")
    again = cli(env, "suggestlabelingareas", *args, f"OUTPUT={tmp_path / 'b.gpkg'}")
    assert again.returncode == 0
    assert [w["bounds"] for w in _windows(tmp_path / "b.gpkg")] == [w["bounds"] for w in windows]


def test_suggest_errors_name_the_parameter(no_qgis, tiny_model, tmp_path):
    env = no_qgis()
    for args, key in ((["COUNT=0"], "COUNT"), (["WINDOW_SIZE=4"], "WINDOW_SIZE"), (["WINDOW_SIZE=5000"], "WINDOW_SIZE"),
                      (["STRATEGY=random"], "STRATEGY")):
        run = cli(env, "suggestlabelingareas", f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}", *args,
                  f"OUTPUT={tmp_path / 'x.gpkg'}")
        assert run.returncode == 1 and f"Error: {key}: " in run.stderr and "Traceback" not in run.stderr, (key, run.stderr)
    assert not os.path.exists(tmp_path / "x.gpkg")


def test_a_real_models_most_uncertain_windows_are_proposed(no_qgis, tiny_model, tmp_path):
    """The model's uncertainty known independently: Classify Raster's own class probabilities for the
    NC scene, their normalised entropy averaged over every 64-px window position. The proposals
    (``uncertainty``) carry that mean, the first is (nearly) the most uncertain place of the scene
    and all of them lie in its most uncertain quarter (five windows placed at random would all be
    there one time in a thousand)."""
    env = no_qgis()
    probs, classes = tmp_path / "p.tif", tmp_path / "c.tif"
    run = cli(env, "classifyraster", f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}", f"OUTPUT={classes}",
              f"OUTPUT_PROBABILITIES={probs}", "PRECISION=full")
    assert run.returncode == 0, run.stderr
    run = cli(env, "suggestlabelingareas", f"INPUT={NC_IMAGE}", f"MODEL={tiny_model[0]}", "COUNT=5",
              "STRATEGY=uncertainty", "PRECISION=full", f"OUTPUT={tmp_path / 'w.gpkg'}")
    assert run.returncode == 0, run.stderr
    c = gdal.Open(str(classes))
    valid = c.ReadAsArray() != c.GetRasterBand(1).GetNoDataValue()
    p = gdal.Open(str(probs)).ReadAsArray().astype(np.float64)
    p /= np.maximum(p.sum(0, keepdims=True), 1e-9)
    entropy = np.where(valid, -(p * np.log(np.clip(p, 1e-6, 1))).sum(0) / np.log(p.shape[0]), 0.0)

    def window_sums(a, s=64):
        i = np.pad(np.cumsum(np.cumsum(a, 0), 1), ((1, 0), (1, 0)))
        return i[s:, s:] - i[:-s, s:] - i[s:, :-s] + i[:-s, :-s]

    n = window_sums(valid.astype(np.float64))
    mean = np.where(n >= 0.75 * 64 * 64, window_sums(entropy) / np.maximum(n, 1), np.nan)
    gt = c.GetGeoTransform()
    windows = _windows(tmp_path / "w.gpkg")
    found = []
    for w in windows:
        col, row = round((w["bounds"][0] - gt[0]) / gt[1]), round((w["bounds"][3] - gt[3]) / gt[5])
        assert w["uncertainty"] == pytest.approx(mean[row, col], abs=0.01)  # what the model says there
        found.append(mean[row, col])
    assert len(found) == 5
    assert found[0] >= 0.95 * np.nanmax(mean)
    assert min(found) >= np.nanpercentile(mean, 75)
