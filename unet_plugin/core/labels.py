"""Turn labels (class polygons or a classified raster) into a label grid aligned with the image."""

from __future__ import annotations

import numpy as np
from osgeo import gdal, ogr

from .errors import UserInputError
from .raster import RasterInfo, open_raster, window_bounds
from .styles import default_color
from .windows import Window

CODE_FIELD = "code"


def class_codes(values, parameter: str = "CLASS_FIELD") -> tuple[dict, list[dict]]:
    """Map the class field's values to label codes.

    Integer values must be codes 1–254 and are kept; text values are given codes
    1, 2, … in sorted order, their names kept. ``None`` values are skipped.

    Returns:
        ``(mapping, classes)``: value → code, and class dicts (value, name, color).
    """
    present = {v for v in values if v is not None and v != ""}
    if not present:
        raise UserInputError(parameter, "the class field has no values; choose a field that holds the classes.")
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if numeric:
        bad = sorted(v for v in present if v != int(v) or not 1 <= v <= 254)
        if bad:
            raise UserInputError(
                parameter,
                f"class codes must be whole numbers from 1 to 254 (0 is background, 255 is "
                f"'ignore'); found {bad[:5]}. Recode the field or use a text field of class names.",
            )
        mapping = {v: int(v) for v in present}
        classes = [{"value": c, "name": f"class {c}", "color": default_color(c)} for c in sorted(set(mapping.values()))]
        return mapping, classes
    names = sorted({str(v) for v in present})
    if len(names) > 254:
        raise UserInputError(parameter, f"{len(names)} class names found; at most 254 classes are possible.")
    code_of = {n: i + 1 for i, n in enumerate(names)}
    mapping = {v: code_of[str(v)] for v in present}
    classes = [{"value": code_of[n], "name": n, "color": default_color(code_of[n])} for n in names]
    return mapping, classes


def _create_like(path: str, info: RasterInfo, window: Window, fill: int) -> gdal.Dataset:
    gt = info.geotransform
    ds = gdal.GetDriverByName("GTiff").Create(
        path, window.width, window.height, 1, gdal.GDT_Byte,
        ["TILED=YES", "COMPRESS=DEFLATE", "SPARSE_OK=TRUE"],
    )
    ds.SetGeoTransform((gt[0] + window.col * gt[1], gt[1], 0, gt[3] + window.row * gt[5], 0, gt[5]))
    ds.SetProjection(info.crs_wkt)
    ds.GetRasterBand(1).Fill(fill)
    return ds


def _vector_layer(path: str, parameter: str):
    src = ogr.Open(path)
    if src is None or src.GetLayerCount() == 0:
        raise UserInputError(parameter, f"cannot read polygons from '{path}'")
    return src, src.GetLayer(0)


def burn_polygons(path: str, out_path: str, info: RasterInfo, window: Window, fill: int, parameter: str) -> int:
    """Rasterise polygons (already in the raster's CRS, field ``code``) onto the window's grid.

    Pixels whose centre lies in a polygon get its code; others keep ``fill``.

    Returns:
        The number of polygons that overlap the window.
    """
    src, layer = _vector_layer(path, parameter)
    xmin, ymin, xmax, ymax = window_bounds(info.geotransform, window)
    layer.SetSpatialFilterRect(xmin, ymin, xmax, ymax)
    count = layer.GetFeatureCount()
    ds = _create_like(out_path, info, window, fill)
    if count:
        gdal.RasterizeLayer(ds, [1], layer, options=[f"ATTRIBUTE={CODE_FIELD}"])
    ds.FlushCache()
    ds = None
    src = None
    return count


def burn_mask(path: str, out_path: str, info: RasterInfo, window: Window, parameter: str = "MASK",
              all_touched: bool = False) -> int:
    """Rasterise MASK polygons: 1 inside, 0 outside (``all_touched``: every pixel a polygon touches).
    Returns polygons overlapping the window."""
    src, layer = _vector_layer(path, parameter)
    xmin, ymin, xmax, ymax = window_bounds(info.geotransform, window)
    layer.SetSpatialFilterRect(xmin, ymin, xmax, ymax)
    count = layer.GetFeatureCount()
    ds = _create_like(out_path, info, window, 0)
    if count:
        gdal.RasterizeLayer(ds, [1], layer, burn_values=[1], options=["ALL_TOUCHED=TRUE"] if all_touched else [])
    ds.FlushCache()
    return count


def raster_classes(path: str, parameter: str = "LABEL_RASTER", keep_zero: bool = False) -> list[dict]:
    """Classes of a classified raster: its values (1–254; 0 too with ``keep_zero``), with the names
    and colours it carries.

    Values are found block by block, so memory does not grow with the raster.
    Names come from the raster attribute table or category names, colours from
    the colour table; missing ones get defaults.
    """
    ds = open_raster(path, parameter)
    band = ds.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    bx, by = band.GetBlockSize()
    by = max(by, 256)
    present: set = set()
    for row in range(0, ds.RasterYSize, by):
        h = min(by, ds.RasterYSize - row)
        a = band.ReadAsArray(0, row, ds.RasterXSize, h)
        if nodata is not None:
            a = a[a != nodata]
        if a.dtype.kind == "f":
            a = a[np.isfinite(a)]
        if a.size and a.min() >= 0 and a.max() <= 255 and (a.dtype.kind in "iu" or np.array_equal(a, np.floor(a))):
            present.update(np.nonzero(np.bincount(a.astype(np.int64).ravel(), minlength=256))[0].tolist())
        else:  # values a label raster should not have; found exactly so the error can name them
            present.update(np.unique(a).tolist())
    if not keep_zero:
        present.discard(0)
    bad = sorted(v for v in present if v != int(v) or not (0 if keep_zero else 1) <= v <= 254)
    if bad:
        raise UserInputError(
            parameter,
            f"class values must be whole numbers from 1 to 254 (0 background, nodata unknown); "
            f"found {bad[:5]}. Reclassify the raster first.",
        )
    if not present:
        raise UserInputError(parameter, "the label raster holds no class values (only 0 or nodata).")
    names: dict[int, str] = {}
    colors: dict[int, list[int]] = {}
    rat = band.GetDefaultRAT()
    if rat is not None and rat.GetRowCount():
        usages = {rat.GetUsageOfCol(i): i for i in range(rat.GetColumnCount())}
        vcol = usages.get(gdal.GFU_MinMax, usages.get(gdal.GFU_Min))
        ncol = usages.get(gdal.GFU_Name)
        for r in range(rat.GetRowCount()):
            value = rat.GetValueAsInt(r, vcol) if vcol is not None else r
            if ncol is not None:
                names[value] = rat.GetValueAsString(r, ncol)
            if all(u in usages for u in (gdal.GFU_Red, gdal.GFU_Green, gdal.GFU_Blue)):
                colors[value] = [rat.GetValueAsInt(r, usages[u]) for u in (gdal.GFU_Red, gdal.GFU_Green, gdal.GFU_Blue)]
    for i, n in enumerate(band.GetCategoryNames() or []):
        if n and i not in names:
            names[i] = n
    table = band.GetColorTable()
    if table is not None:
        for v in present:
            if int(v) < table.GetCount() and int(v) not in colors:
                colors[int(v)] = list(table.GetColorEntry(int(v))[:3])
    return [
        {"value": int(v), "name": names.get(int(v), f"class {int(v)}"), "color": colors.get(int(v), default_color(int(v)))}
        for v in sorted(present)
    ]


def warp_label_raster(path: str, out_base: str, info: RasterInfo, window: Window, fill: int, parameter: str = "LABEL_RASTER") -> str:
    """Resample a classified raster (nearest neighbour) onto the window's grid.

    Label-raster nodata and pixels it does not cover become ``fill`` (the export passes 255:
    unknown, not background). A label
    raster already on the image's grid is not resampled: a virtual raster of
    the window is written instead (no pixel copied), with its nodata kept for
    :func:`label_values` to map.

    Returns:
        The path written: ``out_base`` + ``.vrt`` or ``.tif``.
    """
    src = open_raster(path, parameter)
    if not src.GetProjection():
        raise UserInputError(parameter, "the label raster has no coordinate reference system; assign one first.")
    from .raster import same_crs

    if (src.RasterXSize, src.RasterYSize) == (info.width, info.height) and same_grid(src.GetGeoTransform(), info) \
            and same_crs(src.GetProjection(), info.crs_wkt):
        gdal.Translate(out_base + ".vrt", src, format="VRT", srcWin=[window.col, window.row, window.width, window.height])
        return out_base + ".vrt"
    _check_overlap(src, info, window, parameter)
    # resampled onto the window's own grid, in the image's row and column order (south-up too)
    out_path = out_base + ".tif"
    src_nodata = src.GetRasterBand(1).GetNoDataValue()
    dst = _create_like(out_path, info, window, fill)
    gdal.Warp(dst, src, resampleAlg="near", srcNodata=src_nodata, warpOptions=[f"INIT_DEST={fill}"])
    dst.FlushCache()
    dst = None
    return out_path


def _check_overlap(src, info: RasterInfo, window: Window, parameter: str) -> None:
    """Refuse a label or reference raster that lies entirely beside the area (wrong place or CRS), before any work."""
    from osgeo import osr

    gt = src.GetGeoTransform()
    xs = [gt[0] + c * gt[1] + r * gt[2] for c in (0, src.RasterXSize) for r in (0, src.RasterYSize)]
    ys = [gt[3] + c * gt[4] + r * gt[5] for c in (0, src.RasterXSize) for r in (0, src.RasterYSize)]
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(src.GetProjection())
    b.ImportFromWkt(info.crs_wkt)
    for s in (a, b):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    try:
        x0, y0, x1, y1 = osr.CoordinateTransformation(a, b).TransformBounds(min(xs), min(ys), max(xs), max(ys), 21)
    except RuntimeError:  # not transformable: let the warp decide
        return
    wx0, wy0, wx1, wy1 = window_bounds(info.geotransform, window)
    if x1 <= wx0 or x0 >= wx1 or y1 <= wy0 or y0 >= wy1:
        raise UserInputError(parameter, "the raster does not overlap the imagery (or EXTENT): it lies elsewhere. Check "
                                        "that it covers the same area and that its coordinate reference system is right.")


def same_grid(gt: tuple, info: RasterInfo, tolerance: float = 0.01) -> bool:
    """Whether geotransform ``gt`` puts every pixel of ``info``'s raster within ``tolerance`` pixels of the image's.

    Checked at the four corners in pixel units, so the test does not loosen with the size of the
    coordinates (a relative tolerance on map coordinates would pass metres of offset at UTM northings).
    """
    img = info.geotransform
    for col, row in ((0, 0), (info.width, 0), (0, info.height), (info.width, info.height)):
        x_img, y_img = img[0] + col * img[1] + row * img[2], img[3] + col * img[4] + row * img[5]
        x_src, y_src = gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]
        if abs(x_src - x_img) > tolerance * abs(img[1]) or abs(y_src - y_img) > tolerance * abs(img[5]):
            return False
    return True


def read_polygons(path: str, parameter: str) -> list[tuple[bytes, int]]:
    """``(wkb, code)`` of every polygon written by :func:`write_polygons`, in the order written."""
    src, layer = _vector_layer(path, parameter)
    out = [(f.GetGeometryRef().ExportToWkb(), f.GetField(CODE_FIELD)) for f in layer if f.GetGeometryRef() is not None]
    src = None
    return out


def write_polygons(path: str, crs_wkt: str, polygons) -> int:
    """Write ``(wkb, code)`` pairs as a GeoPackage layer with an integer field ``code``.

    Returns:
        The number of polygons written.
    """
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = ds.CreateLayer("polygons", srs, ogr.wkbMultiPolygon)
    layer.CreateField(ogr.FieldDefn(CODE_FIELD, ogr.OFTInteger))
    n = 0
    layer.StartTransaction()
    for wkb, code in polygons:
        feat = ogr.Feature(layer.GetLayerDefn())
        feat.SetGeometry(ogr.ForceToMultiPolygon(ogr.CreateGeometryFromWkb(bytes(wkb))))
        feat.SetField(CODE_FIELD, int(code))
        layer.CreateFeature(feat)
        n += 1
    layer.CommitTransaction()
    ds = None
    return n


def label_values(raw: np.ndarray, nodata, fill: int) -> np.ndarray:
    """Label codes (uint8) from a label window: its nodata and non-finite values become ``fill``."""
    unknown = np.zeros(raw.shape, dtype=bool)
    if nodata is not None:
        unknown |= raw == nodata
    if raw.dtype.kind == "f":
        unknown |= ~np.isfinite(raw)
    out = np.where(unknown, 0, raw).astype(np.uint8)
    out[unknown] = fill
    return out
