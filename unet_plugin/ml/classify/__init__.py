"""Classify Raster: a raster and a model file in, a class map (and confidence, probabilities, polygons) out."""

from .config import ClassifyConfig, ClassifyResult
from .run import classify

__all__ = ["ClassifyConfig", "ClassifyResult", "classify"]
