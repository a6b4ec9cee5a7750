"""Silent wrong results (issue 13): each test has a known answer, computed independently of the code under test.

Label grids that are offset or south-up, label-raster nodata, a replaced model behind the ONNX
cache, overlapping runs and the process-wide GDAL cache, fine-tuning on other classes.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch
from osgeo import gdal

from conftest import NC_IMAGE, NC_POLYGONS, NC_STRATA
from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips
from unet_segmentation.unet_plugin.core.errors import UserInputError
from unet_segmentation.unet_plugin.core.labels import class_codes, write_polygons
from unet_segmentation.unet_plugin.core.raster import gdal_cache_budget
from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify

IGNORE = 255


def _copy(src, dst, gt=None, array=None):
    """A GeoTIFF copy of ``src``, with another geotransform and/or other pixel values."""
    ds = gdal.Translate(str(dst), src, format="GTiff", creationOptions=["COMPRESS=DEFLATE"])
    if gt is not None:
        ds.SetGeoTransform(gt)
    if array is not None:
        arr = array if array.ndim == 3 else array[None]
        for i in range(ds.RasterCount):
            ds.GetRasterBand(i + 1).WriteArray(arr[i])
    ds = None
    return str(dst)


def _valid():
    ds = gdal.Open(NC_IMAGE)
    a = ds.ReadAsArray()
    return np.all(a != ds.GetRasterBand(1).GetNoDataValue(), axis=0)


def _strata_codes():
    a = gdal.Open(NC_STRATA).ReadAsArray()
    return np.where(a == -99999, IGNORE, a).astype(np.uint8)


def _chip_labels(folder):
    meta = json.load(open(os.path.join(folder, "dataset.json")))
    for chip in meta["chips"]:
        yield chip, gdal.Open(os.path.join(folder, "labels", chip["id"] + ".tif")).ReadAsArray()


def _assert_chips_equal(folder, expected, size=64):
    chips = 0
    for chip, label in _chip_labels(folder):
        r, c = chip["row"], chip["col"]
        np.testing.assert_array_equal(label, expected[r:r + size, c:c + size], err_msg=f"chip {chip['id']}")
        chips += 1
    assert chips >= 20


def test_label_raster_offset_by_pixels_is_resampled_not_cut(tmp_path):
    """A 0.5 m grid at UTM-sized coordinates, labels shifted 4 m (8 px) east: np.allclose called them aligned."""
    image = _copy(NC_IMAGE, tmp_path / "img.tif", gt=(500000.0, 0.5, 0, 5000000.0, 0, -0.5))
    labels = _copy(NC_STRATA, tmp_path / "lab.tif", gt=(500004.0, 0.5, 0, 5000000.0, 0, -0.5))
    out = str(tmp_path / "chips")
    export_chips(ExportConfig(input=image, output=out, label_raster=labels, unlabeled="ignore", chip_size=64, stride=64))
    strata = _strata_codes()
    expected = np.full(strata.shape, IGNORE, np.uint8)
    expected[:, 8:] = strata[:, :-8]  # image column c sees label column c - 8; the first 8 have no label
    expected[~_valid()] = IGNORE
    _assert_chips_equal(out, expected)


def test_label_raster_offset_by_a_tiny_fraction_counts_as_aligned(tmp_path):
    """Within 1 % of a pixel the grids are the same: cut pixel for pixel (no resampling shift)."""
    labels = gdal.Open(NC_STRATA)
    gt = list(labels.GetGeoTransform())
    gt[0] += 0.2  # 0.7 % of a 28.5 m pixel
    shifted = _copy(NC_STRATA, tmp_path / "lab.tif", gt=tuple(gt))
    out = str(tmp_path / "chips")
    export_chips(ExportConfig(input=NC_IMAGE, output=out, label_raster=shifted, unlabeled="ignore", chip_size=64, stride=64))
    expected = _strata_codes()
    expected[~_valid()] = IGNORE
    _assert_chips_equal(out, expected)


@pytest.fixture(scope="module")
def south_up(tmp_path_factory):
    """The NC image stored south-up (row 0 is the southern edge, gt[5] > 0), the same place on the ground."""
    tmp = tmp_path_factory.mktemp("southup")
    ds = gdal.Open(NC_IMAGE)
    x0, px, _, y0, _, py = ds.GetGeoTransform()
    gt = (x0, px, 0, y0 + ds.RasterYSize * py, 0, -py)
    return _copy(NC_IMAGE, tmp / "south_up.tif", gt=gt, array=ds.ReadAsArray()[:, ::-1, :])


def test_south_up_image_gets_its_labels_from_a_north_up_raster(tmp_path, south_up):
    out = str(tmp_path / "chips")
    export_chips(ExportConfig(input=south_up, output=out, label_raster=NC_STRATA, unlabeled="ignore", chip_size=64, stride=64))
    expected = _strata_codes()
    expected[~_valid()] = IGNORE
    _assert_chips_equal(out, expected[::-1])


def test_south_up_image_gets_its_labels_from_polygons(tmp_path, south_up):
    from osgeo import ogr

    source = ogr.Open(NC_POLYGONS)  # kept: a layer outlives its data source only in C, not in Python
    feats = [(f.GetGeometryRef().ExportToWkb(), f.GetField("label")) for f in source.GetLayer(0)]
    mapping, classes = class_codes([v for _, v in feats])
    polygons = str(tmp_path / "labels.gpkg")
    write_polygons(polygons, gdal.Open(NC_IMAGE).GetProjection(), [(w, mapping[v]) for w, v in feats])
    north, south = str(tmp_path / "north"), str(tmp_path / "south")
    for image, out in ((NC_IMAGE, north), (south_up, south)):
        export_chips(ExportConfig(input=image, output=out, labels=polygons, classes=classes, unlabeled="ignore",
                                  chip_size=64, stride=64, max_nodata=100))
    h = gdal.Open(NC_IMAGE).RasterYSize
    mosaic = np.full((h, 489), 254, np.uint8)
    for chip, label in _chip_labels(north):
        mosaic[chip["row"]:chip["row"] + 64, chip["col"]:chip["col"] + 64] = label
    flipped = mosaic[::-1]
    compared = 0
    for chip, label in _chip_labels(south):
        r, c = chip["row"], chip["col"]
        want = flipped[r:r + 64, c:c + 64]
        known = want != 254  # the northern export covers the southern chip's area (or not, at the edge)
        np.testing.assert_array_equal(label[known], want[known])
        compared += int(known.sum())
    assert compared > 100000


def test_label_raster_nodata_is_ignored_not_background(tmp_path):
    """A Byte label raster whose nodata is 200: those pixels are unknown (255), never class 0."""
    strata = _strata_codes()
    raw = strata.copy()
    raw[raw == IGNORE] = 0
    raw[100:160, 100:200] = 200  # a hole with no labels, inside the valid image
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "lab.tif"), raw.shape[1], raw.shape[0], 1, gdal.GDT_Byte)
    ref = gdal.Open(NC_STRATA)
    ds.SetGeoTransform(ref.GetGeoTransform())
    ds.SetProjection(ref.GetProjection())
    ds.GetRasterBand(1).WriteArray(raw)
    ds.GetRasterBand(1).SetNoDataValue(200)
    ds = None
    out = str(tmp_path / "chips")
    export_chips(ExportConfig(input=NC_IMAGE, output=out, label_raster=str(tmp_path / "lab.tif"), unlabeled="background",
                              chip_size=64, stride=64))
    expected = raw.copy()
    expected[100:160, 100:200] = IGNORE
    expected[~_valid()] = IGNORE
    _assert_chips_equal(out, expected)


def test_replaced_model_with_kept_size_and_mtime_is_not_run_from_the_cache(tiny_model, tmp_path):
    """cp -p / rsync -a keep size and mtime: the map must still be the new model's."""
    from unet_segmentation.unet_plugin.ml.model.modelfile import build_model, read_model_file, save_model

    payload = read_model_file(tiny_model[0])
    other = {k: (-v if k.startswith("head") else v) for k, v in payload["state_dict"].items()}
    assert any(k.startswith("head") for k in other)
    model = build_model(payload["metadata"])
    model.load_state_dict(other)
    model_b = tmp_path / "b.pt"
    save_model(str(model_b), model, payload["metadata"])
    path = tmp_path / "model.pt"
    shutil.copy2(tiny_model[0], path)
    stat = os.stat(path)
    assert os.path.getsize(model_b) == stat.st_size  # same architecture, same size: the old key could not tell
    maps = {}
    for name, engine in (("a", "onnxruntime"), ("b", "onnxruntime"), ("b_torch", "torch")):
        if name == "b":
            shutil.copyfile(model_b, path)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        out = str(tmp_path / f"{name}.tif")
        classify(ClassifyConfig(input=NC_IMAGE, model=str(path), output=out, overlap=0, engine=engine, precision="full"), log=lambda m: None)
        maps[name] = gdal.Open(out).ReadAsArray()
    valid = maps["b_torch"] != 255
    assert (maps["a"][valid] != maps["b_torch"][valid]).mean() > 0.3  # the two models really differ
    assert (maps["b"][valid] == maps["b_torch"][valid]).mean() > 0.999


def test_overlapping_runs_restore_the_users_gdal_cache():
    """QGIS runs algorithms in parallel tasks: run A starts, B starts, A ends, B ends."""
    user = 1_260_000_000
    gdal.SetCacheMax(user)
    try:
        a, b = gdal_cache_budget(), gdal_cache_budget()
        a.__enter__()
        assert gdal.GetCacheMax() == 64 * 1024 * 1024
        b.__enter__()
        a.__exit__(None, None, None)
        assert gdal.GetCacheMax() == 64 * 1024 * 1024  # B still runs under the cap
        b.__exit__(None, None, None)
        assert gdal.GetCacheMax() == user
    finally:
        gdal.SetCacheMax(user)


def _chips_with(strata_chips, tmp_path, edit):
    folder = tmp_path / "chips"
    shutil.copytree(strata_chips, folder)
    meta = json.load(open(folder / "dataset.json"))
    edit(meta)
    json.dump(meta, open(folder / "dataset.json", "w"))
    return str(folder)


@pytest.mark.parametrize("change, words", [
    ("names", "classes"),
    ("scale", "scale"),
    ("band names", "band 2"),
])
def test_fine_tuning_refuses_other_classes_bands_or_scale(strata_chips, tiny_model, tmp_path, change, words):
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    def edit(meta):
        if change == "names":  # same count and codes, other names: text classes of another data set
            for c in meta["classes"]:
                if c["value"]:
                    c["name"] = "other " + c["name"]
        elif change == "scale":  # reflectance 0-1 instead of the model's DN
            for s in meta["statistics"]:
                s["mean"], s["std"] = s["mean"] / 1000, s["std"] / 1000
        else:
            meta["bands"][1]["name"] = "NIR"

    chips = _chips_with(strata_chips, tmp_path, edit)
    with pytest.raises(UserInputError) as err:
        train(TrainConfig(chips=chips, output_model=str(tmp_path / "m.pt"), backbone="resnet18", pretrained=False,
                          init_model=tiny_model[0], epochs=1, batch_size=4), log=lambda m: None)
    assert err.value.parameter == "INIT_MODEL" and words in err.value.message
    assert not os.path.exists(tmp_path / "m.pt")


# --- Classify Raster against a reference written from the documented rules, not from ml/classify/ ---

def _reference_classification(model_path, tile=64, stride=32):
    """Classification of the NC image by the documented rules, tile by tile in plain PyTorch.

    Normalise with the model's statistics, set nodata pixels to 0 (as training does), run every
    tile of the grid ``o_i = min(i * stride, n - tile)``, weight each tile's softmax by the
    separable ramp ``max(min(i + 0.5, n - i - 0.5) / (n / 2), 0.01)``, divide by the summed
    weights; the class is the model's class *value* at the argmax, the confidence its probability.
    """
    from unet_segmentation.unet_plugin.ml.model.modelfile import load_model

    model, meta = load_model(model_path)
    ds = gdal.Open(NC_IMAGE)
    data = ds.ReadAsArray().astype(np.float32)
    valid = np.all(data != -99999, axis=0)
    mean = np.array(meta["normalization"]["mean"], np.float32)[:, None, None]
    std = np.array(meta["normalization"]["std"], np.float32)[:, None, None]
    x = (data - mean) / std
    x[:, ~valid] = 0
    _, h, w = x.shape

    def origins(n):
        o = list(range(0, n - tile + 1, stride))
        return o if o[-1] == n - tile else o + [n - tile]

    ramp = np.maximum(np.minimum(np.arange(tile) + 0.5, tile - np.arange(tile) - 0.5) / (tile / 2), 0.01)
    weight = np.outer(ramp, ramp)
    k = len(meta["classes"])
    acc, wsum = np.zeros((k, h, w)), np.zeros((h, w))
    with torch.no_grad():
        for r in origins(h):
            for c in origins(w):
                p = torch.softmax(model(torch.from_numpy(x[None, :, r:r + tile, c:c + tile])), 1)[0].numpy()
                acc[:, r:r + tile, c:c + tile] += p * weight
                wsum[r:r + tile, c:c + tile] += weight
    prob = acc / wsum
    values = np.array([c["value"] for c in meta["classes"]])
    cls = values[prob.argmax(0)].astype(np.uint8)
    cls[~valid] = IGNORE
    return cls, prob.max(0), valid


@pytest.fixture(scope="module")
def reordered_model(tiny_model, tmp_path_factory):
    """The tiny model with its output channels permuted so that the two classes it predicts most
    become the *last two* of its class list: a mix-up at the end of the list shows on most pixels."""
    from unet_segmentation.unet_plugin.ml.model.modelfile import build_model, read_model_file, save_model

    payload = read_model_file(tiny_model[0])
    meta, state = payload["metadata"], payload["state_dict"]
    cls, _, valid = _reference_classification(tiny_model[0])
    values = [c["value"] for c in meta["classes"]]
    counts = [(cls[valid] == v).sum() for v in values]
    top2 = list(np.argsort(counts)[::-1][:2])
    order = [i for i in range(len(values)) if i not in top2] + top2[::-1]  # new channel j = old channel order[j]
    classes = [meta["classes"][i] for i in order]
    state = dict(state, **{n: state[n][order] for n in ("head.weight", "head.bias")})
    model = build_model(meta)
    model.load_state_dict(state)
    path = str(tmp_path_factory.mktemp("reordered") / "reordered.pt")
    save_model(path, model, dict(meta, classes=classes))
    return path, classes


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_classification_equals_the_documented_blend(reordered_model, tmp_path, engine):
    path, classes = reordered_model
    want_cls, want_conf, valid = _reference_classification(path)
    last_two = [c["value"] for c in classes[-2:]]
    assert np.isin(want_cls[valid], last_two).mean() > 0.5  # the test can see a mix-up of the last classes
    out, conf = str(tmp_path / "c.tif"), str(tmp_path / "p.tif")
    classify(ClassifyConfig(input=NC_IMAGE, model=path, output=out, output_confidence=conf, tile_size=64, overlap=50,
                            batch_size=5, engine=engine, precision="full"), log=lambda m: None)
    got_cls, got_conf = gdal.Open(out).ReadAsArray(), gdal.Open(conf).ReadAsArray()
    assert np.array_equal(got_cls == IGNORE, ~valid)
    assert (got_cls == want_cls)[valid].mean() > 0.999
    assert np.abs(got_conf[valid] - want_conf[valid]).max() < 1e-3
    # each class value carries its own name in the output, whatever its position in the model's list
    names = gdal.Info(out, format="json")["bands"][0]["categories"]
    assert all(names[c["value"]] == c["name"] for c in classes)


def test_augmentation_moves_labels_with_their_pixels():
    """Whatever flip or rotation a chip gets, each label stays on the pixel it belongs to."""
    from unet_segmentation.unet_plugin.ml.train.sampling import flip_rotate as augment_batch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 16, 16)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0.5).long()  # the label is a function of the pixel's values
    xa, ya = augment_batch(x, y, gen)
    assert torch.equal(ya, (xa[:, 0] > 0).long() + 2 * (xa[:, 1] > 0.5).long())
    assert not torch.equal(xa, x)  # something moved
    seen = {tuple(xa[i, 0, 0, :2].tolist()) for i in range(64)}
    assert len(seen) > 8  # and not all alike


def test_class_balancing_reaches_the_loss_with_rare_classes_weighted_up(strata_chips, tmp_path, monkeypatch):
    """The weights the training loss gets: rarer classes (fewer labelled pixels) weigh more."""
    from unet_segmentation.unet_plugin.core.chips import load_chip_dataset
    from unet_segmentation.unet_plugin.ml.train import run as train_module

    seen = {}
    real = train_module.make_loss

    def spy(kind, weight):
        seen["weight"] = None if weight is None else weight.cpu().numpy()
        return real(kind, weight)

    monkeypatch.setattr(train_module, "make_loss", spy)
    train_module.train(train_module.TrainConfig(chips=strata_chips, output_model=str(tmp_path / "m.pt"), backbone="resnet18",
                                                pretrained=False, epochs=1, batch_size=8, learning_rate=1e-3,
                                                class_balancing=True), log=lambda m: None)
    counts = np.array([c["pixel_count"] for c in load_chip_dataset(strata_chips).classes if c["pixel_count"] > 0], float)
    w = seen["weight"]
    assert w is not None and len(w) == len(counts)
    assert w[counts.argmin()] > w[counts.argmax()]
    # ordered like the inverse frequencies (ties where the cap binds)
    assert np.all(np.diff(w[np.argsort(counts)]) <= 1e-6)


def test_training_ignores_labels_under_image_nodata(strata_chips, tmp_path):
    """A label source that knows nothing of image nodata (a Pro export, say): training must not learn
    classes from pixels without imagery."""
    from unet_segmentation.unet_plugin.core.chips import load_chip_dataset
    from unet_segmentation.unet_plugin.ml.train.data import ChipTensors
    from unet_segmentation.unet_plugin.ml.train.data import classes_and_lut as _classes_and_lut

    folder = tmp_path / "chips"
    shutil.copytree(strata_chips, folder)
    meta = json.load(open(folder / "dataset.json"))
    touched = 0
    for chip in meta["chips"]:
        img = gdal.Open(str(folder / "images" / (chip["id"] + ".tif"))).ReadAsArray()
        invalid = np.any(img == -99999, axis=0)
        if invalid.any():
            ds = gdal.Open(str(folder / "labels" / (chip["id"] + ".tif")), gdal.GA_Update)
            label = ds.ReadAsArray()
            label[invalid] = 5  # "forest" where there is no image
            ds.GetRasterBand(1).WriteArray(label)
            ds = None
            touched += 1
    assert touched >= 5
    data = load_chip_dataset(str(folder))
    _, lut = _classes_and_lut(data)
    mean = np.array([s["mean"] for s in data.statistics])
    std = np.array([s["std"] for s in data.statistics])
    tensors = ChipTensors(data, list(range(len(data))), lut, mean, std)
    for pos, i in enumerate(range(len(data))):
        img = gdal.Open(data.image_paths[i]).ReadAsArray()
        invalid = np.any(img == -99999, axis=0)
        _, y = tensors.batch([pos])
        assert np.all(y[0].numpy()[invalid] == IGNORE)
