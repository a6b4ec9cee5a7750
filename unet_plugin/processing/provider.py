"""The Processing provider ``unet``."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .assess_accuracy import AssessAccuracy
from .base import ICON, RESOURCES, tr
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
        if QgsApplication.processingRegistry().providerById(self.id()) is self:
            # a model finds its steps in the registry, so only once this provider is in it
            # (the plugin refreshes the provider right after adding it)
            for model in shipped_models():
                self.addAlgorithm(model)


# Graphical Modeler models shipped in resources/, in the Toolbox under the provider's "Workflows"
# group (ids "unet:" + the model's name); the files also open in the Modeler or run with qgis_process.
SHIPPED_MODELS = ("unet_workflow.model3", "unet_labelling_round.model3")


def shipped_models() -> list:
    models = []
    for name in SHIPPED_MODELS:
        model = QgsProcessingModelAlgorithm()
        if model.fromFile(os.path.join(RESOURCES, name)):
            model.setGroup(tr("Workflows"))
            models.append(model)
    return models
