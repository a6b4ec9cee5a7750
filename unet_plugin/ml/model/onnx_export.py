"""Export a trained model to ONNX with the metadata the Deepness QGIS plugin reads.

Deepness (PUTvision/qgis-plugin-deepness, ``processing/models/model_base.py``) reads each
metadata value with ``json.loads`` — so every value here is JSON, as its documentation for
model creators writes them (``json.dumps('Segmentor')``) — under the keys ``model_type``,
``class_names``, ``resolution`` (cm per pixel, converted by Deepness from metres to the layer's
units), ``tile_size``, ``tiles_overlap``, ``standardization_mean``/``_std``, ``seg_thresh`` and
``seg_small_segment``. It feeds raster values ÷ 255, standardises, zeroes every probability
below ``seg_thresh`` and takes the argmax.
"""

from __future__ import annotations

import json

import torch
from torch import nn

from .modelfile import load_model

# nodata values are compared after Deepness's ÷ 255 and our × 255: float32 rounding, relative
NODATA_RTOL = 1e-5
METRES_PER_DEGREE = 111_320.0  # one degree of latitude (the pixel's height), within 0.5 %


class _DeepnessGraph(nn.Module):
    """The U-Net wrapped for Deepness: pixel values ÷ 255 in, class probabilities out.

    The graph undoes the ÷ 255, standardises with the model's own band statistics, sets pixels
    where any band holds the training data's nodata value to 0 after standardisation (as
    training and Classify Raster do, so nodata does not disturb its neighbours), and ends in a
    softmax: any ONNX runtime gets the probabilities Classify Raster blends.
    """

    def __init__(self, model: nn.Module, mean, std, nodata):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        bands = [i for i, v in enumerate(nodata or []) if v is not None]
        self.nodata_bands = bands
        self.register_buffer("nodata", torch.tensor([float(nodata[i]) for i in bands], dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        raw = x * 255.0
        z = (raw - self.mean) / self.std
        if self.nodata_bands:
            sel = raw[:, self.nodata_bands]
            tol = NODATA_RTOL * torch.clamp(self.nodata.abs(), min=1.0)
            missing = ((sel - self.nodata).abs() <= tol).any(dim=1, keepdim=True)
            z = torch.where(missing, torch.zeros_like(z), z)
        return torch.softmax(self.model(z), dim=1)


def resolution_cm(meta: dict) -> float:
    """The training data's pixel size in centimetres, whatever the CRS's units (Deepness's ``resolution``)."""
    from osgeo import osr

    pixel = meta.get("pixel_size") or [1.0, 1.0]
    size = float(pixel[1] if len(pixel) > 1 else pixel[0])
    crs = osr.SpatialReference()
    if meta.get("crs") and crs.ImportFromWkt(meta["crs"]) == 0:
        if crs.IsGeographic():
            return size * METRES_PER_DEGREE * 100.0
        return size * crs.GetLinearUnits() * 100.0  # feet, US survey feet, ... → metres
    return size * 100.0


def deepness_metadata(meta: dict, overlap_percent: int) -> dict:
    """Deepness's metadata for a model: JSON values, its key names."""
    norm = meta["normalization"]
    return {
        "model_type": json.dumps("Segmentor"),
        "class_names": json.dumps({str(i): c["name"] for i, c in enumerate(meta["classes"])}),
        "resolution": json.dumps(round(resolution_cm(meta), 6)),
        "tile_size": json.dumps(int(meta["chip_size"])),
        "tiles_overlap": json.dumps(int(overlap_percent)),
        # the model's standardisation is inside the graph; Deepness's is the identity
        "standardization_mean": json.dumps([0.0] * len(norm["mean"])),
        "standardization_std": json.dumps([1.0] * len(norm["std"])),
        # 0: no threshold. Deepness zeroes probabilities below it *before* its argmax, so with 3 or
        # more classes any threshold turns uncertain pixels into the first class.
        "seg_thresh": json.dumps(0.0),
        "seg_small_segment": json.dumps(0),
    }


def export_onnx(model_path: str, onnx_path: str, overlap_percent: int = 25) -> dict:
    """Write ``onnx_path`` from a model file; return the metadata written into it.

    The graph's input is pixel values ÷ 255 (what Deepness feeds); the model's standardisation
    and nodata handling are inside the graph.
    """
    import onnx

    model, meta = load_model(model_path)
    size = int(meta["chip_size"])
    dummy = torch.zeros(1, int(meta["in_channels"]), size, size)
    graph = _DeepnessGraph(model, meta["normalization"]["mean"], meta["normalization"]["std"], meta.get("nodata")).eval()
    torch.onnx.export(graph, dummy, onnx_path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False)
    props = deepness_metadata(meta, overlap_percent)
    proto = onnx.load(onnx_path)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, onnx_path)
    return props
