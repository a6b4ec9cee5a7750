"""GDAL and OGR outputs written through :mod:`.outputs`: rasters flushed with their errors and read
back whole, vector layers whole or not at all — in an existing GeoPackage only our layer."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager

from .errors import UserInputError
from .outputs import (
    PARTIAL_MARK,
    commit,
    discard,
    layer_name,
    partial_path,
    pid_alive,
    sidecars,
    split_layer,
    write_error,
)

#: formats that hold several layers: we write or replace our layer, never the file
CONTAINER_DRIVERS = ("GPKG", "SQLite")
_LAYER_MARK = PARTIAL_MARK.replace(".", "_").replace("-", "_")  # in layer names of a container


def close_raster(ds, key: str, path: str) -> None:
    """Flush a dataset opened for writing; any write error (disk full) is an error naming ``key``.

    GDAL reports errors of the final close only as "Exception ignored": everything is flushed here,
    where errors raise, and :func:`verify_raster` reads the file back after the close.
    """
    try:
        ds.FlushCache()
    except RuntimeError as exc:
        raise write_error(key, path, exc) from None


def verify_raster(path: str, key: str, target: str | None = None) -> None:
    """Read a written raster back whole (every block decodes): a truncated file is an error."""
    from osgeo import gdal

    try:
        ds = gdal.Open(path)
        for b in range(1, ds.RasterCount + 1):
            ds.GetRasterBand(b).Checksum()
        ds = None
    except RuntimeError as exc:
        raise write_error(key, target or path, exc) from None


@contextmanager
def vector_layer(target: str, key: str, driver: str, srs, geometry_type: int, options: list[str] | None = None):
    """Yield an empty OGR layer to fill; afterwards it is the output, whole or not at all.

    In a multi-layer container that exists already (a GeoPackage of the user's project) only the
    layer named by ``target`` (``path|layername=NAME``, else the file's name) is written or
    replaced; every other layer stays. Other formats are written to a partial file that replaces
    the target when complete.
    """
    from osgeo import ogr

    file, _ = split_layer(target)
    name = layer_name(target)
    if driver in CONTAINER_DRIVERS and os.path.exists(file):
        yield from _container_layer(file, name, key, srs, geometry_type)
        return
    tmp = partial_path(file)
    ds = None
    try:
        ds = ogr.GetDriverByName(driver).CreateDataSource(tmp)
        if ds is None:
            raise OSError(f"cannot create {tmp}")
        layer = ds.CreateLayer(name, srs, geometry_type, options or [])
        yield layer
        ds.FlushCache()
        ds = layer = None
        _verify_layer(tmp, name, key, file)
        for part in [tmp] + [s for s in sidecars(tmp) if os.path.exists(s) and not s.endswith((".qml", ".aux.xml"))]:
            suffix = part[len(os.path.splitext(tmp)[0]):]
            commit(part, os.path.splitext(file)[0] + suffix, key)
    except (OSError, RuntimeError) as exc:
        ds = None
        discard(tmp)
        raise write_error(key, file, exc) from None
    except BaseException:
        ds = None
        discard(tmp)
        raise


def _container_layer(file: str, name: str, key: str, srs, geometry_type: int):
    from osgeo import ogr

    temp_name = f"{name}{_LAYER_MARK}{os.getpid()}_{secrets.token_hex(4)}"
    try:
        ds = ogr.Open(file, 1)
    except RuntimeError as exc:
        ds, why = None, str(exc).splitlines()[0]
    else:
        why = "not a data source OGR can update"
    if ds is None:
        raise UserInputError(key, f"'{file}' exists but cannot be opened for writing ({why}); choose another file.")
    try:
        layer = ds.CreateLayer(temp_name, srs, geometry_type)
        yield layer
        ds.StartTransaction()
        for i in range(ds.GetLayerCount()):
            if ds.GetLayer(i).GetName() == name:
                ds.DeleteLayer(i)
                break
        layer.Rename(name)
        ds.CommitTransaction()
        ds.FlushCache()
        ds = layer = None
    except BaseException as exc:
        try:
            if ds is not None:
                for i in range(ds.GetLayerCount()):
                    if ds.GetLayer(i).GetName() == temp_name:
                        ds.DeleteLayer(i)
                        break
        except RuntimeError:
            pass
        ds = layer = None
        if isinstance(exc, (OSError, RuntimeError)):
            raise write_error(key, file, exc) from None
        raise


def remove_partial_layers(file: str) -> None:
    """Drop layers of killed runs (``NAME_unet_partial_PID_…``) from a container we write into."""
    from osgeo import ogr

    try:
        ds = ogr.Open(file, 1)
    except RuntimeError:
        return
    if ds is None:
        return
    for i in reversed(range(ds.GetLayerCount())):
        name = ds.GetLayer(i).GetName()
        if _LAYER_MARK in name:
            pid = name.split(_LAYER_MARK, 1)[1].split("_", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                ds.DeleteLayer(i)
    ds = None


def _verify_layer(path: str, name: str, key: str, target: str) -> None:
    from osgeo import ogr

    try:
        ds = ogr.Open(path)
        layer = ds.GetLayerByName(name) or ds.GetLayer(0)
        for _ in layer:
            pass
        ds = None
    except (RuntimeError, AttributeError) as exc:
        raise write_error(key, target, exc if isinstance(exc, RuntimeError) else RuntimeError("unreadable")) from None


OGR_FIELD_TYPES = {"str": "OFTString", "int": "OFTInteger", "int64": "OFTInteger64", "float": "OFTReal"}


def write_table(path: str, key: str, fields: list[tuple[str, str]], rows, crs_wkt: str, geometry) -> str:
    """Write rows ``(wkb or None, [attributes])`` as a layer — ``geometry`` ``"polygon"`` (or True),
    ``"point"``, or None/False for a table — whole or not at all; in an existing GeoPackage only this
    layer is written or replaced."""
    from osgeo import ogr, osr

    from .paths import vector_driver

    file = split_layer(path)[0]
    shape = {True: ogr.wkbPolygon, "polygon": ogr.wkbPolygon, "point": ogr.wkbPoint}.get(geometry, ogr.wkbNone)
    srs = None
    if shape != ogr.wkbNone:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
    driver = vector_driver(file, key)
    options = ["GEOMETRY=AS_WKT"] if driver == "CSV" and shape != ogr.wkbNone else []  # a CSV keeps geometries as WKT
    with vector_layer(path, key, driver, srs, shape, options) as layer:
        for name, kind in fields:
            layer.CreateField(ogr.FieldDefn(name, getattr(ogr, OGR_FIELD_TYPES[kind])))
        layer.StartTransaction()
        for wkb, attributes in rows:
            f = ogr.Feature(layer.GetLayerDefn())
            for i, v in enumerate(attributes):
                if v is not None and v == v:
                    f.SetField(i, v)
            if wkb is not None:
                f.SetGeometry(ogr.CreateGeometryFromWkb(wkb))
            layer.CreateFeature(f)
        layer.CommitTransaction()
    return path
