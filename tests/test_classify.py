"""Classify Raster: accuracy on the real scene, seams, nodata, styling, extent, bad input, cancellation."""

import os

import numpy as np
import pytest
from osgeo import gdal

from conftest import BEFL_IMAGE, NC_IMAGE, NC_STRATA
from unet_segmentation.unet_plugin.core.errors import Canceled, UserInputError
from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify
from unet_segmentation.unet_plugin.ml.classify.tiles import blend_weights

QUIET = {"log": lambda m: None}


@pytest.fixture(scope="module")
def classified(tiny_model, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cls") / "classes.tif")
    conf = out.replace("classes", "confidence")
    result = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out, output_confidence=conf), **QUIET)
    return out, conf, result


def test_accuracy_well_above_chance(classified):
    out, _, _ = classified
    pred = gdal.Open(out).ReadAsArray()
    truth = gdal.Open(NC_STRATA).ReadAsArray()
    ok = (pred != 255) & (truth >= 1)
    accuracy = (pred[ok] == truth[ok]).mean()
    assert accuracy > 0.55, accuracy  # chance over 7 classes is 0.14; the majority class covers 0.47


def test_nodata_in_nodata_out(classified):
    out, conf, _ = classified
    image = gdal.Open(NC_IMAGE).ReadAsArray()
    invalid = (image == -99999).any(0)
    pred = gdal.Open(out).ReadAsArray()
    assert np.array_equal(pred == 255, invalid)
    c = gdal.Open(conf).ReadAsArray()
    assert np.all(c[invalid] == -1) and np.all((c[~invalid] > 0) & (c[~invalid] <= 1.0001))


def test_output_is_styled_and_compressed(classified, tiny_model):
    out, _, result = classified
    ds = gdal.Open(out)
    band = ds.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE" and band.GetBlockSize() == [256, 256]
    classes = result.classes
    table = band.GetColorTable()
    names = band.GetCategoryNames()
    for c in classes:
        assert table.GetColorEntry(c["value"])[:3] == tuple(c["color"])
        assert names[c["value"]] == c["name"]
    qml = open(os.path.splitext(out)[0] + ".qml", encoding="utf-8").read()
    assert 'type="paletted"' in qml and all(f'label="{c["name"]}"' in qml for c in classes)
    src = gdal.Open(NC_IMAGE)
    assert ds.GetGeoTransform() == src.GetGeoTransform() and ds.GetProjection() == src.GetProjection()


def test_no_seams_between_one_tile_and_many(tiny_model, tmp_path):
    one = str(tmp_path / "one.tif")
    many = str(tmp_path / "many.tif")
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=one, tile_size=512, overlap=0), **QUIET)
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=many, tile_size=128, overlap=50, batch_size=3), **QUIET)
    a, b = gdal.Open(one).ReadAsArray(), gdal.Open(many).ReadAsArray()
    assert np.array_equal(a == 255, b == 255)
    assert (a == b)[a != 255].mean() > 0.9


@pytest.mark.parametrize("overlap", [0, 25, 60])
def test_column_blocks_give_the_same_map(tiny_model, tmp_path, overlap):
    """Narrow column blocks (what bounds memory on wide rasters) change nothing in the result."""
    maps = []
    for block in (0, 96, 128):
        out, conf = str(tmp_path / f"b{block}.tif"), str(tmp_path / f"b{block}_conf.tif")
        classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out, output_confidence=conf, overlap=overlap,
                                block_width=block, engine="torch"), **QUIET)
        maps.append((gdal.Open(out).ReadAsArray(), gdal.Open(conf).ReadAsArray()))
    for cls, conf in maps[1:]:
        assert np.array_equal(cls, maps[0][0]) and np.allclose(conf, maps[0][1], atol=1e-5)
    assert len(np.unique(maps[0][0])) > 2


def test_blend_weights_fall_off_to_the_edges():
    w = blend_weights(64, 64)
    assert w[32, 32] == w.max() and w[0, 0] == w.min() > 0
    assert np.allclose(w, w[::-1, ::-1])


def test_extent(tiny_model, tmp_path, classified):
    gt = gdal.Open(NC_IMAGE).GetGeoTransform()
    x0, y1 = gt[0] + 100 * gt[1], gt[3] + 80 * gt[5]
    out = str(tmp_path / "part.tif")
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out,
                            extent=(x0, y1 - 150 * 28.5, x0 + 200 * 28.5, y1)), **QUIET)
    ds = gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize) == (200, 150)
    assert ds.GetGeoTransform()[0] == pytest.approx(x0) and ds.GetGeoTransform()[3] == pytest.approx(y1)
    full = gdal.Open(classified[0]).ReadAsArray()[80:230, 100:300]
    part = ds.ReadAsArray()
    assert (part == full).mean() > 0.85


def test_tta_averages_all_eight_views(tiny_model, tmp_path):
    import torch

    from unet_segmentation.unet_plugin.ml.model.modelfile import load_model
    from unet_segmentation.unet_plugin.ml.classify.tiles import tta_forward

    model, _ = load_model(tiny_model[0])
    x = torch.randn(1, 6, 64, 64)
    with torch.no_grad():
        p = tta_forward(model, x)
        # averaged over the whole dihedral group, the prediction turns with the input
        assert torch.allclose(tta_forward(model, x.flip(-1)), p.flip(-1), atol=1e-5)
        assert torch.allclose(tta_forward(model, torch.rot90(x, 1, (-2, -1))), torch.rot90(p, 1, (-2, -1)), atol=1e-5)
        assert torch.allclose(p.sum(1), torch.ones(1, 64, 64), atol=1e-5)
    out = str(tmp_path / "tta.tif")
    r = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out, tta=True, overlap=0,
                                extent=(631959.0, 219000.0, 634809.0, 222000.0)), **QUIET)
    found = set(np.unique(gdal.Open(out).ReadAsArray()).tolist()) - {255}
    assert r.tiles_run > 0 and found and found <= {c["value"] for c in r.classes}


@pytest.mark.parametrize("tta", [False, True])
def test_onnxruntime_and_pytorch_give_the_same_map(tiny_model, tmp_path, tta):
    pytest.importorskip("onnxruntime")
    maps = {}
    for engine in ("torch", "onnxruntime"):
        out, conf = str(tmp_path / f"{engine}.tif"), str(tmp_path / f"{engine}_conf.tif")
        r = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out, output_confidence=conf, tta=tta,
                                    engine=engine, precision="full", extent=None if not tta else (631959.0, 219000.0, 634809.0, 222000.0)), **QUIET)
        assert r.engine.startswith("onnxruntime" if engine == "onnxruntime" else "PyTorch")
        maps[engine] = gdal.Open(out).ReadAsArray(), gdal.Open(conf).ReadAsArray()
    (a, ca), (b, cb) = maps["torch"], maps["onnxruntime"]
    assert np.mean(a == b) > 0.998 and np.abs(ca - cb).max() < 1e-3


def test_auto_engine_uses_onnxruntime_on_the_cpu_when_installed(tiny_model, tmp_path):
    pytest.importorskip("onnxruntime")
    r = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "a.tif"), device="cpu"), **QUIET)
    assert r.engine.startswith("onnxruntime")
    assert sorted(os.listdir(tmp_path)) == ["a.qml", "a.tif", "a.tif.aux.xml"]


def test_onnx_graph_is_exported_once_per_model_file(tiny_model, tmp_path, monkeypatch):
    """The slow ONNX export runs once: later runs reuse the session (same process) or the cached graph."""
    pytest.importorskip("onnxruntime")
    from unet_segmentation.unet_plugin.ml.classify import onnx_cache as predict

    cache = tmp_path / "cache"
    monkeypatch.setenv("UNET_CACHE_DIR", str(cache))
    predict._SESSIONS.clear()  # graphs are keyed by the model's content: earlier tests ran this very model
    model = str(tmp_path / "m.pt")
    with open(tiny_model[0], "rb") as src, open(model, "wb") as dst:
        dst.write(src.read())

    def run(name):
        lines = []
        classify(ClassifyConfig(input=NC_IMAGE, model=model, output=str(tmp_path / f"{name}.tif"), engine="onnxruntime", precision="full"),
                 log=lines.append)
        prepared = [m for m in lines if m.startswith("Model prepared for onnxruntime")]
        assert len(prepared) == 1, lines
        return prepared[0], gdal.Open(str(tmp_path / f"{name}.tif")).ReadAsArray()

    small = (631959.0, 219000.0, 634809.0, 222000.0)  # a few tiles: not worth an export of its own

    def small_run(name):
        return classify(ClassifyConfig(input=NC_IMAGE, model=model, output=str(tmp_path / f"{name}.tif"), extent=small),
                        **QUIET).engine

    assert small_run("s1").startswith("PyTorch")
    first, a = run("a")
    assert small_run("s2").startswith("onnxruntime")  # the graph is ready now: no export to repay
    graphs = os.listdir(cache / "onnx")
    assert "(exported)" in first and len(graphs) == 1 and graphs[0].endswith(".onnx")
    second, b = run("b")
    assert "(kept in memory)" in second and np.array_equal(a, b)
    predict._SESSIONS.clear()  # as a new QGIS process would start
    third, c = run("c")
    assert "(cached graph)" in third and np.array_equal(a, c) and os.listdir(cache / "onnx") == graphs
    st = os.stat(model)
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same weights: the same graph
    fourth, d = run("d")
    assert "(kept in memory)" in fourth and np.array_equal(a, d) and os.listdir(cache / "onnx") == graphs

    from unet_segmentation.unet_plugin.ml.model.modelfile import build_model, read_model_file, save_model

    def replace_weights(scale):  # the model file replaced by other weights: export again
        payload = read_model_file(tiny_model[0])
        net = build_model(payload["metadata"])
        net.load_state_dict({k: (v * scale if k == "head.bias" else v) for k, v in payload["state_dict"].items()})
        save_model(model, net, payload["metadata"])

    replace_weights(0.5)
    fifth, _ = run("f")
    assert "(exported)" in fifth and len(os.listdir(cache / "onnx")) == 2
    # the cache keeps the most recently used graphs only
    monkeypatch.setattr(predict, "ONNX_CACHE_FILES", 1)
    replace_weights(0.25)
    run("e")
    assert len(os.listdir(cache / "onnx")) == 1


def test_onnx_without_a_writable_cache_exports_to_a_temporary_folder(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import tempfile

    from unet_segmentation.unet_plugin.ml.classify import onnx_cache as predict

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("UNET_CACHE_DIR", str(blocker))
    monkeypatch.setattr(predict, "_SESSIONS", predict.OrderedDict())

    def exports():
        return {f for f in os.listdir(tempfile.gettempdir()) if f.startswith("unet-onnx-")}

    before = exports()
    lines = []
    r = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "a.tif"), engine="onnxruntime"),
                 log=lines.append)
    assert r.engine.startswith("onnxruntime") and any("(exported)" in m for m in lines)
    assert exports() == before  # the temporary graph is removed once the session holds it
    assert blocker.read_text() == "x"


def _bad(config, param, match):
    with pytest.raises(UserInputError, match=match) as e:
        classify(config, **QUIET)
    assert e.value.parameter == param
    folder = os.path.dirname(config.output)
    assert not os.path.isdir(folder) or not [f for f in os.listdir(folder) if f.startswith(os.path.basename(config.output))]


def test_bad_inputs(tiny_model, tmp_path):
    model = tiny_model[0]
    out = str(tmp_path / "out" / "x.tif")
    os.makedirs(os.path.dirname(out))
    fake = tmp_path / "fake.pt"
    fake.write_text("not a model")
    _bad(ClassifyConfig(input=NC_IMAGE, model=str(fake), output=out), "MODEL", "not a U-Net model")
    _bad(ClassifyConfig(input=BEFL_IMAGE, model=model, output=out), "BANDS", "takes 6 bands")
    _bad(ClassifyConfig(input=NC_IMAGE, model=model, output=out, extent=(0, 0, 1, 1)), "EXTENT", "does not overlap")
    _bad(ClassifyConfig(input=NC_IMAGE, model=model, output=out, tile_size=100), "TILE_SIZE", "multiple of 32")
    import torch

    if not torch.cuda.is_available():
        _bad(ClassifyConfig(input=NC_IMAGE, model=model, output=out, device="cuda"), "DEVICE", "no CUDA")
    _bad(ClassifyConfig(input=NC_IMAGE, model=model, output="/proc/none/x.tif"), "OUTPUT", "cannot create")
    nocrs = str(tmp_path / "nocrs.tif")
    src = gdal.Open(NC_IMAGE)
    d = gdal.GetDriverByName("GTiff").Create(nocrs, 64, 64, 6, gdal.GDT_Float32)
    d.SetGeoTransform(src.GetGeoTransform())
    d = None
    _bad(ClassifyConfig(input=nocrs, model=model, output=out), "INPUT", "coordinate reference system")


def test_cancel_removes_partial_outputs(tiny_model, tmp_path):
    out = str(tmp_path / "c.tif")
    calls = []
    with pytest.raises(Canceled):
        classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=out, output_confidence=str(tmp_path / "k.tif")),
                 is_canceled=lambda: len(calls) > 3 or calls.append(1), **QUIET)
    assert os.listdir(tmp_path) == []


def test_scaled_input_gets_a_warning(tiny_model, tmp_path):
    scaled = str(tmp_path / "scaled.tif")
    gdal.Translate(scaled, NC_IMAGE, scaleParams=[[0, 255, 0, 25500]], outputType=gdal.GDT_Float32)
    warnings = []
    classify(ClassifyConfig(input=scaled, model=tiny_model[0], output=str(tmp_path / "o.tif"),
                            extent=(631959.0, 219000.0, 634809.0, 222000.0)), warn=warnings.append, **QUIET)
    assert any("far from the training data" in w for w in warnings)


def test_auto_precision_is_used_only_where_it_draws_the_same_map(tiny_model, tmp_path, monkeypatch):
    """PRECISION=auto: int8 (on this CPU) only when it agrees with float32 on >= 99 % of check pixels and
    is faster; the same raster and model give the same map every time."""
    pytest.importorskip("onnxruntime")
    from unet_segmentation.unet_plugin.ml.classify import precision as inference_precision

    monkeypatch.setenv("UNET_CACHE_DIR", str(tmp_path / "cache"))
    inference_precision._DECISIONS.clear()

    def run(name, precision, extent=None):
        lines = []
        classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / f"{name}.tif"), tile_size=64,
                                precision=precision, extent=extent), log=lines.append)
        return gdal.Open(str(tmp_path / f"{name}.tif")).ReadAsArray(), [m for m in lines if m.startswith("Precision")]

    full, full_log = run("full", "full")
    auto, auto_log = run("auto", "auto")
    assert full_log == ["Precision: float32 throughout (PRECISION=full)."]
    assert len(auto_log) == 1 and "agrees with float32 on" in auto_log[0]
    valid = full != 255
    assert (auto == full)[valid].mean() >= 0.99 - 0.005  # checked on held-out tiles, so near the 99 % asked
    inference_precision._DECISIONS.clear()  # a new QGIS session: the cached quantised graph, the same decision
    # even where this busy machine would now measure another winner: the decision was kept, not measured again
    monkeypatch.setattr(inference_precision, "_measure", lambda *a: pytest.fail("measured again"))
    again, again_log = run("again", "auto")
    assert np.array_equal(again, auto)
    assert len(again_log) == 1 and again_log[0].startswith(f"{auto_log[0]} (decided earlier on this machine; delete ")
    assert again_log[0].endswith("-decision.json to measure again)")
    monkeypatch.undo()
    monkeypatch.setenv("UNET_CACHE_DIR", str(tmp_path / "cache"))
    # a small job pays for no quantisation
    inference_precision._DECISIONS.clear()
    before = set(os.listdir(tmp_path / "cache" / "onnx"))
    monkeypatch.setenv("UNET_CACHE_DIR", str(tmp_path / "cache2"))
    _, small_log = run("small", "auto", extent=(631959.0, 219000.0, 634809.0, 222000.0))
    cache2 = tmp_path / "cache2" / "onnx"
    assert small_log == [] and not any(f.endswith("-int8.onnx") for f in (os.listdir(cache2) if cache2.exists() else []))
    assert before


def test_auto_precision_falls_back_to_float32_when_the_map_would_differ(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from unet_segmentation.unet_plugin.ml.classify import precision as inference_precision

    monkeypatch.setenv("UNET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(inference_precision, "CHECK_AGREEMENT", 1.01)  # nothing can agree that well
    inference_precision._DECISIONS.clear()
    lines = []
    r = classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "a.tif"), tile_size=64),
                 log=lines.append)
    assert any("Precision: float32 — no faster arithmetic" in m for m in lines) and "int8" not in r.engine
    classify(ClassifyConfig(input=NC_IMAGE, model=tiny_model[0], output=str(tmp_path / "f.tif"), tile_size=64,
                            precision="full"), **QUIET)
    assert np.array_equal(gdal.Open(str(tmp_path / "a.tif")).ReadAsArray(), gdal.Open(str(tmp_path / "f.tif")).ReadAsArray())
    inference_precision._DECISIONS.clear()


def test_auto_precision_agrees_on_a_befl_model(tmp_path, monkeypatch):
    """The Belgian fields (3 bands, Byte): a model trained here, auto against full on the whole scene."""
    pytest.importorskip("onnxruntime")
    from conftest import export_befl_fields
    from unet_segmentation.unet_plugin.ml.classify import precision as inference_precision
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    monkeypatch.setenv("UNET_CACHE_DIR", str(tmp_path / "cache"))
    inference_precision._DECISIONS.clear()
    chips = export_befl_fields(str(tmp_path / "befl"), stride=32)
    model = str(tmp_path / "befl.pt")
    train(TrainConfig(chips=chips, output_model=model, backbone="resnet18", pretrained=False, epochs=4, batch_size=8,
                      learning_rate=2e-3, validation_percent=15), **QUIET)
    maps, logs = {}, []
    for precision in ("full", "auto"):
        out = str(tmp_path / f"{precision}.tif")
        classify(ClassifyConfig(input=BEFL_IMAGE, model=model, output=out, tile_size=64, precision=precision), log=logs.append)
        maps[precision] = gdal.Open(out).ReadAsArray()
    decision = [m for m in logs if m.startswith("Precision:") and "agrees" in m]
    assert decision
    agreement = (maps["auto"] == maps["full"]).mean()
    assert agreement >= 0.985, (agreement, decision)
    inference_precision._DECISIONS.clear()


def test_without_onnxruntime_classification_runs_and_says_what_it_would_give(tiny_model, tmp_path):
    import subprocess
    import sys

    import conftest

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.modules['onnxruntime'] = None\n"
        "from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify\n"
        "lines = []\n"
        "r = classify(ClassifyConfig(input=sys.argv[2], model=sys.argv[3], output=sys.argv[4], tile_size=64), log=lines.append)\n"
        "print(r.engine); print([m for m in lines if m.startswith('Tip')])\n"
    )
    out = str(tmp_path / "c.tif")
    run = subprocess.run([sys.executable, "-c", code, conftest._LINKS, NC_IMAGE, tiny_model[0], out],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-2].startswith("PyTorch") and "int8" in lines[-1] and "pip install onnxruntime" in lines[-1]
    assert (gdal.Open(out).ReadAsArray() != 255).sum() > 100000
