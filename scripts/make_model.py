"""Write the Graphical Modeler models shipped with the plugin.

resources/unet_workflow.model3: Export Training Chips → Train U-Net → Classify Raster.
resources/unet_labelling_round.model3: one round of the labelling loop — Export Training Chips
(APPEND) → Train U-Net (INIT_MODEL) → Classify Raster and Suggest Areas to Label.

The Graphical Modeler model shipped with the plugin. The chip folder flows from the export
into training and the model file from training into classification; all three are also
model outputs, so a run leaves the chips, the model (and its report) and the class map.

    QT_QPA_PLATFORM=offscreen python scripts/make_model.py [path.model3]

Run it again after changing a parameter of the three algorithms; tests/test_workflow.py checks
that the shipped file matches what this script writes. Run it with QGIS 3.22 (this machine's): it
writes "Version1" models, whose outputs keep names such as ``classify:Classes`` on every QGIS; QGIS
3.40 writes models built in code as "Version2", with outputs named ``classes`` — which would break
users' ``qgis_process`` commands.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_PATH = os.path.join(ROOT, "resources", "unet_workflow.model3")
LOOP_PATH = os.path.join(ROOT, "resources", "unet_labelling_round.model3")
EXPORT, TRAIN, CLASSIFY, SUGGEST = "export", "train", "classify", "suggest"

# A model: its name, help, child algorithms, inputs — (child, the child's parameter whose definition
# it takes, model parameter name, description; help, defaults and options come from the algorithms
# themselves) —, outputs (child → {output name: the child's destination parameter}), links between
# children (child, parameter) → (child, output) and fixed values (child, parameter) → value.
WORKFLOW = {
    "name": "U-Net workflow (export, train, classify)",
    "help": "Cuts training chips from imagery and labels (class polygons or a label raster), trains a "
            "U-Net on them and classifies a raster with the trained model. Chips, model, training "
            "report and the styled class map are all kept.",
    "algorithms": {EXPORT: "unet:exporttrainingchips", TRAIN: "unet:trainunet", CLASSIFY: "unet:classifyraster"},
    "inputs": [
        (EXPORT, "INPUT", "INPUT", "Training imagery"),
        (EXPORT, "LABELS", "LABELS", None),
        (EXPORT, "CLASS_FIELD", "CLASS_FIELD", None),
        (EXPORT, "LABEL_RASTER", "LABEL_RASTER", None),
        (EXPORT, "CHIP_SIZE", "CHIP_SIZE", None),
        (TRAIN, "BACKBONE", "BACKBONE", None),
        (TRAIN, "PRETRAINED", "PRETRAINED", None),
        (TRAIN, "EPOCHS", "EPOCHS", None),
        (CLASSIFY, "INPUT", "CLASSIFY_INPUT", "Imagery to classify"),
    ],
    "outputs": {EXPORT: {"Chips": "OUTPUT"}, TRAIN: {"Model": "OUTPUT_MODEL", "Report": "OUTPUT_REPORT"},
                CLASSIFY: {"Classes": "OUTPUT"}},
    "links": {(TRAIN, "CHIPS"): (EXPORT, "OUTPUT"), (CLASSIFY, "MODEL"): (TRAIN, "OUTPUT_MODEL")},
    "fixed": {},
}

# One round of the labelling loop, after the analyst has labelled the proposed windows: their
# polygons are added to the chip folder (APPEND, the windows as MASK, UNLABELED=ignore), the model
# is fine-tuned from the last one within a time limit, the imagery is classified and the next windows
# to label are proposed — never on the windows labelled so far.
LOOP = {
    "name": "U-Net labelling round (add labels, fine-tune, classify, suggest)",
    "help": "One round of the labelling loop. Label the windows Suggest Areas to Label proposed (class polygons inside "
            "them; add the windows to your layer of labelled windows), then run this model: the new labels are added "
            "to the chip folder, the model is fine-tuned from the last one within the time limit, the imagery is "
            "classified, and the next windows to label are proposed — never on windows labelled before. Give the "
            "existing chip folder as the chip folder output.",
    "algorithms": {EXPORT: "unet:exporttrainingchips", TRAIN: "unet:trainunet", CLASSIFY: "unet:classifyraster",
                   SUGGEST: "unet:suggestlabelingareas"},
    "inputs": [
        (EXPORT, "INPUT", "INPUT", "Imagery"),
        (EXPORT, "LABELS", "LABELS", "Class polygons drawn in the windows"),
        (EXPORT, "CLASS_FIELD", "CLASS_FIELD", None),
        (EXPORT, "MASK", "WINDOWS", "Labelled windows (all so far)"),
        (EXPORT, "CHIP_SIZE", "CHIP_SIZE", None),
        (TRAIN, "INIT_MODEL", "INIT_MODEL", "Model of the last round"),
        (TRAIN, "TIME_LIMIT", "TIME_LIMIT", None),
        (SUGGEST, "COUNT", "COUNT", None),
    ],
    "outputs": {EXPORT: {"Chips": "OUTPUT"}, TRAIN: {"Model": "OUTPUT_MODEL"}, CLASSIFY: {"Classes": "OUTPUT"},
                SUGGEST: {"Next windows": "OUTPUT"}},
    "links": {(TRAIN, "CHIPS"): (EXPORT, "OUTPUT"), (CLASSIFY, "MODEL"): (TRAIN, "OUTPUT_MODEL"),
              (SUGGEST, "MODEL"): (TRAIN, "OUTPUT_MODEL")},
    "shared": {(CLASSIFY, "INPUT"): "INPUT", (SUGGEST, "INPUT"): "INPUT", (SUGGEST, "EXISTING_LABELS"): "WINDOWS"},
    "fixed": {(EXPORT, "APPEND"): True, (EXPORT, "UNLABELED"): "ignore", (TRAIN, "PRETRAINED"): False},
}


def build_model(spec: dict = WORKFLOW):
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

    algs = {child: QgsApplication.processingRegistry().algorithmById(alg_id) for child, alg_id in spec["algorithms"].items()}
    m = QgsProcessingModelAlgorithm(spec["name"], "U-Net segmentation")
    m.setHelpContent({"ALG_DESC": spec["help"], "ALG_CREATOR": "U-Net segmentation plugin"})
    sources = {child: {} for child in spec["algorithms"]}
    for n, (child, key, name, description) in enumerate(spec["inputs"]):
        definition = algs[child].parameterDefinition(key).clone()
        definition.setName(name)
        if description:
            definition.setDescription(description)
        component = QgsProcessingModelParameter(name)
        component.setPosition(QPointF(120, 120 + 60 * n))
        m.addModelParameter(definition, component)
        sources[child][key] = Source.fromModelParameter(name)
    for (child, key), name in spec.get("shared", {}).items():
        sources[child][key] = Source.fromModelParameter(name)
    for (child, key), (source_child, output) in spec["links"].items():
        sources[child][key] = Source.fromChildOutput(source_child, output)
    for (child, key), value in spec["fixed"].items():
        sources[child][key] = Source.fromStaticValue(value)

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
        for name, child_output in spec["outputs"].get(child_id, {}).items():
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
    for spec, target in ((WORKFLOW, path), (LOOP, LOOP_PATH)):
        if not build_model(spec).toFile(target):
            raise SystemExit(f"could not write {target}")
        print(target)


if __name__ == "__main__":
    main(*sys.argv[1:])
