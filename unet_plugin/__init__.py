"""U-Net segmentation for QGIS: export training chips, train a U-Net, classify rasters."""
