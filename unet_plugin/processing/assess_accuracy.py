"""Processing glue for Assess Accuracy (declared in :mod:`..params`, run by :mod:`..run`; no torch needed)."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm


class AssessAccuracy(UnetAlgorithm):
    spec = params.ASSESS
