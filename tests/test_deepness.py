"""Our ONNX file as the Deepness plugin (PUTvision/qgis-plugin-deepness 0.6.5) reads and runs it.

The parsing below follows Deepness's own code (``processing/models/model_base.py``): every
metadata value through ``json.loads`` under the key names it reads, class names sorted by
integer key and required to be consecutive from 0; its preprocessing (``preprocessing_utils``:
values ÷ 255, standardisation, NHWC → NCHW); its segmentation rule
(``map_processor_segmentation._process_tile``: probabilities under ``seg_thresh`` set to 0, then
the argmax).
"""

import json

import numpy as np
import pytest
from osgeo import gdal

from conftest import NC_IMAGE

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

DEEPNESS_KEYS = ("model_type", "class_names", "resolution", "tile_size", "tiles_overlap", "standardization_mean",
                 "standardization_std", "seg_thresh", "seg_small_segment")


def deepness_parse(path):
    """The metadata as Deepness's ModelBase gets it."""
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    parsed = {key: json.loads(meta[key]) for key in DEEPNESS_KEYS if key in meta}
    names = parsed["class_names"]
    names = [names] if isinstance(names, dict) else names
    sorted_by_key = [sorted(cn.items(), key=lambda kv: int(kv[0])) for cn in names]
    for output in sorted_by_key:
        assert [int(k) for k, _ in output] == list(range(len(output))), "Deepness: class names not consecutive"
    parsed["class_names"] = [[v for _, v in output] for output in sorted_by_key]
    return sess, parsed, meta


def deepness_tile(sess, parsed, tile_hwc):
    """One tile through Deepness's preprocessing, the model and its segmentation rule."""
    x = np.float32(tile_hwc[None] * 1.0 / 255.0)
    x = (x - np.array(parsed["standardization_mean"], np.float32)) / np.array(parsed["standardization_std"], np.float32)
    x = np.transpose(x, (0, 3, 1, 2)).astype(np.float32)
    result = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    result[result < parsed["seg_thresh"]] = 0.0
    return np.argmax(result, axis=1)[0]


@pytest.fixture(scope="module")
def onnx_model(tiny_model, tmp_path_factory):
    from unet_segmentation.unet_plugin.ml.model.onnx_export import export_onnx

    path = str(tmp_path_factory.mktemp("onnx") / "nc.onnx")
    export_onnx(tiny_model[0], path)
    return path


def test_deepness_reads_every_key_we_write(onnx_model, tiny_model):
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    _, parsed, raw = deepness_parse(onnx_model)
    assert set(raw) == set(DEEPNESS_KEYS)  # nothing written that Deepness does not read, nothing it reads missing
    meta = read_model_file(tiny_model[0])["metadata"]
    assert parsed["model_type"] == "Segmentor"
    assert parsed["class_names"] == [[c["name"] for c in meta["classes"]]]
    assert parsed["tile_size"] == meta["chip_size"] and parsed["tiles_overlap"] == 25
    assert parsed["resolution"] == pytest.approx(2850.0)  # 28.5 m pixels, in cm
    assert parsed["standardization_mean"] == [0.0] * 6 and parsed["standardization_std"] == [1.0] * 6
    assert parsed["seg_thresh"] == 0.0 and parsed["seg_small_segment"] == 0


def test_a_deepness_style_run_draws_our_map(onnx_model, tiny_model, tmp_path):
    """Same tiles (64 px, no overlap): Deepness's rule on our graph gives Classify Raster's classes,
    also beside nodata (the graph zeroes nodata as training did)."""
    from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify

    ours = str(tmp_path / "ours.tif")
    # float32 as Deepness runs the graph (PRECISION=auto may pick bf16 on CPUs that have it: ≥ 99 %, not bit for bit)
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=ours, tile_size=64, overlap=0, engine="torch",
                            precision="full"),
             log=lambda m: None)
    ours = gdal.Open(ours).ReadAsArray()
    sess, parsed, _ = deepness_parse(onnx_model)
    from unet_segmentation.unet_plugin.ml.model.modelfile import read_model_file

    values = np.array([c["value"] for c in read_model_file(tiny_model[0])["metadata"]["classes"]])
    image = gdal.Open(NC_IMAGE).ReadAsArray().astype(np.float32)  # raw values, nodata included, as QGIS hands them over
    h, w = image.shape[1:]
    agree = total = near_nodata = 0
    # our grid at overlap 0 is 0, 64, 128, ... and one last tile shifted back to the edge, blended with
    # its neighbour: compare the tiles that no other tile overlaps
    for r in range(0, h - 127, 64):
        for c in range(0, w - 127, 64):
            tile = image[:, r:r + 64, c:c + 64]
            valid = np.all(tile != -99999, axis=0)
            if not valid.any():
                continue
            theirs = values[deepness_tile(sess, parsed, np.transpose(tile, (1, 2, 0)))]
            mine = ours[r:r + 64, c:c + 64]
            agree += int((theirs[valid] == mine[valid]).sum())
            total += int(valid.sum())
            near_nodata += int((~valid).any())
    assert near_nodata >= 10 and total > 80000
    assert agree / total > 0.999
