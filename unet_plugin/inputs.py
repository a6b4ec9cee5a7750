"""What a run of an algorithm is given, whatever runs it: resolved parameters (:class:`Inputs`),
a :class:`Feedback`, and the checks every run makes of them before any work (polygon layers,
every output against every input and each other).

The Processing glue and the command line differ only in how they resolve a parameter (a QGIS
layer or a path read with GDAL/OGR, a feature sink or an OGR file) — the :class:`Inputs` they
pass in; :mod:`.run` takes it from there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Protocol

from .core.errors import UserInputError

#: field types of tables written through :meth:`Inputs.write_table`
FIELD_TYPES = ("str", "int", "int64", "float")


@dataclass
class Feedback:
    """Where a run reports: progress (0–1), cancel flag, log lines and warnings."""

    progress: Callable[[float], None]
    is_canceled: Callable[[], bool]
    log: Callable[[str], None]
    warn: Callable[[str], None]


class Inputs(Protocol):  # pragma: no cover - an interface
    """A run's parameters, resolved by the Processing glue or the command line."""

    def value(self, key: str):
        """A number, boolean, enum name, path or list of band numbers; ``None`` for an empty optional one."""

    def raster(self, key: str) -> tuple[str, str] | None:
        """(GDAL source, CRS as WKT) of a raster parameter; ``None`` when an optional one is empty.
        Refuses (naming ``key``) a raster without a CRS."""

    def polygons(self, key: str, crs_wkt: str, field: str | None = None, field_key: str = "CLASS_FIELD") -> list | None:
        """(WKB, value of ``field`` or 1) of every polygon of a vector parameter, reprojected to ``crs_wkt``;
        ``None`` when an optional one is empty. Refuses a ``field`` the layer lacks, naming ``field_key``."""

    def extent(self, key: str, crs_wkt: str) -> tuple | None:
        """An extent parameter in ``crs_wkt`` as (xmin, ymin, xmax, ymax); ``None`` when empty."""

    def source(self, key: str) -> str | None:
        """Where an input parameter (raster, polygons, file, folder) comes from, as a path
        (``path|layername=NAME`` for a layer of a container), without reading it; ``None`` if empty."""

    def output(self, key: str) -> str | None:
        """The path of an output parameter; ``None`` when an optional one is skipped."""

    def write_table(self, key: str, fields: list[tuple[str, str]], rows: list[tuple], crs_wkt: str,
                    geometry) -> str:
        """Write rows ``(wkb or None, [attributes])`` to a table output; return where it went.
        ``geometry``: ``"polygon"`` (or True), ``"point"``, or None/False for a table without geometry."""


def null_value(value):
    """A field value as a plain Python value (QGIS's NULL and ``None`` → ``None``)."""
    if value is None:
        return None
    if hasattr(value, "isNull") and value.isNull():
        return None
    return value.value() if hasattr(value, "value") and not isinstance(value, (str, int, float)) else value


POLYGON_TYPES = ("POLYGON", "MULTIPOLYGON", "CURVEPOLYGON", "MULTISURFACE")
POINT_TYPES = ("POINT", "MULTIPOINT")


def geometry_names(items) -> set[str]:
    from osgeo import ogr

    return {ogr.GeometryTypeToName(ogr.GT_Flatten(ogr.CreateGeometryFromWkb(w).GetGeometryType())).upper().replace(" ", "")
            for w, _ in items or ()}


def refuse_geometry(key: str, names: set[str], wanted: str) -> None:
    raise UserInputError(key, f"the layer holds {', '.join(sorted(n.lower() for n in names))} geometries, not {wanted}. "
                              "Choose such a layer (in a GeoPackage of several layers: path.gpkg|layername=NAME).")


def polygons_of(inp: Inputs, key: str, crs: str, field: str | None = None) -> list | None:
    """:meth:`Inputs.polygons`, refusing layers of points or lines (burnt as single pixels, they
    would train on nothing), e.g. a GeoPackage whose first layer is not the polygons."""
    items = inp.polygons(key, crs, field)
    names = geometry_names(items)
    if names - set(POLYGON_TYPES):
        refuse_geometry(key, names - set(POLYGON_TYPES), "polygons")
    return items


#: input kinds that are files or folders an output must not write over
SOURCE_KINDS = ("raster", "polygons", "features", "file", "folder")


def output_file(value) -> str | None:
    """An output parameter's value as a file path; ``None`` when skipped or not a file (a memory
    layer, a database table: QGIS writes those)."""
    if not isinstance(value, str) or not value or value == "TEMPORARY_OUTPUT":
        return None
    if value.split(":", 1)[0].lower() in ("memory", "postgres", "postgis", "mssql", "oracle", "spatialite", "ogr", "hana"):
        return None
    return value


def check_outputs(spec, inp: Inputs) -> None:
    """Every check of every output, before any work: no output writes over an input or another
    output, each can be written (folder, permission), in a format that keeps it; partial files of
    killed runs beside them are removed."""
    from .core.layers import remove_partial_layers
    from .core.outputs import check_aliases, remove_leftovers, split_layer
    from .core.paths import check_output_file, check_output_format

    inputs = {p.key: inp.source(p.key) for p in spec.params if p.kind in SOURCE_KINDS}
    outputs = {p.key: output_file(inp.output(p.key)) for p in spec.params if p.is_output}
    check_aliases(inputs, outputs)
    for p in spec.params:
        path = outputs.get(p.key)
        if not path:
            continue
        file = split_layer(path)[0]
        if p.kind == "folder_out":
            if os.path.exists(file) and not os.path.isdir(file):
                raise UserInputError(p.key, f"'{file}' is a file, not a folder; choose a folder.")
            parent = os.path.dirname(os.path.abspath(file))
            remove_leftovers(parent)
            if os.path.isdir(file):
                remove_leftovers(file)
            continue
        check_output_file(file, p.key)
        check_output_format(path, p.key, p.kind)
        remove_leftovers(os.path.dirname(os.path.abspath(file)))
        if os.path.exists(file) and os.path.splitext(file)[1].lower() == ".gpkg":
            remove_partial_layers(file)
