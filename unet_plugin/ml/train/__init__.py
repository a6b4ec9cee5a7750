"""Train U-Net: a chip folder in, the best epoch's model file (and report, ONNX) out."""

from .config import TrainConfig, TrainResult
from .run import train

__all__ = ["TrainConfig", "TrainResult", "train"]
