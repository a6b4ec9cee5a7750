"""Processing glue for Create Accuracy Sample (declared in :mod:`..params`, run by :mod:`..run`; no torch needed):
styles the loaded points by map class, with a drop-down of class names on the reference field."""

from __future__ import annotations

import os

from .. import params
from .base import UnetAlgorithm
from .classify_raster import ClassStyle


class CreateAccuracySample(UnetAlgorithm):
    spec = params.SAMPLE

    def postprocess(self, outputs, context):
        path = outputs.get("OUTPUT")
        if path and context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.setPostProcessor(ClassStyle.create(os.path.splitext(path.split("|")[0])[0] + ".qml"))
