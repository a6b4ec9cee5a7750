"""Export Training Chips on real data: georeferencing, labels, edges, filters, statistics, bad input."""

import json
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from conftest import BEFL_IMAGE, BEFL_LOCATIONS, BEFL_POLYGONS, NC_IMAGE, NC_POLYGONS, NC_STRATA
from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips
from unet_segmentation.unet_plugin.core.errors import UserInputError
from unet_segmentation.unet_plugin.core.labels import class_codes, write_polygons


def _polygons_gpkg(tmp_path, src, field):
    """The polygons with class codes, as the Processing glue writes them (same CRS here)."""
    ds = ogr.Open(src)
    layer = ds.GetLayer(0)
    feats = [(f.GetGeometryRef().ExportToWkb(), f.GetField(field)) for f in layer]
    mapping, classes = class_codes([v for _, v in feats])
    path = str(tmp_path / "labels.gpkg")
    wkt = gdal.Open(NC_IMAGE).GetProjection() if "landsat" in src else layer.GetSpatialRef().ExportToWkt()
    write_polygons(path, wkt, [(w, mapping[v]) for w, v in feats])
    return path, classes


@pytest.fixture(scope="module")
def nc_poly(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nc")
    labels, classes = _polygons_gpkg(tmp, NC_POLYGONS, "label")
    out = str(tmp / "chips")
    res = export_chips(ExportConfig(input=NC_IMAGE, output=out, labels=labels, classes=classes,
                                    unlabeled="ignore", chip_size=64, stride=48))
    return out, res, labels, classes


def test_text_classes_get_sorted_codes(nc_poly):
    _, res, _, classes = nc_poly
    names = [c["name"] for c in classes]
    assert names == sorted(names) and names[0] == "agriculture" and len(names) == 7
    assert [c["value"] for c in classes] == list(range(1, 8))


def test_chips_keep_georeferencing_and_values(nc_poly):
    out, res, _, _ = nc_poly
    src = gdal.Open(NC_IMAGE)
    sgt = src.GetGeoTransform()
    meta = json.load(open(os.path.join(out, "dataset.json")))
    assert meta["data_type"] == "Float32" and meta["chip_size"] == 64 and len(meta["chips"]) == res.chip_count > 10
    for chip in meta["chips"][::7]:
        ds = gdal.Open(os.path.join(out, "images", chip["id"] + ".tif"))
        gt = ds.GetGeoTransform()
        col = round((gt[0] - sgt[0]) / sgt[1])
        row = round((gt[3] - sgt[3]) / sgt[5])
        assert (col, row) == (chip["col"], chip["row"])
        assert gt[1] == sgt[1] and gt[5] == sgt[5]
        assert np.array_equal(ds.ReadAsArray(), src.ReadAsArray(col, row, 64, 64))
        assert ds.GetRasterBand(1).GetNoDataValue() == -99999
        assert gdal.Open(os.path.join(out, "labels", chip["id"] + ".tif")).GetGeoTransform() == gt


def test_labels_match_a_direct_rasterisation(nc_poly):
    out, _, labels, _ = nc_poly
    from conftest import rasterize_like

    src = gdal.Open(NC_IMAGE)
    truth = rasterize_like(NC_IMAGE, labels, "code")
    truth[src.GetRasterBand(1).ReadAsArray() == -99999] = 255
    meta = json.load(open(os.path.join(out, "dataset.json")))
    checked = 0
    for chip in meta["chips"]:
        lab = gdal.Open(os.path.join(out, "labels", chip["id"] + ".tif")).ReadAsArray()
        assert np.array_equal(lab, truth[chip["row"]:chip["row"] + 64, chip["col"]:chip["col"] + 64])
        checked += (lab < 255).sum()
    assert checked > 2000


def test_statistics_over_valid_pixels(nc_poly):
    out, _, _, _ = nc_poly
    meta = json.load(open(os.path.join(out, "dataset.json")))
    vals = []
    for chip in meta["chips"]:
        a = gdal.Open(os.path.join(out, "images", chip["id"] + ".tif")).ReadAsArray().astype(np.float64)
        valid = (a != -99999).all(0)  # a pixel is valid when no band is nodata
        vals.append(a[0][valid])
    vals = np.concatenate(vals)
    s = meta["statistics"][0]
    assert s["mean"] == pytest.approx(vals.mean(), rel=1e-6) and s["std"] == pytest.approx(vals.std(), rel=1e-5)
    assert s["min"] == vals.min() > -99999
    counts = {c["value"]: c["pixel_count"] for c in meta["classes"]}
    assert counts[0] == 0  # UNLABELED=ignore: nothing is background
    assert meta["ignored_pixel_count"] > 0


def test_esri_classified_tiles_files(nc_poly):
    out, res, _, _ = nc_poly
    emd = json.load(open(os.path.join(out, "esri_model_definition.emd")))
    stats = json.load(open(os.path.join(out, "esri_accumulated_stats.json")))
    assert stats["MetaDataMode"] == "Classified_Tiles" and stats["NumTiles"] == res.chip_count
    assert [c["Name"] for c in emd["Classes"]][:2] == ["agriculture", "developed"]
    lines = open(os.path.join(out, "map.txt")).read().splitlines()
    assert len(lines) == res.chip_count and lines[0] == "images\\000000000.tif labels\\000000000.tif"


def test_edges_are_covered_without_leaving_the_raster(tmp_path):
    out = str(tmp_path / "c")
    res = export_chips(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, chip_size=64, max_nodata=100))
    cols = {c["col"] for c in res.chips}
    rows = {c["row"] for c in res.chips}
    assert max(cols) == 489 - 64 and max(rows) == 443 - 64  # last column/row end at the edge
    assert min(cols) == 0 and min(rows) == 0


def test_label_raster_classes_and_filters(tmp_path):
    a = export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "a"), label_raster=NC_STRATA, chip_size=64, max_nodata=100))
    b = export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "b"), label_raster=NC_STRATA, chip_size=64, max_nodata=10))
    assert b.chip_count < a.chip_count and b.skipped["MAX_NODATA"] == a.chip_count - b.chip_count
    assert [c["value"] for c in a.classes] == [0, 1, 2, 3, 4, 5, 6, 7]
    # names and colours from the label raster's category names and colour table
    assert [c["name"] for c in a.classes][1:4] == ["developed", "agriculture", "herbaceous"]
    assert a.classes[5]["color"] == [27, 120, 55]
    strata = gdal.Open(NC_STRATA).ReadAsArray()
    for chip in b.chips[:5]:
        lab = gdal.Open(str(tmp_path / "b" / "labels" / (chip["id"] + ".tif"))).ReadAsArray()
        ref = strata[chip["row"]:chip["row"] + 64, chip["col"]:chip["col"] + 64]
        known = lab != 255
        assert np.array_equal(lab[known], ref[known].astype(np.uint8))
    c = export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "c"), label_raster=NC_STRATA, chip_size=64, min_labeled=100, max_nodata=100))
    assert c.chip_count < a.chip_count and c.skipped["MIN_LABELED"] > 0
    for chip in c.chips:
        assert chip["label_shares"].get("255", 0) == 0


def test_befl_sparse_labels_with_mask_and_ignore(tmp_path):
    ds = ogr.Open(BEFL_POLYGONS)
    wkt = gdal.Open(BEFL_IMAGE).GetProjection()
    labels = str(tmp_path / "l.gpkg")
    write_polygons(labels, wkt, [(f.GetGeometryRef().ExportToWkb(), 1) for f in ds.GetLayer(0) if f.GetGeometryRef()])
    mask = str(tmp_path / "m.gpkg")
    loc_ds = ogr.Open(BEFL_LOCATIONS)
    write_polygons(mask, wkt, [(f.GetGeometryRef().ExportToWkb(), 1) for f in loc_ds.GetLayer(0) if f.GetGeometryRef()])
    res = export_chips(ExportConfig(input=BEFL_IMAGE, output=str(tmp_path / "c"), labels=labels,
                                    classes=[{"value": 1, "name": "field", "color": [0, 200, 0]}],
                                    mask=mask, unlabeled="ignore", chip_size=64))
    assert res.skipped["outside MASK"] > 0 and res.chip_count > 0
    # inside the windows unlabelled pixels are ignored too (UNLABELED=ignore), fields are 1
    shares = [c["label_shares"] for c in res.chips]
    assert all(set(s) <= {"1", "255"} for s in shares)
    total = len(gdal.Open(BEFL_IMAGE).ReadAsArray()[0].ravel()) // (64 * 64)
    assert res.chip_count < total / 4
    meta = json.load(open(tmp_path / "c" / "dataset.json"))
    assert meta["data_type"] == "Byte" and len(meta["bands"]) == 3


def _err(config, param, match):
    with pytest.raises(UserInputError, match=match) as exc:
        export_chips(config)
    assert exc.value.parameter == param
    assert not os.path.exists(config.output) or not os.listdir(config.output)


def test_bad_inputs(tmp_path, nc_poly):
    out = str(tmp_path / "o")
    _err(ExportConfig(input=NC_IMAGE, output=out), "LABELS", "exactly one")
    _err(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, labels="x.gpkg"), "LABELS", "exactly one")
    _err(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, chip_size=100), "CHIP_SIZE", "multiple of 32")
    _err(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, chip_size=512), "CHIP_SIZE", "larger than")
    _err(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, extent=(0, 0, 10, 10)), "EXTENT", "does not overlap")
    _, _, poly, classes = nc_poly  # small polygons: no chip is fully labelled
    _err(ExportConfig(input=NC_IMAGE, output=out, labels=poly, classes=classes, chip_size=64, min_labeled=100), "MIN_LABELED", "no chip")
    _err(ExportConfig(input=NC_IMAGE, output=out, label_raster=NC_STRATA, bands=[7]), "BANDS", "do not exist")
    with pytest.raises(UserInputError, match="1 to 254") as e:
        class_codes([1, 2, 300])
    assert e.value.parameter == "CLASS_FIELD"
    with pytest.raises(UserInputError, match="at most 254"):
        class_codes([f"c{i}" for i in range(300)])
    # labels that do not overlap the raster
    far = str(tmp_path / "far.gpkg")
    write_polygons(far, gdal.Open(NC_IMAGE).GetProjection(), [(ogr.CreateGeometryFromWkt("POLYGON((0 0,1 0,1 1,0 1,0 0))").ExportToWkb(), 1)])
    _err(ExportConfig(input=NC_IMAGE, output=out, labels=far, classes=[]), "LABELS", "overlaps")
    # a raster without a CRS
    nocrs = str(tmp_path / "nocrs.tif")
    src = gdal.Open(NC_IMAGE)
    d = gdal.GetDriverByName("GTiff").Create(nocrs, src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Float32)
    d.SetGeoTransform(src.GetGeoTransform())
    d.GetRasterBand(1).WriteArray(src.GetRasterBand(1).ReadAsArray())
    d = None
    _err(ExportConfig(input=nocrs, output=out, label_raster=NC_STRATA), "INPUT", "coordinate reference system")
    # a folder holding a different data set is refused, and kept intact
    other, _, _, _ = nc_poly
    before = sorted(os.listdir(other))
    with pytest.raises(UserInputError, match="another raster") as e:
        export_chips(ExportConfig(input=BEFL_IMAGE, output=other, label_raster=NC_STRATA))
    assert e.value.parameter == "OUTPUT" and sorted(os.listdir(other)) == before


def test_cancel_leaves_nothing(tmp_path):
    from unet_segmentation.unet_plugin.core.errors import Canceled

    calls = []
    with pytest.raises(Canceled):
        export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "x"), label_raster=NC_STRATA, chip_size=64),
                     is_canceled=lambda: len(calls) > 5 or calls.append(1))
    assert os.listdir(tmp_path) == []


def test_label_raster_on_another_grid_is_resampled(tmp_path):
    fine = str(tmp_path / "strata_fine.tif")
    gdal.Warp(fine, NC_STRATA, xRes=14.25, yRes=14.25, resampleAlg="near")  # same CRS, half the pixel size
    res = export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "c"), label_raster=fine, chip_size=64))
    strata = gdal.Open(NC_STRATA).ReadAsArray()
    for chip in res.chips[:6]:
        lab = gdal.Open(str(tmp_path / "c" / "labels" / (chip["id"] + ".tif"))).ReadAsArray()
        ref = strata[chip["row"]:chip["row"] + 64, chip["col"]:chip["col"] + 64]
        known = lab != 255
        assert (lab[known] == ref[known]).mean() > 0.97


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "int8", "float32", "int32"])
def test_band_statistics_merge_chip_by_chip(dtype):
    """Chip-by-chip statistics equal numpy's over all valid pixels at once, for every data type."""
    from unet_segmentation.unet_plugin.core.chips.statistics import BandStats as _BandStats

    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if dtype[0] in "ui" else None
    lo, hi = (max(info.min, -20000), min(info.max, 30000)) if info else (-1e4, 5e4)
    chips = [rng.uniform(lo, hi, (3, 32, 32)).astype(dtype) for _ in range(5)]
    masks = [rng.random((32, 32)) > 0.3 for _ in chips]
    masks[0][:] = True  # one chip all valid (the fast path), one without any valid pixel
    masks[1][:] = False
    stats = _BandStats(3)
    for data, valid in zip(chips, masks):
        stats.add(data, valid)
    ref = np.concatenate([d[:, v] for d, v in zip(chips, masks)], axis=1).astype(np.float64)
    out = stats.as_list([1, 2, 3], ("a", "b", "c"))
    for i, s in enumerate(out):
        assert s["count"] == ref.shape[1]
        assert s["mean"] == pytest.approx(ref[i].mean(), rel=1e-9) and s["std"] == pytest.approx(ref[i].std(), rel=1e-9)
        assert s["min"] == ref[i].min() and s["max"] == ref[i].max()


def test_background_heavy_polygon_labels_are_warned_about(tmp_path, nc_poly):
    """NC polygons with UNLABELED=background: ~98 % background, which trains a blank map."""
    _, _, labels, classes = nc_poly
    warnings, logs = [], []
    export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "bg"), labels=labels, classes=classes,
                              unlabeled="background", chip_size=64, stride=64), log=logs.append, warn=warnings.append)
    assert len(warnings) == 1 and "UNLABELED=ignore" in warnings[0] and "CLASS_BALANCING" in warnings[0]
    assert float(warnings[0].split(" %")[0]) > 95
    quiet = []
    export_chips(ExportConfig(input=NC_IMAGE, output=str(tmp_path / "ig"), labels=labels, classes=classes,
                              unlabeled="ignore", chip_size=64, stride=64), warn=quiet.append)
    assert quiet == []
