"""Class colours, GDAL colour tables and QGIS ``.qml`` styles for class rasters."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from osgeo import gdal

from .codes import NODATA

# A qualitative palette (ColorBrewer Set1/Dark2-like) for classes without colours.
PALETTE = [
    (228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163), (255, 127, 0),
    (255, 255, 51), (166, 86, 40), (247, 129, 191), (27, 158, 119), (217, 95, 2),
    (117, 112, 179), (231, 41, 138), (102, 166, 30), (230, 171, 2), (166, 118, 29),
]
BACKGROUND_COLOR = (200, 200, 200)


def default_color(value: int) -> list[int]:
    """Colour for class ``value`` (0 is background grey)."""
    if value == 0:
        return list(BACKGROUND_COLOR)
    return list(PALETTE[(value - 1) % len(PALETTE)])


def hex_color(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def apply_classes_to_band(band: gdal.Band, classes: list[dict]) -> None:
    """Write a colour table and category names for ``classes`` to a uint8 band.

    Args:
        band: the class band.
        classes: dicts with ``value``, ``name`` and ``color`` ([r, g, b]).
    """
    table = gdal.ColorTable()
    names = [""] * 256
    for c in classes:
        table.SetColorEntry(int(c["value"]), tuple(c["color"][:3]) + (255,))
        names[int(c["value"])] = c["name"]
    table.SetColorEntry(NODATA, (0, 0, 0, 0))
    last = max([int(c["value"]) for c in classes] + [0])
    band.SetRasterColorTable(table)
    band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    band.SetCategoryNames(names[: last + 1])
    band.SetNoDataValue(NODATA)


def classes_qml(classes: list[dict]) -> str:
    """A QGIS layer style: paletted renderer with one legend entry per class."""
    entries = "\n".join(
        "        <paletteEntry value={} color={} alpha=\"255\" label={}/>".format(
            quoteattr(str(int(c["value"]))), quoteattr(hex_color(c["color"])), quoteattr(c["name"])
        )
        for c in sorted(classes, key=lambda c: int(c["value"]))
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
