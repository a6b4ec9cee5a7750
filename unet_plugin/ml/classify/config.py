"""Classify Raster's parameters and result, as plain values (docs/parameters.md)."""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_WIDTH = 2048  # columns per block by default: the strip buffers' width, whatever the raster's


@dataclass(frozen=True)
class ClassifyConfig:
    """Parameters of Classify Raster, as plain values (docs/parameters.md)."""

    input: str
    model: str
    output: str
    extent: tuple[float, float, float, float] | None = None
    tile_size: int = 0
    overlap: float = 25.0
    batch_size: int = 4
    tta: bool = False
    device: str = "auto"
    output_confidence: str | None = None
    output_probabilities: str | None = None
    min_area: int = 0  # pixels; regions of one class smaller than this are merged into their surroundings
    output_polygons: str | None = None
    precision: str = "auto"  # "auto": int8/bf16 where they draw the same map and run faster; "full": float32
    engine: str = "auto"  # CPU forward pass: "auto" (onnxruntime when installed), "onnxruntime", "torch"
    bands: list[int] | None = None  # the raster's bands in the model's order (None: by number, checked by name)
    block_width: int = 0  # columns per block (0: BLOCK_WIDTH); memory grows with it, not with the raster


@dataclass
class ClassifyResult:
    output: str
    confidence: str | None
    classes: list[dict]
    tiles_run: int
    tiles_skipped: int
    seconds: float
    class_shares: dict
    warnings: list[str]
    engine: str = "torch"
