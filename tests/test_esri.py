"""Esri Classified Tiles, judged by the other side: arcgis.learn 2.4.1's own code reads our
exports, and Train U-Net reads folders laid out exactly as ArcGIS Pro writes them."""

import json
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from arcgis_judge import ArcgisLearn, wheel_path
from conftest import NC_IMAGE, NC_POLYGONS, export_befl_fields
from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips
from unet_segmentation.unet_plugin.core.errors import UserInputError
from unet_segmentation.unet_plugin.core.labels import class_codes, write_polygons
from unet_segmentation.unet_plugin.core.styles import default_color

NC_X0, NC_Y1, NC_PX = 630534.0, 228114.0, 28.5


@pytest.fixture(scope="module")
def arcgis():
    wheel = wheel_path()
    if not wheel:
        pytest.skip("the arcgis 2.4.1 wheel is downloaded by scripts/setup.sh")
    return ArcgisLearn(wheel)


@pytest.fixture(scope="module")
def nc_exports(tmp_path_factory):
    """NC polygons (text classes, UNLABELED=ignore): the whole scene, and its northern and southern halves."""
    tmp = tmp_path_factory.mktemp("esri")
    src = ogr.Open(NC_POLYGONS)
    feats = [(f.GetGeometryRef().ExportToWkb(), f.GetField("label")) for f in src.GetLayer(0)]
    mapping, classes = class_codes([v for _, v in feats])
    labels = str(tmp / "labels.gpkg")
    write_polygons(labels, gdal.Open(NC_IMAGE).GetProjection(), [(w, mapping[v]) for w, v in feats])
    out = {}
    half = NC_Y1 - 221 * NC_PX
    for name, extent in (("all", None), ("north", (NC_X0, half, NC_X0 + 489 * NC_PX, NC_Y1)),
                         ("south", (NC_X0, NC_Y1 - 443 * NC_PX, NC_X0 + 489 * NC_PX, half))):
        out[name] = str(tmp / name)
        export_chips(ExportConfig(input=NC_IMAGE, output=out[name], labels=labels, classes=classes, unlabeled="ignore",
                                  chip_size=64, stride=32, extent=extent))
    return out


def _labels(folder):
    for line in open(os.path.join(folder, "map.txt")):
        yield gdal.Open(os.path.join(folder, line.split()[1].replace("\\", "/"))).ReadAsArray()


def test_arcgis_learn_trains_on_every_label_value(arcgis, nc_exports):
    """Its label list turns each label pixel into a class index below its class count: no
    'Target 255 is out of bounds', and no value silently folded into NoData."""
    folder = nc_exports["all"]
    emd = json.load(open(os.path.join(folder, "esri_model_definition.emd")))
    mapping = arcgis.class_mapping(emd)
    assert 255 in mapping and "ignore" in mapping[255]
    seen = set()
    for label in _labels(folder):
        indices, classes = arcgis.label_indices(label, mapping)
        assert int(indices.max()) < len(classes)
        values = set(np.unique(label).tolist())
        assert values <= {0} | set(mapping), values - set(mapping)
        seen |= values
    assert 255 in seen and len(seen) >= 6


def test_arcgis_learn_finds_class_pixel_counts_for_balancing(arcgis, nc_exports):
    folder = nc_exports["all"]
    stats = json.load(open(os.path.join(folder, "esri_accumulated_stats.json")))
    emd = json.load(open(os.path.join(folder, "esri_model_definition.emd")))
    weight = arcgis.class_weight(stats)
    assert weight is not None, "arcgis.learn would ignore class_balancing=True"
    assert len(weight) == len(emd["Classes"]) and np.all(np.isfinite(weight))
    ours = {c["value"]: c["pixel_count"] for c in json.load(open(os.path.join(folder, "dataset.json")))["classes"]}
    counts = stats["ClassPixelStats"]["NumPixelsPerClass"]
    assert counts == [ours.get(c["Value"], 0) if c["Value"] != 255 else
                      json.load(open(os.path.join(folder, "dataset.json")))["ignored_pixel_count"] for c in emd["Classes"]]


def test_arcgis_learn_merges_several_folders(arcgis, nc_exports):
    """prepare_data([north, south]): its merge of the .emd and stats files, band statistics without nodata."""
    emd, eas, _ = arcgis.merge_emd_and_stats([nc_exports["north"], nc_exports["south"]])
    parts = [json.load(open(os.path.join(nc_exports[n], "esri_accumulated_stats.json"))) for n in ("north", "south")]
    assert eas["NumTilesAsDouble"] == parts[0]["NumTiles"] + parts[1]["NumTiles"]
    merged = eas["ClassPixelStats"]["NumPixelsPerClass"]
    assert merged == [a + b for a, b in zip(*(p["ClassPixelStats"]["NumPixelsPerClass"] for p in parts))]
    whole = json.load(open(os.path.join(nc_exports["all"], "dataset.json")))["statistics"]
    for stat, ref in zip(emd["AllTilesStats"], whole):
        assert stat["Min"] > -1000 and stat["Min"] >= ref["min"] - 1e-3  # nodata (-99999) is not a value
        assert stat["Mean"] == pytest.approx(ref["mean"], rel=0.1)


# --- folders as ArcGIS Pro writes them ---

PRO_EMD = {  # as Pro 2.x/3.x writes it for Classified Tiles: placeholders, "no colour" as -1
    "Framework": "e.g. CNTK", "ModelConfiguration": "some description",
    "ModelType": "e.g. ObjectDetection or ImageClassification", "ModelFile": "e.g. .\\trained.model",
    "ImageHeight": "e.g. 256", "ImageWidth": "e.g. 256", "ExtractBands": "e.g. [0, 1, 2]",
    "Classes": [{"Value": 1, "Name": "field", "Color": [-1, -1, -1]}],
}


@pytest.fixture(scope="module")
def befl_chips(tmp_path_factory):
    return export_befl_fields(str(tmp_path_factory.mktemp("befl")), stride=48)


def _pro_folder(chips, dest, fmt="PNG", world_files=True, class_keys=("Value", "Name")):
    """Our chips rewritten exactly as Pro lays out a Classified Tiles export."""
    os.makedirs(os.path.join(dest, "images"))
    os.makedirs(os.path.join(dest, "labels"))
    ext = {"PNG": "png", "JPEG": "jpg", "GTiff": "tif"}[fmt]
    lines = []
    meta = json.load(open(os.path.join(chips, "dataset.json")))
    for i, chip in enumerate(meta["chips"]):
        name = f"{i + 1:09d}.{ext}"
        for sub in ("images", "labels"):
            target = os.path.join(dest, sub, name)
            opts = ["WORLDFILE=YES"] if world_files and fmt != "GTiff" else []
            label_fmt = "PNG" if fmt == "JPEG" and sub == "labels" else fmt  # labels are never lossy
            if sub == "labels" and label_fmt != fmt:
                target = target[:-3] + "png"
            gdal.Translate(target, os.path.join(chips, sub, chip["id"] + ".tif"), format=label_fmt, creationOptions=opts)
            if not world_files:
                for extra in (target + ".aux.xml",):
                    if os.path.exists(extra):
                        os.remove(extra)
        label_name = name if fmt != "JPEG" else name[:-3] + "png"
        lines.append(f"images\\{name}  labels\\{label_name} \r\n")
    with open(os.path.join(dest, "map.txt"), "w", newline="") as f:
        f.writelines(lines)
    emd = json.loads(json.dumps(PRO_EMD))
    if class_keys != ("Value", "Name"):
        emd["Classes"] = [{class_keys[0]: 1, class_keys[1]: "field", "Color": [-1, -1, -1]}]
    json.dump(emd, open(os.path.join(dest, "esri_model_definition.emd"), "w"), indent=2)
    json.dump({"Version": 1, "NumBands": 3, "TileSizeX": 64, "TileSizeY": 64, "NumClasses": 1, "NumTiles": len(lines),
               "OutputFeatures": False, "MetaDataMode": "Classified_Tiles",
               "Classes": [{"ClassValue": 1, "ClassName": "field"}],
               "ClassPixelStats": {"NumClasses": 1, "NumImagesTotal": len(lines), "NumImagesPerClass": [len(lines)],
                                   "NumPixelsPerClass": [1000]}},
              open(os.path.join(dest, "esri_accumulated_stats.json"), "w"), indent=2)
    return dest


@pytest.mark.parametrize("fmt, world_files, keys", [
    ("PNG", True, ("Value", "Name")),
    ("GTiff", True, ("ClassValue", "ClassName")),
    ("PNG", False, ("Value", "Name")),
])
def test_train_unet_reads_a_pro_folder(befl_chips, tmp_path, fmt, world_files, keys):
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    folder = _pro_folder(befl_chips, str(tmp_path / "pro"), fmt, world_files, keys)
    logs = []
    result = train(TrainConfig(chips=folder, output_model=str(tmp_path / "m.pt"), backbone="resnet18", pretrained=False,
                               epochs=1, batch_size=4, learning_rate=1e-3, validation_percent=15), log=logs.append)
    meta = read_model_file(result.model_path)["metadata"]
    field = next(c for c in meta["classes"] if c["value"] == 1)
    assert field["name"] == "field" and field["color"] == default_color(1)  # a real colour, not Pro's -1
    assert all(0 <= v <= 255 for c in meta["classes"] for v in c["color"])
    assert result.chips_val > 0 and result.chips_train > result.chips_val
    if world_files:
        assert meta["pixel_size"] == [10.0, 10.0]
    else:
        assert any("no georeferencing" in m for m in logs)


def test_non_square_pro_chips_get_a_clear_message(befl_chips, tmp_path):
    from unet_segmentation.unet_plugin.core.chips import load_chip_dataset

    folder = _pro_folder(befl_chips, str(tmp_path / "pro"), "GTiff")
    for sub in ("images", "labels"):
        for name in os.listdir(os.path.join(folder, sub)):
            path = os.path.join(folder, sub, name)
            gdal.Translate(path + ".tmp.tif", path, srcWin=[0, 0, 64, 32])
            os.replace(path + ".tmp.tif", path)
    with pytest.raises(UserInputError) as err:
        load_chip_dataset(folder)
    assert err.value.parameter == "CHIPS" and "64×32" in err.value.message and "square" in err.value.message
