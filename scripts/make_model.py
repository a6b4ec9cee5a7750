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
EXPORT, TRAIN, CLASSIFY = "export", "train", "classify"
ALGORITHMS = {EXPORT: "unet:exporttrainingchips", TRAIN: "unet:trainunet", CLASSIFY: "unet:classifyraster"}
# The model's inputs: (child, the child's parameter whose definition it takes, model parameter
# name, description). Help, defaults and options come from the algorithms themselves.
INPUTS = [
    (EXPORT, "INPUT", "INPUT", "Training imagery"),
    (EXPORT, "LABELS", "LABELS", None),
    (EXPORT, "CLASS_FIELD", "CLASS_FIELD", None),
    (EXPORT, "LABEL_RASTER", "LABEL_RASTER", None),
    (EXPORT, "CHIP_SIZE", "CHIP_SIZE", None),
    (TRAIN, "BACKBONE", "BACKBONE", None),
    (TRAIN, "PRETRAINED", "PRETRAINED", None),
    (TRAIN, "EPOCHS", "EPOCHS", None),
    (CLASSIFY, "INPUT", "CLASSIFY_INPUT", "Imagery to classify"),
]
# Model outputs: child → {output name: the child's destination parameter}
OUTPUTS = {EXPORT: {"Chips": "OUTPUT"}, TRAIN: {"Model": "OUTPUT_MODEL", "Report": "OUTPUT_REPORT"}, CLASSIFY: {"Classes": "OUTPUT"}}


def build_model():
    """The model, built from the registered algorithms of the ``unet`` provider."""
    from qgis.core import (
        QgsApplication,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Source,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
    )
    from qgis.PyQt.QtCore import QPointF

    algs = {child: QgsApplication.processingRegistry().algorithmById(alg_id) for child, alg_id in ALGORITHMS.items()}
    m = QgsProcessingModelAlgorithm("U-Net workflow (export, train, classify)", "U-Net segmentation")
    m.setHelpContent({
        "ALG_DESC": "Cuts training chips from imagery and labels (class polygons or a label raster), trains a "
                    "U-Net on them and classifies a raster with the trained model. Chips, model, training "
                    "report and the styled class map are all kept.",
        "ALG_CREATOR": "U-Net segmentation plugin",
    })
    sources = {child: {} for child in ALGORITHMS}
    for n, (child, key, name, description) in enumerate(INPUTS):
        definition = algs[child].parameterDefinition(key).clone()
        definition.setName(name)
        if description:
            definition.setDescription(description)
        component = QgsProcessingModelParameter(name)
        component.setPosition(QPointF(120, 120 + 60 * n))
        m.addModelParameter(definition, component)
        sources[child][key] = Source.fromModelParameter(name)
    sources[TRAIN]["CHIPS"] = Source.fromChildOutput(EXPORT, "OUTPUT")
    sources[CLASSIFY]["MODEL"] = Source.fromChildOutput(TRAIN, "OUTPUT_MODEL")

    for row, (child_id, alg) in enumerate(algs.items()):
        x, y = 420, 200 + 160 * row
        c = QgsProcessingModelChildAlgorithm(alg.id())
        c.setChildId(child_id)
        c.setDescription(alg.displayName())
        c.setPosition(QPointF(x, y))
        for definition in alg.parameterDefinitions():
            if definition.isDestination():
                continue
            # every parameter not fed from elsewhere at the algorithm's default, as the Modeler stores it
            c.addParameterSources(definition.name(), [sources[child_id].get(definition.name(), Source.fromStaticValue(definition.defaultValue()))])
        model_outputs = {}
        for name, child_output in OUTPUTS[child_id].items():
            out = QgsProcessingModelOutput(name, name)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setMandatory(False)
            out.setPosition(QPointF(x + 200, y + 60 + 40 * len(model_outputs)))
            model_outputs[name] = out
        c.setModelOutputs(model_outputs)
        m.addChildAlgorithm(c)
    m.updateDestinationParameters()
    return m


def main(path: str = MODEL_PATH) -> None:
    from qgis.core import QgsApplication

    sys.path.insert(0, ROOT)
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
