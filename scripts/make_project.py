"""Write demo.qgz (imagery + styled class map) and render it to demo.png, headless.

    python scripts/make_project.py IMAGE OUTPUT_FOLDER
"""

import os
import sys


def render(layers: list, reference, width: int, height: int, path: str) -> None:
    """Draw ``layers`` (top first) over ``reference``'s extent and CRS into a PNG, as QGIS draws them."""
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(reference.crs())
    settings.setExtent(reference.extent())
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    if not job.renderedImage().save(path):
        raise OSError(f"could not write {path}")


def main(image: str, out: str) -> None:
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

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
    render([classes, imagery], imagery, 800, 725, os.path.join(out, "demo.png"))
    print("project:", os.path.join(out, "demo.qgz"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
