"""Label codes and the nodata values of our rasters, defined once (docs/contract.md, "Label codes").

A label or class raster is Byte: 0 is background, 1–254 are classes, 255 is "ignore" in label
grids (unlabelled, outside MASK, image nodata) and "no data" in class maps. Probability rasters
store ``round(p × 255)`` (at most 254) with 255 as their nodata; confidence rasters are Float32
with nodata -1.
"""

BACKGROUND = 0
IGNORE = 255                # label grids: this pixel never counts (training, validation, accuracy)
NODATA = 255                # class maps: no class (image nodata, outside the extent)
PROBABILITY_NODATA = 255    # probability rasters (Byte, scale 1/255)
CONFIDENCE_NODATA = -1.0    # confidence rasters (Float32)
MAX_CLASS_CODE = 254
