"""Processing glue for Export Training Chips (declared in :mod:`..params`, run by :mod:`..run`)."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm


class ExportTrainingChips(UnetAlgorithm):
    spec = params.EXPORT
