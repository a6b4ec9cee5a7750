"""Pure numpy/GDAL logic: no QGIS, no torch."""
