"""Assess Accuracy: known answers computed here with plain numpy from the same pixels."""

import csv
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from conftest import NC_POLYGONS, NC_STRATA, rasterize_like
from unet_segmentation.unet_plugin.core.accuracy import AccuracyConfig, assess
from unet_segmentation.unet_plugin.core.errors import UserInputError
from unet_segmentation.unet_plugin.core.labels import write_polygons
from unet_segmentation.unet_plugin.core.metrics import scores
from unet_segmentation.unet_plugin.core.styles import apply_classes_to_band

NAMES = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"]
CLASSES = [{"value": i + 1, "name": n, "color": [10 * i, 20, 30]} for i, n in enumerate(NAMES)]


def _strata():
    a = gdal.Open(NC_STRATA).ReadAsArray()
    return np.where(a == -99999, 255, a).astype(np.uint8)


def _class_raster(path, array, classes=CLASSES):
    """A class raster as Classify Raster writes it: Byte, nodata 255, colour table and names."""
    ref = gdal.Open(NC_STRATA)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0], 1, gdal.GDT_Byte)
    ds.SetGeoTransform(ref.GetGeoTransform())
    ds.SetProjection(ref.GetProjection())
    apply_classes_to_band(ds.GetRasterBand(1), classes)  # before the pixels: GDAL 3.10 refuses a colour table after
    ds.GetRasterBand(1).WriteArray(array)
    ds = None
    return str(path)


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """The strata map with every water pixel mapped as forest and a block of herbaceous as developed."""
    truth = _strata()
    m = truth.copy()
    m[m == 6] = 5
    block = np.zeros_like(m, bool)
    block[200:260, 150:260] = True
    m[block & (m == 3)] = 1
    return _class_raster(tmp_path_factory.mktemp("acc") / "map.tif", m), m, truth


def _expected(m, truth):
    ok = (m != 255) & (truth != 255)
    cm = np.zeros((7, 7), np.int64)
    np.add.at(cm, (truth[ok].astype(int) - 1, m[ok].astype(int) - 1), 1)
    return cm


def test_against_a_reference_raster(mapped):
    path, m, truth = mapped
    res = assess(AccuracyConfig(input=path, reference_raster=NC_STRATA))
    want = _expected(m, truth)
    np.testing.assert_array_equal(res.confusion, want)
    water = next(r for r in res.rows if r["class_name"] == "water")
    forest = next(r for r in res.rows if r["class_name"] == "forest")
    assert water["producers_accuracy"] == 0.0 and water["users_accuracy"] is None  # never mapped
    assert forest["producers_accuracy"] == 1.0
    assert forest["users_accuracy"] == pytest.approx(want[4, 4] / want[:, 4].sum())
    n = want.sum()
    po = np.trace(want) / n
    pe = (want.sum(0) * want.sum(1)).sum() / n**2
    assert res.scores["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert res.scores["accuracy"] == pytest.approx(po)


def test_a_perfect_map_scores_one(tmp_path):
    truth = _strata()
    res = assess(AccuracyConfig(input=_class_raster(tmp_path / "same.tif", truth), reference_raster=NC_STRATA))
    assert res.scores["accuracy"] == 1.0 and res.scores["kappa"] == 1.0 and res.scores["miou"] == 1.0


def test_against_reference_polygons_with_class_names(mapped, tmp_path):
    path, m, _ = mapped
    ref = gdal.Open(NC_STRATA)
    src = ogr.Open(NC_POLYGONS)
    feats = [(f.GetGeometryRef().ExportToWkb(), f.GetField("label")) for f in src.GetLayer(0)]
    polygons = str(tmp_path / "ref.gpkg")
    write_polygons(polygons, ref.GetProjection(), [(w, 1) for w, _ in feats])
    res = assess(AccuracyConfig(input=path, reference=polygons, reference_values=[v for _, v in feats]))
    # the same polygons burnt here by pixel centre, with the names' values
    coded = str(tmp_path / "coded.gpkg")
    write_polygons(coded, ref.GetProjection(), [(w, NAMES.index(v) + 1) for w, v in feats])
    np.testing.assert_array_equal(res.confusion, _expected(m, rasterize_like(NC_STRATA, coded, "code")))
    assert res.pixels > 2000


def test_unknown_reference_classes_name_both_sets(mapped, tmp_path):
    path, _, _ = mapped
    polygons = str(tmp_path / "ref.gpkg")
    src = ogr.Open(NC_POLYGONS)
    feats = [(f.GetGeometryRef().ExportToWkb(), f.GetField("label")) for f in src.GetLayer(0)]
    write_polygons(polygons, gdal.Open(NC_STRATA).GetProjection(), [(w, 1) for w, _ in feats])
    values = ["wetland" if v == "water" else v for _, v in feats]
    with pytest.raises(UserInputError) as err:
        assess(AccuracyConfig(input=path, reference=polygons, reference_values=values))
    assert err.value.parameter == "CLASS_FIELD" and "wetland" in err.value.message and "7 sediment" in err.value.message


def test_report_and_metrics_agree(mapped, tmp_path):
    path, m, truth = mapped
    report = str(tmp_path / "acc.html")
    res = assess(AccuracyConfig(input=path, reference_raster=NC_STRATA, output_report=report))
    text = open(report, encoding="utf-8").read()
    assert f"{res.scores['kappa']:.3f}" in text and "Confusion matrix" in text and "producer" in text
    assert scores(_expected(m, truth))["miou"] == pytest.approx(res.scores["miou"])


def test_processing_assess_accuracy_table_and_outputs(provider, mapped, tmp_path):
    import processing

    path, m, truth = mapped
    table = str(tmp_path / "acc.csv")
    res = processing.run("unet:assessaccuracy", {"INPUT": path, "REFERENCE": NC_POLYGONS, "CLASS_FIELD": "label",
                                                  "OUTPUT_TABLE": table, "OUTPUT_REPORT": str(tmp_path / "r.html")})
    rows = list(csv.DictReader(open(res["OUTPUT_TABLE"])))
    assert [r["class_name"] for r in rows] == NAMES
    assert 0 < res["OVERALL_ACCURACY"] <= 1 and -1 <= res["KAPPA"] <= 1 and 0 < res["MEAN_IOU"] <= 1
    water = next(r for r in rows if r["class_name"] == "water")
    assert float(water["producers_accuracy"]) == 0.0 and int(water["reference_pixels"]) > 0
    assert os.path.exists(res["OUTPUT_REPORT"])
