"""Processing glue for Classify Raster (declared in :mod:`..params`, run by :mod:`..run`): styles the loaded layers."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingLayerPostProcessorInterface

from .. import params
from ..core.outputs import style_path
from .base import UnetAlgorithm


class ClassStyle(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded class raster or class polygons from the ``.qml`` written beside them."""

    # QGIS does not keep the post-processor alive; we do, for the latest runs only, so a long
    # batch does not pile them up (each is used right after its own run)
    instances = []
    KEEP = 32

    def __init__(self, qml: str):
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer, context, feedback):
        if os.path.exists(self.qml):
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml: str):
        cls.instances = cls.instances[-(cls.KEEP - 1):] + [cls(qml)]
        return cls.instances[-1]


def style_loaded(outputs: dict, context, keys) -> None:
    """Style the outputs ``keys`` that QGIS loads from the ``.qml`` written beside each file."""
    for path in (outputs.get(k) for k in keys):
        if path and context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.setPostProcessor(ClassStyle.create(style_path(path)))


class ClassifyRaster(UnetAlgorithm):
    spec = params.CLASSIFY

    def postprocess(self, outputs, context):
        style_loaded(outputs, context, ("OUTPUT", "OUTPUT_POLYGONS"))
