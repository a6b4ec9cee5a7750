"""What training steps see: random windows cut from the training chips' mosaic, rare classes drawn more often."""

import numpy as np
import pytest
import torch
from osgeo import gdal

from conftest import NC_IMAGE, NC_STRATA
from unet_segmentation.unet_plugin.core.chips import load_chip_dataset, spatial_split
from unet_segmentation.unet_plugin.ml.train import sampling
from unet_segmentation.unet_plugin.ml.train.data import ChipTensors
from unet_segmentation.unet_plugin.ml.train.data import classes_and_lut as _classes_and_lut


def _sampler(chips, percent=15, augment=True):
    data = load_chip_dataset(chips)
    classes, lut = _classes_and_lut(data)
    mean = np.array([s["mean"] for s in data.statistics])
    std = np.array([s["std"] for s in data.statistics])
    train_idx, val_idx, overlaps = spatial_split(data.bounds, percent, 42)
    tensors = ChipTensors(data, train_idx, lut, mean, std, overlaps)
    return data, lut, mean, std, val_idx, sampling.Sampler(tensors, len(classes), augment)


def _raster_offset(data, tensors_bounds):
    """Row and column of the mosaic's top-left pixel in the NC raster."""
    gt = gdal.Open(NC_IMAGE).GetGeoTransform()
    xmin = min(b[0] for b in tensors_bounds)
    ymax = max(b[3] for b in tensors_bounds)
    return round((gt[3] - ymax) / -gt[5]), round((xmin - gt[0]) / gt[1])


def test_mosaic_is_the_raster_with_validation_areas_unlabelled(strata_chips):
    """The mosaic the windows are cut from holds the raster's pixels where they are (normalised), the
    strata labels there, and label 255 inside every validation chip: no window can bring a
    validation label into the loss."""
    data, lut, mean, std, val_idx, smp = _sampler(strata_chips)
    img, lab, rows, cols = smp.mosaic
    r0, c0 = _raster_offset(data, [data.bounds[i] for i in smp.chips.indices])
    h, w = lab.shape
    raster = gdal.Open(NC_IMAGE).ReadAsArray(c0, r0, w, h)
    strata = gdal.Open(NC_STRATA).ReadAsArray(c0, r0, w, h)
    valid = (raster != -99999).all(0)
    expect = ((raster - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    seen = lab.numpy() != 255
    assert seen.mean() > 0.5
    np.testing.assert_allclose(img.numpy()[:, valid & seen], expect[:, valid & seen], rtol=1e-5, atol=1e-5)
    strata = np.where((strata < 0) | (strata > 254), 255, strata).astype(np.int64)  # its nodata: never labelled
    assert np.array_equal(lab.numpy()[seen], lut[strata][seen])
    # validation chips: every pixel centre inside one is 255
    gt = gdal.Open(NC_IMAGE).GetGeoTransform()
    inside = 0
    for i in val_idx:
        x0, y0, x1, y1 = data.bounds[i]
        c_lo, c_hi = round((x0 - gt[0]) / gt[1]) - c0, round((x1 - gt[0]) / gt[1]) - c0
        r_lo, r_hi = round((gt[3] - y1) / -gt[5]) - r0, round((gt[3] - y0) / -gt[5]) - r0
        block = lab.numpy()[max(r_lo, 0):max(r_hi, 0), max(c_lo, 0):max(c_hi, 0)]
        assert np.all(block == 255), f"validation chip {i}: labels in the training mosaic"
        inside += block.size
    assert inside > 0


def test_windows_are_cut_from_the_mosaic_at_random_shifts(strata_chips, monkeypatch):
    """At scale 1 a window is the mosaic at the place ``cut`` says, within half a chip of its chip;
    the shifts differ from draw to draw. Scaled windows keep only labels of their area."""
    data, lut, mean, std, val_idx, smp = _sampler(strata_chips)
    img, lab, rows, cols = smp.mosaic
    s = data.chip_size
    monkeypatch.setattr(sampling, "SCALES", (1.0, 1.0))
    gen = torch.Generator().manual_seed(3)
    positions = list(range(min(16, len(smp.chips))))
    state = gen.get_state()
    x, y = smp._windows(positions, gen)
    gen.set_state(state)
    u = torch.rand(len(positions), 3, generator=gen).numpy()
    shifts = set()
    for j, p in enumerate(positions):
        r, c, side = smp.cut(p, u[j])
        assert side == s and abs(r - rows[p]) <= s // 2 + 1 and abs(c - cols[p]) <= s // 2 + 1
        assert torch.equal(x[j], img[:, r:r + s, c:c + s]) and torch.equal(y[j], lab[r:r + s, c:c + s])
        shifts.add((r - int(rows[p]), c - int(cols[p])))
    assert len(shifts) > len(positions) // 2
    monkeypatch.setattr(sampling, "SCALES", (0.8, 1.25))
    x, y = smp._windows(positions, gen)
    assert x.shape[-2:] == (s, s) and y.shape[-2:] == (s, s)
    assert set(torch.unique(y).tolist()) <= set(torch.unique(lab).tolist())


def test_augmented_batches_keep_nodata_at_zero_and_jitter_the_rest(strata_chips):
    data, lut, mean, std, val_idx, smp = _sampler(strata_chips)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 6, 16, 16)
    x[:, :, :4] = 0.0  # no imagery in the top rows
    j = sampling.colour_jitter(x, None, gen)
    assert torch.all(j[:, :, :4] == 0) and not torch.equal(j[:, :, 4:], x[:, :, 4:])
    ratio = (j[:, :, 4:] - x[:, :, 4:]).abs().max()
    assert ratio < sampling.GAIN * x.abs().max() + sampling.OFFSET + 1e-5


def test_rare_classes_are_drawn_more_often():
    """A class on 2 % of the chips: its chips come sqrt(0.3 / 0.02) ≈ 3.9× as often; an epoch has as
    many draws as chips; without rare classes an epoch is a shuffle of every chip."""
    presence = np.zeros((100, 2), dtype=bool)
    presence[:, 0] = True
    presence[[10, 60], 1] = True
    per_chip, per_class = sampling.repeat_factors(presence)
    assert per_class[0] == 1.0 and per_class[1] == pytest.approx(np.sqrt(0.3 / 0.02))

    class Fake:
        def __init__(self, p):
            self.p, self.data = p, type("D", (), {"chip_size": 64})()

        def presence(self, k):
            return self.p

        def __len__(self):
            return len(self.p)

    smp = sampling.Sampler(Fake(presence), 2, augment=False)
    gen = torch.Generator().manual_seed(0)
    counts = np.zeros(100)
    for _ in range(400):
        order = smp.epoch(gen)
        assert len(order) == 100
        np.add.at(counts, order, 1)
    ratio = counts[[10, 60]].mean() / np.delete(counts, [10, 60]).mean()
    assert ratio == pytest.approx(np.sqrt(0.3 / 0.02), rel=0.1)
    common = sampling.Sampler(Fake(np.ones((50, 2), dtype=bool)), 2, augment=False)
    assert sorted(common.epoch(gen)) == list(range(50))


def test_background_weight_only_for_sample_polygons():
    """Several classes on little of the area, UNLABELED=background, no MASK: background counts like one
    average class. Footprints of one class, a MASK, a label raster, UNLABELED=ignore or more
    labelled land: trained as they are."""
    from types import SimpleNamespace

    from unet_segmentation.unet_plugin.ml.train.losses import background_weight

    classes = [{"value": v} for v in range(5)]
    counts = np.array([98500, 300, 600, 300, 300])
    chips = SimpleNamespace(label_source="polygons", unlabeled="background", masked=False)
    assert background_weight(chips, classes, counts) == pytest.approx(375 / 98500)
    for other in (dict(masked=True), dict(label_source="raster"), dict(unlabeled="ignore"), dict(label_source="")):
        assert background_weight(SimpleNamespace(**{**vars(chips), **other}), classes, counts) is None
    assert background_weight(chips, classes[:2], counts[:2]) is None  # buildings and background
    assert background_weight(chips, classes, np.array([8000, 300, 600, 300, 800])) is None  # 80 % background
    assert background_weight(chips, classes[1:], counts[1:]) is None  # no background class


def _map_shares(tmp_path, chips, name):
    from unet_segmentation.unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_segmentation.unet_plugin.ml.train import TrainConfig, train

    model = str(tmp_path / f"{name}.pt")
    logs = []
    res = train(TrainConfig(chips=chips, output_model=model, backbone="resnet18", pretrained=False, epochs=4,
                            learning_rate=2e-3, seed=1), log=logs.append)
    out = str(tmp_path / f"{name}.tif")
    classify(ClassifyConfig(input=NC_IMAGE, model=model, output=out, precision="full"), log=lambda m: None)
    mapped = gdal.Open(out).ReadAsArray()
    valid = mapped != 255
    return res, logs, mapped, valid


def test_every_labelled_class_shows_up_on_sample_polygons(tmp_path, monkeypatch):
    """The NC polygons exported with the defaults (UNLABELED=background, no MASK): 98.5 % of the labels
    are background. Trained as they are, a short training maps background nearly everywhere; with
    background counted like one class, the classes cover the map where strata.tif has them."""
    from test_export import _polygons_gpkg

    from conftest import NC_POLYGONS
    from unet_segmentation.unet_plugin.core.chips import ExportConfig, export_chips
    from unet_segmentation.unet_plugin.ml.train import loop as train_loop
    from unet_segmentation.unet_plugin.ml.train import run as train_mod

    labels, classes = _polygons_gpkg(tmp_path, NC_POLYGONS, "label")
    chips = str(tmp_path / "chips")
    export_chips(ExportConfig(input=NC_IMAGE, output=chips, labels=labels, classes=classes, chip_size=64, stride=32))
    res, logs, mapped, valid = _map_shares(tmp_path, chips, "weighted")
    assert any("sample polygons" in m for m in logs) and 0 < res.background_weight < 0.01
    names = {c["value"]: c["name"] for c in res.classes}
    shares = {names[v]: float(np.mean(mapped[valid] == v)) for v in names}
    assert shares["background"] < 0.5, shares
    assert sum(s >= 0.01 for n, s in shares.items() if n != "background") >= 4, shares
    strata = gdal.Open(NC_STRATA).ReadAsArray()
    code = {n: v for v, n in names.items()}
    for strata_value, name in ((1, "developed"), (3, "herbaceous"), (5, "forest")):
        where = (strata == strata_value) & valid
        assert np.mean(mapped[where] == code[name]) > 0.3, (name, shares)

    monkeypatch.setattr(train_mod, "background_weight", lambda *a: None)
    monkeypatch.setattr(train_loop, "background_weight", lambda *a: None)  # as before: labels taken as they are
    _, logs, mapped, valid = _map_shares(tmp_path, chips, "plain")
    assert np.mean(mapped[valid] == 0) > 0.8  # the blank map the issue reported


def test_windows_stay_on_sparse_chips(tmp_path):
    """Belgian fields: chips only in 16 small labelled windows of a large mosaic. A random shift that
    would leave most of a window without imagery is not taken (the chip itself is), so steps do not
    train on empty pixels."""
    from conftest import export_befl_fields

    chips = export_befl_fields(str(tmp_path / "befl"), stride=32)
    data, lut, mean, std, val_idx, smp = _sampler(chips, percent=10)
    img, lab = smp.mosaic[:2]
    assert (lab != 255).float().mean() < 0.2  # mostly beyond the chips
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(400, 3, generator=gen).numpy()
    a, shifted = smp.covered, 0
    for j in range(400):
        p = j % len(smp.chips)
        r, c, side = smp.cut(p, u[j])
        inside = a[r + side, c + side] - a[r, c + side] - a[r + side, c] + a[r, c]
        assert inside >= sampling.MIN_COVERED * side * side
        shifted += (r, c) != (int(smp.mosaic[2][p]), int(smp.mosaic[3][p]))
    assert shifted > 100  # still shifted where the chips reach
