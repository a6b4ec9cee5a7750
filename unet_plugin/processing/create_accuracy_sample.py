"""Processing glue for Create Accuracy Sample (declared in :mod:`..params`, run by :mod:`..run`; no torch needed):
styles the loaded points by map class, with a drop-down of class names on the reference field."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm
from .classify_raster import style_loaded


class CreateAccuracySample(UnetAlgorithm):
    spec = params.SAMPLE

    def postprocess(self, outputs, context):
        style_loaded(outputs, context, ("OUTPUT",))
