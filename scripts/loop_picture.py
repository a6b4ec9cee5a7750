"""Render docs/labelling_loop.png: what Suggest Areas to Label shows the analyst, as QGIS draws it.

The imagery (true colour), the current model's class map half transparent over it, and the proposed
windows styled by rank (the ``.qml`` the algorithm writes) with their rank as labels — rendered by
QGIS's own map renderer, offscreen. Needs a model: ``bash scripts/demo.sh`` leaves one in
``demo_output/model.pt``.

    QT_QPA_PLATFORM=offscreen ~/.cache/qgis-unet-venv/bin/python scripts/loop_picture.py [model.pt] [out.png]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # make_project.render
IMAGE = os.path.join(ROOT, "tests", "data", "nc_landsat7", "nc_lsat7_2000_6band.tif")


def main(model: str, out: str) -> None:
    from make_project import render
    from qgis.core import (
        QgsApplication,
        QgsContrastEnhancement,
        QgsMultiBandColorRenderer,
        QgsRasterLayer,
        QgsVectorLayer,
        QgsVectorLayerSimpleLabeling,
    )

    app = QgsApplication([], False)
    app.initQgis()
    with tempfile.TemporaryDirectory(prefix="unet-loop-") as tmp:
        classes, windows = os.path.join(tmp, "classes.tif"), os.path.join(tmp, "next.gpkg")
        run = [sys.executable, "-m", "unet_plugin"]
        subprocess.run(run + ["classifyraster", f"INPUT={IMAGE}", f"MODEL={model}", f"OUTPUT={classes}"], check=True, cwd=ROOT)
        subprocess.run(run + ["suggestlabelingareas", f"INPUT={IMAGE}", f"MODEL={model}", "COUNT=10", f"OUTPUT={windows}"],
                       check=True, cwd=ROOT)
        image = QgsRasterLayer(IMAGE, "imagery")
        image.setRenderer(QgsMultiBandColorRenderer(image.dataProvider(), 3, 2, 1))  # Landsat 3-2-1: true colour
        image.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum)
        class_map = QgsRasterLayer(classes, "classes")
        class_map.loadNamedStyle(os.path.splitext(classes)[0] + ".qml")
        class_map.renderer().setOpacity(0.45)
        boxes = QgsVectorLayer(windows, "windows to label")
        boxes.loadNamedStyle(os.path.splitext(windows)[0] + ".qml")
        boxes.setLabeling(QgsVectorLayerSimpleLabeling(_rank_labels()))
        boxes.setLabelsEnabled(True)
        render([boxes, class_map, image], image, 978, 886, out)
        del boxes, class_map, image  # the files close before the folder goes
    print(out)
    app.exitQgis()


def _rank_labels():
    """Each window's rank, white on a black halo."""
    from qgis.core import QgsPalLayerSettings
    from qgis.PyQt.QtGui import QColor

    label = QgsPalLayerSettings()
    label.fieldName = "rank"
    label.enabled = True
    fmt = label.format()
    fmt.setSize(14)
    fmt.setColor(QColor("white"))
    buffer = fmt.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("black"))
    fmt.setBuffer(buffer)
    label.setFormat(fmt)
    return label


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "demo_output", "model.pt"),
         sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "docs", "labelling_loop.png"))
