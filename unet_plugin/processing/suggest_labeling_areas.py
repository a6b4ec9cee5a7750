"""Processing glue for Suggest Areas to Label (declared in :mod:`..params`, run by :mod:`..run`): styles the
loaded windows by rank."""

from __future__ import annotations

import os

from .. import params
from .base import UnetAlgorithm
from .classify_raster import ClassStyle


class SuggestLabelingAreas(UnetAlgorithm):
    spec = params.SUGGEST

    def postprocess(self, outputs, context):
        path = outputs.get("OUTPUT")
        if path and context.willLoadLayerOnCompletion(path):
            details = context.layerToLoadOnCompletionDetails(path)
            details.setPostProcessor(ClassStyle.create(os.path.splitext(path.split("|")[0])[0] + ".qml"))
