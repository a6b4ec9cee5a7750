"""Export a trained model to ONNX with the metadata the Deepness QGIS plugin reads."""

from __future__ import annotations

import json

import torch
from torch import nn

from .modelfile import load_model


class _DeepnessGraph(nn.Module):
    """The U-Net wrapped for Deepness: it feeds pixel values ÷ 255 and wants probabilities.

    The graph undoes the ÷ 255, standardises with the model's own band statistics,
    and ends in a softmax, so any ONNX runtime gets the same map as the plugin.
    """

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return torch.softmax(self.model((x * 255.0 - self.mean) / self.std), dim=1)


def export_onnx(model_path: str, onnx_path: str, overlap_percent: int = 25) -> dict:
    """Write ``onnx_path`` from a model file; return the metadata written into it.

    The graph's input is pixel values ÷ 255 (what Deepness feeds); the model's
    standardisation is inside the graph, so Deepness's own is set to the identity.
    """
    import onnx

    model, meta = load_model(model_path)
    size = int(meta["chip_size"])
    dummy = torch.zeros(1, int(meta["in_channels"]), size, size)
    torch.onnx.export(
        _DeepnessGraph(model, meta["normalization"]["mean"], meta["normalization"]["std"]), dummy, onnx_path, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17, dynamo=False,
    )
    pixel = meta.get("pixel_size") or [1.0, 1.0]
    norm = meta["normalization"]
    props = {
        "model_type": "Segmentor",
        "class_names": json.dumps({str(i): c["name"] for i, c in enumerate(meta["classes"])}),
        "resolution": str(float(pixel[0]) * 100.0),  # Deepness wants cm/px
        "tile_size": str(size),
        "tile_overlap": str(overlap_percent),
        "standardization_mean": json.dumps([0.0] * len(norm["mean"])),
        "standardization_std": json.dumps([1.0] * len(norm["std"])),
        "seg_thresh": "0.5",
        "seg_small_segment": "0",
    }
    proto = onnx.load(onnx_path)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, onnx_path)
    return props
