"""Write demo.qgz (imagery + styled class map) and render it to demo.png, headless."""

import os
import sys

from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsProject, QgsRasterLayer)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

image, out = sys.argv[1], sys.argv[2]
app = QgsApplication([], False)
app.initQgis()
project = QgsProject.instance()
imagery = QgsRasterLayer(image, "Landsat-7 2000 (bands 4-3-2)")
renderer = imagery.renderer()
if hasattr(renderer, "setRedBand"):
    renderer.setRedBand(4)
    renderer.setGreenBand(3)
    renderer.setBlueBand(2)
classes = QgsRasterLayer(os.path.join(out, "classes.tif"), "U-Net land cover")
classes.loadNamedStyle(os.path.join(out, "classes.qml"))
classes.setOpacity(0.85)
project.setCrs(imagery.crs())
project.addMapLayers([imagery, classes])
project.write(os.path.join(out, "demo.qgz"))

settings = QgsMapSettings()
settings.setLayers([classes, imagery])
settings.setDestinationCrs(imagery.crs())
settings.setExtent(imagery.extent())
settings.setOutputSize(QSize(800, 725))
settings.setBackgroundColor(QColor("white"))
job = QgsMapRendererParallelJob(settings)
job.start()
job.waitForFinished()
job.renderedImage().save(os.path.join(out, "demo.png"))
print("project:", os.path.join(out, "demo.qgz"))
