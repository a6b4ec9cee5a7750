"""The Processing provider ``unet``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .assess_accuracy import AssessAccuracy
from .base import ICON, tr
from .classify_raster import ClassifyRaster
from .create_accuracy_sample import CreateAccuracySample
from .export_chips import ExportTrainingChips
from .suggest_labeling_areas import SuggestLabelingAreas
from .train_unet import TrainUnet


class UnetProvider(QgsProcessingProvider):
    def id(self):
        return "unet"

    def name(self):
        return tr("U-Net segmentation")

    def longName(self):
        return self.name()

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):
        return ICON

    def loadAlgorithms(self):
        for alg in (ExportTrainingChips(), TrainUnet(), ClassifyRaster(), AssessAccuracy(), CreateAccuracySample(),
                    SuggestLabelingAreas()):
            self.addAlgorithm(alg)
