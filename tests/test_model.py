"""The bundled U-Net: encoders, band counts, sizes, weights, model files, ONNX."""

import os
import pickle

import numpy as np
import pytest
import torch
import torchvision

from unet_segmentation.unet_plugin.ml.model.encoders import ENCODERS, EncoderWeightsError, ResNetEncoder, adapt_first_conv, get_spec
from unet_segmentation.unet_plugin.ml.model.modelfile import MODEL_FORMAT as FORMAT_NAME, ModelFileError, load_model, read_model_file, save_model
from unet_segmentation.unet_plugin.ml.model.unet import UNet

META = {"backbone": "resnet18", "in_channels": 4, "bands": [{"index": i, "name": f"b{i}"} for i in range(1, 5)],
        "classes": [{"value": v, "name": n, "color": [v * 20, 0, 0]} for v, n in ((0, "background"), (1, "water"), (2, "forest"))],
        "normalization": {"mean": [0.0] * 4, "std": [1.0] * 4}, "chip_size": 64, "data_type": "Float32"}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_gives_full_resolution_logits(name):
    torch.manual_seed(0)
    model = UNet(name, in_channels=3, num_classes=5).eval()
    feats = model.encoder(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == list(model.encoder.out_channels)
    assert [f.shape[-1] for f in feats] == [64, 32, 16, 8, 4, 2]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5, 64, 64)


@pytest.mark.parametrize("bands", [1, 3, 4, 13])
def test_band_counts(bands):
    model = UNet("resnet18", in_channels=bands, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, bands, 64, 64)).shape == (1, 3, 64, 64)


@pytest.mark.parametrize("h,w", [(45, 77), (33, 33), (100, 64), (7, 9)])
def test_odd_input_sizes_are_padded_and_cropped(h, w):
    model = UNet("resnet18", 3, 2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, h, w)).shape == (1, 2, h, w)


def test_unknown_backbone_lists_valid_ones():
    with pytest.raises(ValueError, match="resnet34"):
        get_spec("vgg16")


def test_first_conv_rule():
    w = torch.randn(64, 3, 7, 7)
    one = adapt_first_conv(w, 1)
    assert one.shape == (64, 1, 7, 7) and torch.allclose(one[:, 0], w.sum(1))
    for c in (4, 6, 13):
        a = adapt_first_conv(w, c)
        assert a.shape == (64, c, 7, 7)
        for band in range(c):  # R, G, B, R, G, … scaled by 3/C
            assert torch.allclose(a[:, band], w[:, band % 3] * 3 / c)
    # for whole repeats of RGB, a pixel of equal values in every band responds as in RGB
    assert torch.allclose(adapt_first_conv(w, 6).sum(1), w.sum(1), atol=1e-5)
    assert torch.equal(adapt_first_conv(w, 3), w)


def test_pretrained_weights_from_local_file(tmp_path):
    rgb = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(rgb.state_dict(), path)
    from unet_segmentation.unet_plugin.ml.model.encoders import load_weights_file

    enc = ResNetEncoder("resnet18", in_channels=4)
    enc.load_pretrained(load_weights_file(str(path)))
    assert torch.allclose(enc.net.layer1[0].conv1.weight, rgb.layer1[0].conv1.weight)
    assert torch.allclose(enc.net.conv1.weight, adapt_first_conv(rgb.conv1.weight, 4))


def test_bad_weights_file_is_explained(tmp_path):
    from unet_segmentation.unet_plugin.ml.model.encoders import load_weights_file

    path = tmp_path / "x.pth"
    torch.save({"foo": torch.zeros(1)}, path)
    with pytest.raises(EncoderWeightsError, match="not a ResNet"):
        load_weights_file(str(path))


def test_download_failure_says_how_to_fix(monkeypatch):
    from unet_segmentation.unet_plugin.ml.model import encoders

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(EncoderWeightsError, match="ENCODER_WEIGHTS"):
        encoders.imagenet_state_dict("resnet18")


def test_a_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = UNet("resnet18", 4, 3)
    x = torch.randn(4, 4, 64, 64)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = UNet("resnet18", 4, 3).eval()
    path = str(tmp_path / "m.pt")
    save_model(path, model, META)
    loaded, meta = load_model(path)
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert meta["classes"][1]["name"] == "water" and meta["architecture"] == "unet"
    assert "torch" in meta["versions"]
    assert not [f for f in os.listdir(tmp_path) if f != "m.pt"]  # no temporary file left


def _refused(path, match):
    with pytest.raises(ModelFileError, match=match):
        read_model_file(str(path))


def test_refuses_wrong_format(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"format": "something-else", "state_dict": {}}, p)
    _refused(p, "not a U-Net model file")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), p)
    _refused(p, "not a U-Net model file")
    p.write_text("hello")
    _refused(p, "not a U-Net model file or is damaged")


def test_refuses_newer_version(tmp_path):
    p = tmp_path / "new.pt"
    torch.save({"format": FORMAT_NAME, "format_version": 99, "metadata": META, "state_dict": {}}, p)
    _refused(p, "newer")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch " + _Evil.marker,))


def test_refuses_malicious_pickle(tmp_path):
    marker = tmp_path / "pwned"
    _Evil.marker = str(marker)
    p = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_NAME, "format_version": 1, "metadata": META, "state_dict": {}, "x": _Evil()}, p)
    _refused(p, "would run code")
    assert not marker.exists()
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(_Evil(), f)
    _refused(tmp_path / "evil.pkl", "refused|not a U-Net")
    assert not marker.exists()


def test_refuses_truncated_file(tmp_path):
    model = UNet("resnet18", 4, 3)
    p = tmp_path / "m.pt"
    save_model(str(p), model, META)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _refused(p, "damaged")


def test_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from unet_segmentation.unet_plugin.ml.model.onnx_export import export_onnx

    torch.manual_seed(2)
    model = UNet("resnet18", 4, 3).eval()
    meta = dict(META, normalization={"mean": [10.0, 20.0, 30.0, 40.0], "std": [2.0, 3.0, 4.0, 5.0]}, pixel_size=[0.5, 0.5])
    path = str(tmp_path / "m.pt")
    save_model(path, model, meta)
    export_onnx(path, str(tmp_path / "m.onnx"))
    pixels = np.random.default_rng(0).uniform(0, 80, (1, 4, 64, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    onnx_prob = sess.run(None, {"input": pixels / 255.0})[0]
    mean = torch.tensor(meta["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(meta["normalization"]["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        ref = torch.softmax(model((torch.from_numpy(pixels) - mean) / std), 1).numpy()
    assert np.abs(onnx_prob - ref).max() < 1e-3


@pytest.mark.parametrize("wkt_of, pixel, cm", [
    ("EPSG:32631", 10.0, 1000.0),  # metres
    ("EPSG:4326", 0.0001, 1113.2),  # degrees: ~11 m per 0.0001° of latitude
    ("EPSG:2264", 2.0, 60.96),  # NC State Plane in US survey feet
])
def test_deepness_resolution_is_in_centimetres_whatever_the_crs(wkt_of, pixel, cm):
    from osgeo import osr

    from unet_segmentation.unet_plugin.ml.model.onnx_export import resolution_cm

    srs = osr.SpatialReference()
    srs.SetFromUserInput(wkt_of)
    assert resolution_cm({"crs": srs.ExportToWkt(), "pixel_size": [pixel, pixel]}) == pytest.approx(cm, rel=0.002)


def test_offline_pretrained_fails_before_the_data_are_read(monkeypatch, tmp_path):
    """PRETRAINED without a cached copy is checked first, not after minutes of loading chips."""
    from unet_segmentation.unet_plugin.core.errors import UserInputError
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    logs = []
    with pytest.raises(UserInputError) as err:
        train(TrainConfig(chips=str(tmp_path / "no-such-folder"), output_model=str(tmp_path / "m.pt"),
                          backbone="resnet18", pretrained=True), log=logs.append)
    assert err.value.parameter == "PRETRAINED" and "ENCODER_WEIGHTS" in err.value.message
    assert any("not in the cache" in m for m in logs)


def _timm_style_file(path, arch, bands, wrap=True):
    """A ResNet weights file as timm / torchgeo publish them (e.g. SSL4EO Sentinel-2, 13 bands)."""
    import torchvision

    torch.manual_seed(bands)
    net = getattr(torchvision.models, arch)(weights=None)
    net.conv1 = torch.nn.Conv2d(bands, 64, 7, 2, 3, bias=False)
    state = {"model." + k: v for k, v in net.state_dict().items()}  # with the classifier, under a prefix
    torch.save({"state_dict": state} if wrap else net.state_dict(), path)
    return net.state_dict()


@pytest.mark.parametrize("bands", [3, 13])
def test_remote_sensing_weights_with_their_own_band_count_load_unchanged(tmp_path, bands):
    from unet_segmentation.unet_plugin.ml.model.encoders import load_weights_file

    path = tmp_path / "w.pth"
    ref = _timm_style_file(path, "resnet18", bands)
    enc = ResNetEncoder("resnet18", bands)
    logs = []
    enc.load_pretrained(load_weights_file(str(path)), logs.append)
    assert torch.equal(enc.net.conv1.weight, ref["conv1.weight"])  # not adapted: the bands match
    assert torch.equal(enc.net.layer4[1].conv2.weight, ref["layer4.1.conv2.weight"])
    assert any(f"expect {bands} band" in m and "as it is" in m for m in logs)


def test_rgb_weights_are_adapted_and_other_band_counts_refused(tmp_path):
    from unet_segmentation.unet_plugin.ml.model.encoders import load_weights_file

    rgb = tmp_path / "rgb.pth"
    ref = _timm_style_file(rgb, "resnet18", 3, wrap=False)
    enc = ResNetEncoder("resnet18", 6)
    enc.load_pretrained(load_weights_file(str(rgb)))
    assert torch.allclose(enc.net.conv1.weight, adapt_first_conv(ref["conv1.weight"], 6))
    s2 = tmp_path / "s2.pth"
    _timm_style_file(s2, "resnet18", 13)
    with pytest.raises(EncoderWeightsError, match="expect 13 bands, the chips have 6"):
        ResNetEncoder("resnet18", 6).load_pretrained(load_weights_file(str(s2)))


def test_weights_of_another_architecture_are_named(tmp_path):
    from unet_segmentation.unet_plugin.ml.model.encoders import load_weights_file

    path = tmp_path / "r50.pth"
    _timm_style_file(path, "resnet50", 3)
    with pytest.raises(EncoderWeightsError, match="for resnet50, not for the backbone resnet18"):
        ResNetEncoder("resnet18", 3).load_pretrained(load_weights_file(str(path)))


def test_models_written_before_the_input_skip_still_load_and_predict_the_same(tmp_path):
    """0.3 models (decoder without the full-resolution image, no "input_skip" in the file) load as
    they were trained; new ones record that their last block sees the image."""
    torch.manual_seed(2)
    old = UNet("resnet18", 4, 3, input_skip=False).eval()
    path = str(tmp_path / "old.pt")
    save_model(path, old, META)
    payload = torch.load(path, weights_only=True)
    del payload["metadata"]["input_skip"]  # as 0.3.0 wrote it
    torch.save(payload, path)
    loaded, meta = load_model(path)
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(old(x), loaded(x))
    assert not loaded.input_skip
    new = UNet("resnet18", 4, 3).eval()
    assert new.blocks[-1].conv1[0].in_channels == 32 + 4  # the previous block's 32 channels + the 4 bands
    save_model(str(tmp_path / "new.pt"), new, META)
    assert load_model(str(tmp_path / "new.pt"))[1]["input_skip"] is True
