"""Processing glue for Train U-Net (declared in :mod:`..params`, run by :mod:`..run`)."""

from __future__ import annotations

from .. import params
from .base import UnetAlgorithm


class TrainUnet(UnetAlgorithm):
    spec = params.TRAIN
