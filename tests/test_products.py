"""Map products of Classify Raster: class probabilities, the minimum mapping unit, polygons."""

from collections import Counter

import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from conftest import NC_IMAGE
from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify

QUIET = {"log": lambda m: None}
PX_AREA = 28.5 * 28.5


def regions(a: np.ndarray, nodata=255):
    """4-connected regions of equal value (nodata left out), by flood fill: (label image, sizes, values)."""
    h, w = a.shape
    lab = np.full((h, w), -1, np.int64)
    sizes, values = [], []
    for r0 in range(h):
        for c0 in range(w):
            if lab[r0, c0] >= 0 or a[r0, c0] == nodata:
                continue
            n = len(sizes)
            v = a[r0, c0]
            stack = [(r0, c0)]
            lab[r0, c0] = n
            size = 0
            while stack:
                r, c = stack.pop()
                size += 1
                for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                    if 0 <= rr < h and 0 <= cc < w and lab[rr, cc] < 0 and a[rr, cc] == v:
                        lab[rr, cc] = n
                        stack.append((rr, cc))
            sizes.append(size)
            values.append(int(v))
    return lab, np.array(sizes), np.array(values)


@pytest.fixture(scope="module")
def products(tiny_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("products")
    plain, probs, conf = str(tmp / "plain.tif"), str(tmp / "probs.tif"), str(tmp / "conf.tif")
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=plain, output_probabilities=probs,
                            output_confidence=conf, engine="torch"), **QUIET)
    sieved, polys = str(tmp / "sieved.tif"), str(tmp / "classes.gpkg")
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=sieved, min_area=40, output_polygons=polys,
                            engine="torch"), **QUIET)
    return plain, probs, conf, sieved, polys


def test_probabilities_are_named_scaled_and_their_argmax_is_the_map(products, tiny_model):
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    plain, probs, conf, _, _ = products
    classes = read_model_file(tiny_model[0])["metadata"]["classes"]
    ds = gdal.Open(probs)
    assert ds.RasterCount == len(classes)
    for b, c in enumerate(classes):
        band = ds.GetRasterBand(b + 1)
        assert band.GetDescription() == c["name"] and band.GetScale() == pytest.approx(1 / 255)
        assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
    p = ds.ReadAsArray().astype(np.int64)
    cls = gdal.Open(plain).ReadAsArray()
    nodata = cls == 255
    assert np.all(p[:, nodata] == 255) and not np.any(p[:, ~nodata] == 255)
    srt = np.sort(p[:, ~nodata], axis=0)
    clear = srt[-1] > srt[-2]  # no tie after rounding to 1/255
    values = np.array([c["value"] for c in classes])
    assert np.array_equal(values[p[:, ~nodata].argmax(0)][clear], cls[~nodata][clear]) and clear.mean() > 0.95
    assert np.abs(p[:, ~nodata].sum(0) / 255 - 1).max() < len(classes) / 255  # a distribution
    c = gdal.Open(conf).ReadAsArray()
    assert np.abs(p[:, ~nodata].max(0) / 255 - c[~nodata]).max() <= 1 / 255 + 1e-6


def test_minimum_mapping_unit_leaves_no_smaller_region(products):
    plain, _, _, sieved, _ = products
    before, after = gdal.Open(plain).ReadAsArray(), gdal.Open(sieved).ReadAsArray()
    _, sizes_before, _ = regions(before)
    lab, sizes, _ = regions(after)
    assert (sizes_before < 40).sum() > 10  # the plain map has small regions to remove
    assert sizes.min() >= 40 or all(_touches_nodata(lab, after, i) for i in np.nonzero(sizes < 40)[0])
    assert np.array_equal(before == 255, after == 255)  # nodata neither grows nor is filled
    small = np.isin(regions(before)[0], np.nonzero(sizes_before < 40)[0])
    assert np.all(before[~small] == after[~small])  # only pixels of small regions change


def _touches_nodata(lab, a, i):
    """A small region may stay where it is enclosed by nodata (no class to merge into)."""
    m = lab == i
    grown = np.zeros_like(m)
    grown[1:] |= m[:-1]
    grown[:-1] |= m[1:]
    grown[:, 1:] |= m[:, :-1]
    grown[:, :-1] |= m[:, 1:]
    ring = grown & ~m
    return bool(np.all(a[ring] == 255))


def test_polygons_one_per_region_with_class_names_and_areas(products, tiny_model):
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    _, _, _, sieved, polys = products
    a = gdal.Open(sieved).ReadAsArray()
    _, sizes, values = regions(a)
    src = ogr.Open(polys)
    layer = src.GetLayer(0)
    feats = [(f.GetField("class_value"), f.GetField("class_name"), f.GetField("area_m2"), f.GetGeometryRef().Clone())
             for f in layer]
    assert len(feats) == len(sizes)
    names = {c["value"]: c["name"] for c in read_model_file(tiny_model[0])["metadata"]["classes"]}
    assert all(n == names[v] for v, n, _, _ in feats)
    assert all(g.IsValid() for _, _, _, g in feats)
    area_by_class = Counter()
    for v, _, area, _ in feats:
        area_by_class[v] += area
    for v in set(values.tolist()):
        assert area_by_class[v] == pytest.approx(sizes[values == v].sum() * PX_AREA, rel=1e-6)
    assert sorted(round(x[2] / PX_AREA) for x in feats) == sorted(sizes.tolist())
    qml = open(polys[:-5] + ".qml", encoding="utf-8").read()
    assert 'type="categorizedSymbol"' in qml and all(f'label="{n}"' in qml for n in names.values())


def test_areas_are_in_square_metres_in_a_geographic_crs():
    from unet_segmentation.unet_plugin.core.regions import _area_function

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    square = ogr.CreateGeometryFromWkt("POLYGON ((10 0, 10.01 0, 10.01 0.01, 10 0.01, 10 0))")
    assert _area_function(srs)(square) == pytest.approx(1113.19 * 1105.74, rel=0.005)


def test_bad_polygon_format_and_negative_min_area_are_refused(tiny_model, tmp_path):
    from unet_segmentation.unet_plugin.core.errors import UserInputError

    with pytest.raises(UserInputError) as err:
        classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "c.tif"),
                                output_polygons=str(tmp_path / "p.xyz")), **QUIET)
    assert err.value.parameter == "OUTPUT_POLYGONS"
    with pytest.raises(UserInputError) as err:
        classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "c.tif"), min_area=-3), **QUIET)
    assert err.value.parameter == "MIN_AREA"
    assert not list(tmp_path.iterdir())


def test_polygons_rasterise_back_to_exactly_the_class_raster(products):
    _, _, _, sieved, polys = products
    from conftest import rasterize_like

    assert np.array_equal(rasterize_like(sieved, polys, "class_value"), gdal.Open(sieved).ReadAsArray())
