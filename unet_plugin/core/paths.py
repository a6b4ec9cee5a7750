"""Output paths checked before any work: a run that cannot write its result must not start."""

from __future__ import annotations

import os

from .errors import UserInputError


def check_output_file(path: str, parameter: str) -> None:
    """Refuse an output file path that is a folder, on a missing drive, or not writable.

    The folder is created when it is missing (as QGIS does for its own outputs).
    """
    from .outputs import split_layer

    if not path:
        raise UserInputError(parameter, "choose an output file.")
    path = split_layer(path)[0]
    if os.path.isdir(path):
        raise UserInputError(parameter, f"'{path}' is a folder; give a file name inside it (e.g. "
                                        f"'{os.path.join(path, 'result' + _suffix(parameter))}').")
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise UserInputError(parameter, f"cannot create folder '{folder}' ({exc.strerror}); is the drive there? "
                                            "Choose another location.") from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UserInputError(parameter, f"'{path}' cannot be written (no permission). Choose another location.")


def _suffix(parameter: str) -> str:
    return {"OUTPUT_MODEL": ".pt", "OUTPUT_REPORT": ".html", "OUTPUT_ONNX": ".onnx"}.get(parameter, ".tif")


#: class maps, confidences and probabilities: formats that keep every value and the georeferencing
RASTER_FORMATS = {"tif": "GTiff", "tiff": "GTiff", "": "GTiff", "img": "HFA"}
#: polygon outputs (class polygons, chip footprints): formats that keep polygons and attributes
POLYGON_EXTENSIONS = ("gpkg", "shp", "geojson", "json", "fgb", "sqlite", "gml", "kml", "tab", "")
#: tables without geometry: the polygon formats and spreadsheets/CSV
TABLE_EXTENSIONS = POLYGON_EXTENSIONS + ("csv", "xlsx", "ods", "dbf")


def raster_format(path: str, parameter: str) -> str:
    """The GDAL driver of a raster output, refusing formats that would change values (JPEG, PNG's
    palette rules, WebP) or write only a pointer to a temporary file (VRT)."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in RASTER_FORMATS:
        raise UserInputError(parameter, f"'.{ext}' cannot hold this raster exactly (lossy, no georeferencing, or only a "
                                        "pointer to other files); use .tif (GeoTIFF) or .img (Erdas Imagine).")
    return RASTER_FORMATS[ext]


def check_output_format(path: str, parameter: str, kind: str) -> None:
    """Refuse an output format that cannot hold the output, before any work."""
    from .outputs import split_layer

    file = split_layer(path)[0]
    ext = os.path.splitext(file)[1].lower().lstrip(".")
    if kind == "raster_out":
        raster_format(file, parameter)
    elif kind in ("vector_out", "sink", "point_sink", "table"):
        allowed = TABLE_EXTENSIONS if kind == "table" else POLYGON_EXTENSIONS + (("csv",) if "sink" in kind else ())
        if ext not in allowed:
            raise UserInputError(parameter, f"'.{ext}' cannot hold {'this table' if kind == 'table' else 'polygons'}; "
                                            f"use one of {', '.join('.' + e for e in allowed if e)}.")
        vector_driver(file, parameter)


def vector_driver(path: str, parameter: str = "OUTPUT_POLYGONS") -> str:
    """The OGR driver that writes ``path``'s extension (GeoPackage when there is none)."""
    from osgeo import ogr

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext in ("", "gpkg"):
        return "GPKG"
    for i in range(ogr.GetDriverCount()):
        d = ogr.GetDriver(i)
        meta = d.GetMetadata() or {}
        if meta.get("DCAP_VECTOR") == "YES" and meta.get("DCAP_CREATE") == "YES" and ext in (meta.get("DMD_EXTENSIONS") or "").split():
            return d.GetName()
    raise UserInputError(parameter, f"OGR cannot write '.{ext}' files; use .gpkg (GeoPackage), .shp, .geojson or .fgb.")
