"""From a class raster to regions: the minimum mapping unit and polygons (GDAL's streaming
sieve and polygonize, so memory follows the number of regions per row, not the raster)."""

from __future__ import annotations

from typing import Callable

from osgeo import gdal, ogr, osr

from .errors import Canceled
from .paths import vector_driver
from .styles import NODATA

CONNECTEDNESS = 4  # pixels touching at an edge form a region; corner contacts do not (valid polygons)


def _progress(is_canceled: Callable[[], bool]):
    def callback(_fraction, _message, _data):
        return 0 if is_canceled() else 1
    return callback


def sieve(path: str, min_area: int, is_canceled: Callable[[], bool] = lambda: False) -> None:
    """Merge regions of one class smaller than ``min_area`` pixels into the largest neighbouring
    region (GDAL's sieve rule), in place; nodata (255) neither grows nor is filled."""
    ds = gdal.Open(path, gdal.GA_Update)
    band = ds.GetRasterBand(1)
    # source and destination may be one band (GDAL reads each line before it writes it)
    if gdal.SieveFilter(band, band.GetMaskBand(), band, int(min_area), CONNECTEDNESS, callback=_progress(is_canceled)) != 0:
        raise Canceled() if is_canceled() else RuntimeError("GDAL could not sieve the class raster")
    band.FlushCache()
    ds = None


def _area_function(srs: osr.SpatialReference):
    """Area of a geometry in square metres: planar in a projected CRS (times the unit's square),
    on an equal-area projection around the polygon where the CRS is geographic."""
    if not srs.IsGeographic():
        factor = srs.GetLinearUnits() ** 2
        return lambda geom: geom.GetArea() * factor
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)

    def geodesic(geom):
        c = geom.Centroid()
        laea = osr.SpatialReference()
        laea.ImportFromProj4(f"+proj=laea +lat_0={c.GetY()} +lon_0={c.GetX()} +datum=WGS84 +units=m +no_defs")
        laea.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        g = geom.Clone()
        g.Transform(osr.CoordinateTransformation(srs, laea))
        return g.GetArea()
    return geodesic


def polygonize(path: str, output: str, classes: list[dict], is_canceled: Callable[[], bool] = lambda: False) -> int:
    """One polygon per connected region of one class, with ``class_value``, ``class_name`` and
    ``area_m2``; nodata is left out. Written whole or not at all, with a ``.qml`` style beside it.

    Returns:
        The number of polygons.
    """
    from .layers import vector_layer
    from .outputs import split_layer

    driver = vector_driver(split_layer(output)[0])
    src = gdal.Open(path)
    band = src.GetRasterBand(1)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(src.GetProjection())
    with vector_layer(output, "OUTPUT_POLYGONS", driver, srs, ogr.wkbPolygon) as layer:
        n = _fill_polygons(layer, band, srs, classes, is_canceled)
    write_polygon_qml(output, classes)
    return n


def _fill_polygons(layer, band, srs, classes: list[dict], is_canceled) -> int:
    layer.CreateField(ogr.FieldDefn("class_value", ogr.OFTInteger))
    name_field = ogr.FieldDefn("class_name", ogr.OFTString)
    name_field.SetWidth(254)
    layer.CreateField(name_field)
    layer.CreateField(ogr.FieldDefn("area_m2", ogr.OFTReal))
    layer.StartTransaction()
    if gdal.Polygonize(band, band.GetMaskBand(), layer, 0, [f"8CONNECTED={'8' if CONNECTEDNESS == 8 else 'NO'}"],
                       callback=_progress(is_canceled)) != 0:
        raise Canceled() if is_canceled() else RuntimeError("GDAL could not polygonize the class raster")
    names = {int(c["value"]): c["name"] for c in classes}
    area = _area_function(srs)
    n = 0
    extra = []  # parts of regions that GDAL joined at a corner: one feature each
    layer.ResetReading()
    for feat in layer:
        value = feat.GetField("class_value")
        if value == NODATA:
            continue
        parts = [feat.GetGeometryRef().Clone()]
        gdal.PushErrorHandler("CPLQuietErrorHandler")  # GEOS reports each self-touching ring it finds
        valid = parts[0].IsValid()
        gdal.PopErrorHandler()
        if not valid:
            # two regions of one class touching at a pixel corner come out as one ring that
            # touches itself there: split into its valid polygons
            fixed = parts[0].MakeValid() if hasattr(parts[0], "MakeValid") else parts[0].Buffer(0)
            parts = [fixed.GetGeometryRef(i).Clone() for i in range(fixed.GetGeometryCount())] \
                if fixed.GetGeometryType() in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection) else [fixed]
            parts = [g for g in parts if g.GetGeometryType() == ogr.wkbPolygon]
        name = names.get(value, f"class {value}")
        for i, geom in enumerate(parts):
            target = feat if i == 0 else ogr.Feature(layer.GetLayerDefn())
            target.SetGeometry(geom)
            target.SetField("class_value", value)
            target.SetField("class_name", name)
            target.SetField("area_m2", float(area(geom)))
            (layer.SetFeature(target) if i == 0 else extra.append(target))
        n += len(parts)
    for feat in extra:
        layer.CreateFeature(feat)
    layer.CommitTransaction()
    return n


def _symbol(i: int, kind: str, rgb) -> str:
    r, g, b = rgb[:3]
    if kind == "marker":
        props = {"name": "circle", "color": f"{r},{g},{b},255", "outline_color": "35,35,35,255", "outline_width": "0.3",
                 "size": "3"}
        layer = "SimpleMarker"
    else:
        props = {"color": f"{r},{g},{b},255", "outline_color": f"{r},{g},{b},255", "outline_width": "0.1", "style": "solid"}
        layer = "SimpleFill"
    options = "".join(f'<Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="{kind}" name="{i}" alpha="1"><layer class="{layer}" enabled="1" pass="0" locked="0">'
            f'<Option type="Map">{options}</Option>{legacy}</layer></symbol>')


def categorized_qml(classes: list[dict], field: str, kind: str, extra: str = "") -> str:
    """A QGIS style that colours features by the class value in ``field`` (legend: class names)."""
    from xml.sax.saxutils import quoteattr

    ordered = sorted(classes, key=lambda c: int(c["value"]))
    cats = "".join(f'<category render="true" symbol="{i}" value="{int(c["value"])}" label={quoteattr(c["name"])}/>'
                   for i, c in enumerate(ordered))
    symbols = "".join(_symbol(i, kind, c["color"]) for i, c in enumerate(ordered))
    return (f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.22\" "
            f"styleCategories=\"Symbology|Fields|Forms\">\n"
            f'<renderer-v2 type="categorizedSymbol" attr="{field}" enableorderby="0" forceraster="0">\n'
            f"<categories>{cats}</categories>\n<symbols>{symbols}</symbols>\n</renderer-v2>\n{extra}</qgis>\n")


def write_polygon_qml(path: str, classes: list[dict]) -> str:
    """A categorized QGIS style (fill by class colour, legend by class name) beside the polygons."""
    from .outputs import style_path, write_text

    return write_text(style_path(path), "OUTPUT_POLYGONS",
                      categorized_qml(classes, "class_value", "fill"))


def write_points_qml(path: str, classes: list[dict]) -> str:
    """The style of accuracy sample points: coloured by map class, and a drop-down of the map's class
    names on the ``reference`` field, so labelling a point is one click in QGIS's attribute form."""
    from xml.sax.saxutils import quoteattr

    from .outputs import style_path, write_text

    entries = "".join(f'<Option type="Map"><Option type="QString" name={quoteattr(c["name"])} value={quoteattr(c["name"])}/></Option>'
                      for c in sorted(classes, key=lambda c: int(c["value"])))
    form = ('<fieldConfiguration><field name="reference" configurationFlags="None"><editWidget type="ValueMap"><config>'
            f'<Option type="Map"><Option type="List" name="map">{entries}</Option></Option></config></editWidget></field>'
            '</fieldConfiguration>\n')
    return write_text(style_path(path), "OUTPUT", categorized_qml(classes, "map_value", "marker", form))


def write_windows_qml(path: str) -> str:
    """The style of proposed windows: outlines shaded from red (rank 1) to yellow, labelled with their rank
    (on a white halo, readable over a class map)."""
    from .outputs import style_path, write_text

    qml = ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
           '<qgis version="3.22" styleCategories="Symbology|Labeling">\n'
           '<renderer-v2 type="singleSymbol" enableorderby="0" forceraster="0"><symbols>'
           '<symbol type="fill" name="0" alpha="1"><data_defined_properties><Option type="Map">'
           '<Option type="QString" name="name" value=""/><Option name="properties" type="Map">'
           '<Option name="outlineColor" type="Map"><Option type="bool" name="active" value="true"/>'
           '<Option type="QString" name="expression" value="color_rgb(230, 60 + 150 * (&quot;rank&quot; - 1) / '
           'greatest(maximum(&quot;rank&quot;) - 1, 1), 20)"/><Option type="int" name="type" value="3"/></Option>'
           '</Option><Option type="QString" name="type" value="collection"/></Option></data_defined_properties>'
           '<layer class="SimpleFill" enabled="1" pass="0" locked="0"><Option type="Map">'
           '<Option type="QString" name="color" value="0,0,0,0"/><Option type="QString" name="style" value="no"/>'
           '<Option type="QString" name="outline_color" value="230,60,20,255"/>'
           '<Option type="QString" name="outline_width" value="0.8"/></Option>'
           '<prop k="color" v="0,0,0,0"/><prop k="style" v="no"/><prop k="outline_color" v="230,60,20,255"/>'
           '<prop k="outline_width" v="0.8"/></layer></symbol></symbols></renderer-v2>\n'
           '<labeling type="simple"><settings calloutType="simple"><text-style fieldName="rank" fontSize="11" '
           'fontWeight="75" textColor="230,60,20,255" isExpression="0"><text-buffer bufferDraw="1" bufferSize="0.8" '
           'bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferOpacity="0.8"/></text-style>'
           '<placement placement="1"/></settings>'
           '</labeling>\n</qgis>\n')
    return write_text(style_path(path), "OUTPUT", qml)
