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
    imagery = iface.addRasterLayer(os.path.join(DATA, "nc_lsat7_2000_6band.tif"), "Landsat 7 (2000)")
    from qgis.core import QgsContrastEnhancement, QgsMultiBandColorRenderer

    imagery.setRenderer(QgsMultiBandColorRenderer(imagery.dataProvider(), 3, 2, 1))  # bands 3-2-1: true colour
    imagery.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum)
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
    iface.mapCanvas().setExtent(layers[0].extent())
    grab("desktop.png")

    labelling_round(project, context, model, layers[0])

    qgis.utils.unloadPlugin("unet_segmentation")
    unloaded = reg.providerById("unet") is None
    qgis.utils.loadPlugin("unet_segmentation")
    qgis.utils.startPlugin("unet_segmentation")
    step("reload", unloaded=unloaded, reloaded=reg.providerById("unet") is not None)


def grab(name):
    """The main window as the user sees it, once the canvas has drawn."""
    canvas = iface.mapCanvas()
    canvas.refresh()
    for _ in range(50):
        QgsApplication.processEvents()
    canvas.waitWhileRendering()
    QgsApplication.processEvents()
    iface.mainWindow().grab().save(os.path.join(OUT, name))


def loaded(project, path):
    return next((lyr for lyr in project.mapLayers().values() if lyr.source().split("|")[0] == path), None)


def boxes(path):
    from osgeo import ogr

    ds = ogr.Open(path)
    return [f.GetGeometryRef().Clone() for f in ds.GetLayer(0)]


def draw_labels(windows, labels):
    """The analyst's work, simulated: inside every proposed window, the polygons of the land-cover
    raster (strata.tif), with their class names in the field ``label``."""
    from osgeo import gdal, ogr

    strata = gdal.Open(os.path.join(DATA, "strata.tif"))
    band, gt = strata.GetRasterBand(1), strata.GetGeoTransform()
    names = band.GetCategoryNames()
    out = ogr.GetDriverByName("GPKG").CreateDataSource(labels)
    layer = out.CreateLayer("labels", strata.GetSpatialRef(), ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    scratch = ogr.GetDriverByName("Memory").CreateDataSource("")
    for box in boxes(windows):
        x0, x1, y0, y1 = box.GetEnvelope()
        col, row = round((x0 - gt[0]) / gt[1]), round((y1 - gt[3]) / gt[5])
        w, h = round((x1 - x0) / gt[1]), round((y0 - y1) / gt[5])
        codes = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
        codes.SetGeoTransform((x0, gt[1], 0, y1, 0, gt[5]))
        codes.GetRasterBand(1).WriteArray(band.ReadAsArray(col, row, w, h).astype("uint8"))
        polys = scratch.CreateLayer("p", strata.GetSpatialRef(), ogr.wkbPolygon)
        polys.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
        gdal.Polygonize(codes.GetRasterBand(1), None, polys, 0)
        for f in polys:
            if 1 <= f["code"] < len(names):
                g = ogr.Feature(layer.GetLayerDefn())
                g.SetGeometry(f.GetGeometryRef())
                g["label"] = names[f["code"]]
                layer.CreateFeature(g)
        scratch.DeleteLayer(0)
    n = layer.GetFeatureCount()
    out = None
    return n


def style_like(labels_layer, class_layer):
    """The drawn polygons in the class map's colours."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

    cats = []
    for c in class_layer.renderer().classes():
        symbol = QgsFillSymbol.createSimple({"color": c.color.name(), "outline_color": "black", "outline_width": "0.2"})
        cats.append(QgsRendererCategory(c.label, symbol, c.label))
    labels_layer.setRenderer(QgsCategorizedSymbolRenderer("label", cats))


def labelling_round(project, context, model, class_layer):
    """One round of the labelling loop as the analyst does it: Suggest Areas to Label, label the windows,
    then the Modeler model shipped with the plugin (add the labels, fine-tune, classify, suggest)."""
    import processing
    from qgis.core import QgsVectorDataProvider

    image = os.path.join(DATA, "nc_lsat7_2000_6band.tif")
    windows = os.path.join(OUT, "windows.gpkg")
    processing.runAndLoadResults("unet:suggestlabelingareas", {"INPUT": image, "MODEL": model, "COUNT": 6,
                                                                "OUTPUT": windows},
                                 feedback=QgsProcessingFeedback(), context=context)
    layer = loaded(project, windows)
    class_layer.renderer().setOpacity(0.5)
    class_layer.triggerRepaint()
    placed = boxes(windows)
    step("suggest", loaded=layer is not None, renderer=layer.renderer().type() if layer else None,
         labelled_by=layer.labeling().settings().fieldName if layer and layer.labelsEnabled() else None,
         fields=[f.name() for f in layer.fields()] if layer else [],
         editable=bool(layer and layer.dataProvider().capabilities() & QgsVectorDataProvider.ChangeAttributeValues),
         ranks=[f["rank"] for f in layer.getFeatures()] if layer else [],
         overlaps=sum(a.Intersection(b).GetArea() > 0 for i, a in enumerate(placed) for b in placed[i + 1:]))
    grab("loop_suggest.png")

    labels = os.path.join(OUT, "labels.gpkg")
    drawn = draw_labels(windows, labels)
    labels_layer = iface.addVectorLayer(labels, "Class polygons drawn", "ogr")
    style_like(labels_layer, class_layer)
    project.layerTreeRoot().findLayer(class_layer.id()).setItemVisibilityChecked(False)
    step("labelled", polygons=drawn, loaded=labels_layer is not None and labels_layer.isValid())
    grab("loop_labelled.png")

    round_id = "unet:U-Net labelling round (add labels, fine-tune, classify, suggest)"  # Toolbox ▸ Workflows
    listed = QgsApplication.processingRegistry().algorithmById(round_id)
    opened = listed is not None and listed.group() == "Workflows"
    chips = os.path.join(OUT, "chips")
    before = len(json.load(open(os.path.join(chips, "dataset.json")))["chips"])
    names = {"model": os.path.join(OUT, "round1.pt"), "classes": os.path.join(OUT, "round1_classes.tif"),
             "next": os.path.join(OUT, "next_windows.gpkg")}
    processing.runAndLoadResults(round_id, {
        "INPUT": image, "LABELS": labels, "CLASS_FIELD": "label", "WINDOWS": windows, "CHIP_SIZE": 64,
        "INIT_MODEL": model, "TIME_LIMIT": float(os.environ.get("UNET_DESKTOP_ROUND_MINUTES", "0.2")), "COUNT": 6,
        "export:Chips": chips, "train:Model": names["model"], "classify:Classes": names["classes"],
        "suggest:Next windows": names["next"]}, feedback=QgsProcessingFeedback(), context=context)
    after = json.load(open(os.path.join(chips, "dataset.json")))
    new_classes, next_layer = loaded(project, names["classes"]), loaded(project, names["next"])
    following = boxes(names["next"]) if os.path.exists(names["next"]) else []
    step("round", opened=opened, chips_before=before, chips_after=len(after["chips"]),
         appended=bool(after.get("appended")), model=os.path.exists(names["model"]),
         classes_loaded=new_classes is not None, classes_renderer=new_classes.renderer().type() if new_classes else None,
         next_loaded=next_layer is not None, next_labelled_by=next_layer.labeling().settings().fieldName
         if next_layer and next_layer.labelsEnabled() else None, next_count=len(following),
         next_on_labelled=sum(a.Intersection(b).GetArea() > 0 for a in following for b in placed))
    if new_classes is not None:
        new_classes.renderer().setOpacity(0.5)
    root = project.layerTreeRoot()
    root.findLayer(labels_layer.id()).setItemVisibilityChecked(False)
    # the windows labelled so far in white, the next ones on top
    from qgis.core import QgsFillSymbol, QgsSingleSymbolRenderer

    layer.setRenderer(QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(
        {"style": "no", "outline_color": "white", "outline_width": "0.6"})))
    layer.setLabelsEnabled(False)
    layer.setName("labelled windows")
    if next_layer is not None:
        node = root.findLayer(next_layer.id())
        root.insertChildNode(0, node.clone())
        node.parent().removeChildNode(node)
    grab("loop_next.png")


try:
    run()
    result["finished"] = True
except BaseException:
    result["exception"] = traceback.format_exc()
save()
QgsProject.instance().setDirty(False)
sys.stdout.flush()
os._exit(0)
