"""Processing glue for Suggest Areas to Label (declared in :mod:`..params`, run by :mod:`..run`): styles the
loaded windows by rank."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm
from .classify_raster import style_loaded


class SuggestLabelingAreas(UnetAlgorithm):
    spec = params.SUGGEST

    def postprocess(self, outputs, context):
        style_loaded(outputs, context, ("OUTPUT",))
