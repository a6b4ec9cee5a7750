"""Runs inside the real QGIS desktop (``qgis --code``): what a user does, then a JSON verdict.

Started by tests/test_desktop.py under Xvfb with a fresh profile and the plugin installed from
the zip. Writes ``$UNET_DESKTOP_OUT/result.json`` and a screenshot, then leaves QGIS at once.
Every step records what it found; the test judges the file. A crash leaves no file.
"""

import json
import os
import sys
import traceback

from qgis.core import Qgis, QgsApplication, QgsProcessingContext, QgsProcessingFeedback, QgsProject
from qgis.utils import iface

OUT = os.environ["UNET_DESKTOP_OUT"]
DATA = os.environ["UNET_DESKTOP_DATA"]
result = {"steps": [], "errors": []}


def logged(message, tag, level):
    if level >= Qgis.MessageLevel.Critical or "Traceback" in message:
        result["errors"].append(f"[{tag}] {message[:2000]}")


QgsApplication.messageLog().messageReceived.connect(logged)


def save():
    with open(os.path.join(OUT, "result.json.partial"), "w") as f:
        json.dump(result, f, indent=1)
    os.replace(os.path.join(OUT, "result.json.partial"), os.path.join(OUT, "result.json"))


def step(name, **found):
    result["steps"].append(dict(found, step=name))
    save()  # what got this far is on disk even if the next step kills QGIS


def run():
    import processing
    import qgis.utils

    with open("/proc/self/maps") as maps:
        result["llvm_loaded"] = sorted({ln.split()[-1] for ln in maps if "libLLVM" in ln})
    result["plugin_loaded"] = "unet_segmentation" in qgis.utils.active_plugins
    reg = QgsApplication.processingRegistry()
    provider = reg.providerById("unet")
    step("provider", found=provider is not None, algorithms=sorted(a.id() for a in provider.algorithms()) if provider else [])

    # what a double-click in the Toolbox does: canExecute, then the dialog
    for alg_id in ("unet:exporttrainingchips", "unet:trainunet", "unet:classifyraster"):
        alg = reg.algorithmById(alg_id)
        ok, message = alg.canExecute()
        dialog = processing.createAlgorithmDialog(alg_id, {})
        dialog.show()
        QgsApplication.processEvents()
        step("dialog", alg=alg_id, can_execute=ok, message=message, shown=dialog.isVisible(),
             torch_imported=sys.modules.get("torch") is not None)
        dialog.close()

    # the chain, the way the dialogs' Run button and the Modeler load results
    import onnxruntime  # noqa: F401  (optional accelerator: it must load beside Mesa too)

    step("onnxruntime", imported=True)
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    chips = os.path.join(OUT, "chips")
    processing.run("unet:exporttrainingchips", {
        "INPUT": os.path.join(DATA, "nc_lsat7_2000_6band.tif"), "LABEL_RASTER": os.path.join(DATA, "strata.tif"),
        "CHIP_SIZE": 64, "STRIDE": int(os.environ.get("UNET_DESKTOP_STRIDE", "64")), "OUTPUT": chips}, feedback=QgsProcessingFeedback(), context=context)
    step("export", chips=len(os.listdir(os.path.join(chips, "images"))))
    model = os.path.join(OUT, "model.pt")
    train = processing.runAndLoadResults("unet:trainunet", {
        "CHIPS": chips, "BACKBONE": "resnet18", "PRETRAINED": False, "EPOCHS": int(os.environ.get("UNET_DESKTOP_EPOCHS", "2")), "BATCH_SIZE": 8, "LEARNING_RATE": 0.002,
        "OUTPUT_MODEL": model, "OUTPUT_REPORT": os.path.join(OUT, "report.html")},
        feedback=QgsProcessingFeedback(), context=context)
    step("train", model=os.path.exists(model), miou=train.get("VALIDATION_MIOU"),
         triton=repr(sys.modules.get("triton", "absent")))
    iface.addRasterLayer(os.path.join(DATA, "nc_lsat7_2000_6band.tif"), "Landsat 7 (2000)")
    classes = os.path.join(OUT, "classes.tif")
    processing.runAndLoadResults("unet:classifyraster", {
        "INPUT": os.path.join(DATA, "nc_lsat7_2000_6band.tif"), "MODEL": model, "OUTPUT": classes},
        feedback=QgsProcessingFeedback(), context=context)
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == classes]
    renderer = layers[0].renderer() if layers else None
    step("classify", loaded=bool(layers), renderer=renderer.type() if renderer else None,
         legend={int(c.value): c.label for c in renderer.classes()} if renderer and renderer.type() == "paletted" else {})

    for layer in project.mapLayers().values():  # the class legend open, the imagery's folded
        project.layerTreeRoot().findLayer(layer.id()).setExpanded(layer in layers)
    canvas = iface.mapCanvas()
    canvas.setExtent(layers[0].extent())
    canvas.refresh()
    for _ in range(50):
        QgsApplication.processEvents()
    canvas.waitWhileRendering()
    QgsApplication.processEvents()
    iface.mainWindow().grab().save(os.path.join(OUT, "desktop.png"))

    qgis.utils.unloadPlugin("unet_segmentation")
    unloaded = reg.providerById("unet") is None
    qgis.utils.loadPlugin("unet_segmentation")
    qgis.utils.startPlugin("unet_segmentation")
    step("reload", unloaded=unloaded, reloaded=reg.providerById("unet") is not None)


try:
    run()
    result["finished"] = True
except BaseException:
    result["exception"] = traceback.format_exc()
save()
QgsProject.instance().setDirty(False)
sys.stdout.flush()
os._exit(0)
