"""Write resources/unet_workflow.model3: Export Training Chips → Train U-Net → Classify Raster.

The Graphical Modeler model shipped with the plugin. The chip folder flows from the export
into training and the model file from training into classification; all three are also
model outputs, so a run leaves the chips, the model (and its report) and the class map.

    QT_QPA_PLATFORM=offscreen python scripts/make_model.py [path.model3]

Run it again after changing a parameter of the three algorithms; tests/test_workflow.py checks
that the shipped file matches what this script writes.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "resources", "unet_workflow.model3")
sys.path.insert(0, ROOT)

# Model parameter → (child, child parameter) it feeds. Names are the algorithms' own keys, so the
# model reads like the algorithms' documentation; CLASSIFY_INPUT is the raster to classify.
EXPORT, TRAIN, CLASSIFY = "export", "train", "classify"


def build_model():
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterBoolean,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.PyQt.QtCore import QPointF

    from unet_plugin.processing.train_unet import BACKBONES

    m = QgsProcessingModelAlgorithm("U-Net workflow (export, train, classify)", "U-Net segmentation")
    m.setHelpContent({
        "ALG_DESC": "Cuts training chips from imagery and labels (class polygons or a label raster), trains a "
                    "U-Net on them and classifies a raster with the trained model. Chips, model, training "
                    "report and the styled class map are all kept.",
        "ALG_CREATOR": "U-Net segmentation plugin",
    })
    params = [
        (QgsProcessingParameterRasterLayer("INPUT", "Training imagery"), 120),
        (QgsProcessingParameterFeatureSource("LABELS", "Class polygons", [QgsProcessing.TypeVectorPolygon], optional=True), 180),
        (QgsProcessingParameterField("CLASS_FIELD", "Class field", None, "LABELS", QgsProcessingParameterField.Any, optional=True), 240),
        (QgsProcessingParameterRasterLayer("LABEL_RASTER", "Label raster", optional=True), 300),
        (QgsProcessingParameterNumber("CHIP_SIZE", "Chip size (pixels)", QgsProcessingParameterNumber.Integer, 256, minValue=32), 360),
        (QgsProcessingParameterEnum("BACKBONE", "Backbone", BACKBONES, defaultValue=1), 420),
        (QgsProcessingParameterBoolean("PRETRAINED", "Start from ImageNet weights", True), 480),
        (QgsProcessingParameterNumber("EPOCHS", "Epochs", QgsProcessingParameterNumber.Integer, 20, minValue=1), 540),
        (QgsProcessingParameterRasterLayer("CLASSIFY_INPUT", "Imagery to classify"), 600),
    ]
    for definition, y in params:
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120, y))
        m.addModelParameter(definition, component)

    def child(alg_id, child_id, x, y, sources, outputs):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription({EXPORT: "Export Training Chips", TRAIN: "Train U-Net", CLASSIFY: "Classify Raster"}[child_id])
        c.setPosition(QPointF(x, y))
        for key, source in sources.items():
            c.addParameterSources(key, [source])
        # every other parameter at the algorithm's default, as the Modeler's dialog stores it
        for definition in QgsApplication.processingRegistry().algorithmById(alg_id).parameterDefinitions():
            if definition.name() not in sources and not definition.isDestination():
                c.addParameterSources(definition.name(), [Source.fromStaticValue(definition.defaultValue())])
        model_outputs = {}
        for name, (child_output, default) in outputs.items():
            out = QgsProcessingModelOutput(name, name)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setMandatory(False)
            out.setPosition(QPointF(x + 200, y + 60 + 40 * len(model_outputs)))
            if default is not None:
                out.setDefaultValue(default)
            model_outputs[name] = out
        c.setModelOutputs(model_outputs)
        m.addChildAlgorithm(c)

    p = Source.fromModelParameter
    child("unet:exporttrainingchips", EXPORT, 420, 200,
          {"INPUT": p("INPUT"), "LABELS": p("LABELS"), "CLASS_FIELD": p("CLASS_FIELD"),
           "LABEL_RASTER": p("LABEL_RASTER"), "CHIP_SIZE": p("CHIP_SIZE")},
          {"Chips": ("OUTPUT", None)})
    child("unet:trainunet", TRAIN, 420, 360,
          {"CHIPS": Source.fromChildOutput(EXPORT, "OUTPUT"), "BACKBONE": p("BACKBONE"),
           "PRETRAINED": p("PRETRAINED"), "EPOCHS": p("EPOCHS")},
          {"Model": ("OUTPUT_MODEL", None), "Report": ("OUTPUT_REPORT", None)})
    child("unet:classifyraster", CLASSIFY, 420, 520,
          {"INPUT": p("CLASSIFY_INPUT"), "MODEL": Source.fromChildOutput(TRAIN, "OUTPUT_MODEL")},
          {"Classes": ("OUTPUT", None)})
    m.updateDestinationParameters()
    return m


def main(path: str = MODEL_PATH) -> None:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from unet_plugin.processing.provider import UnetProvider

    provider = UnetProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    model = build_model()
    if not model.toFile(path):
        raise SystemExit(f"could not write {path}")
    print(path)


if __name__ == "__main__":
    main(*sys.argv[1:])
