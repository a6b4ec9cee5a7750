"""Processing glue for Train U-Net (declared in :mod:`..params`, run by :mod:`..run`)."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm

# Must match ml.encoders.ENCODERS (a test checks); declared without torch so listing needs none.
BACKBONES = list(params.BACKBONES)
LOSSES = list(params.LOSSES)
PRECISIONS = list(params.PRECISIONS)


class TrainUnet(UnetAlgorithm):
    spec = params.TRAIN
