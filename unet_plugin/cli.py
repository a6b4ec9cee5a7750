"""The algorithms without QGIS: ``python -m unet_plugin ALGORITHM KEY=VALUE ...``.

Keys, kinds, defaults, enum names and help come from :mod:`.params` (the declarations QGIS's
dialogs are built from); the run itself is :mod:`.run`, as in QGIS. Rasters are read with GDAL,
vector layers with OGR (``path`` or ``path|layername=NAME``), extents are written as
``qgis_process`` writes them (``xmin,xmax,ymin,ymax`` with an optional ``[EPSG:code]``).
Under ``torchrun`` Train U-Net trains data-parallel and Classify Raster splits the raster's rows
(:mod:`.ml.distributed`); rank 0 prints the log.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import textwrap
import time

from . import params as P
from .core.errors import Canceled, UserInputError
from .inputs import Feedback
from .run import RUNNERS

USAGE = """usage: python -m unet_plugin ALGORITHM KEY=VALUE ...
       python -m unet_plugin ALGORITHM --help
       torchrun --nproc_per_node=N -m unet_plugin trainunet|classifyraster KEY=VALUE ...
       python -m unet_plugin install [--wheels FOLDER] [--profile FOLDER] ...   (PyTorch for the plugin; --help)
       python -m unet_plugin download-wheels FOLDER [--platform TAG --python X.Y]

Runs the U-Net plugin's algorithms without QGIS, with the keys and values of qgis_process
(ids with or without "unet:"; --KEY=VALUE also works; --json prints the results as JSON)."""

KIND_NAMES = {
    "raster": "raster file", "bands": "band numbers, comma-separated", "polygons": "vector file (path or path|layername=NAME)",
    "features": "vector file of polygons or points (path or path|layername=NAME)",
    "field": "field name", "enum": "one of", "extent": "xmin,xmax,ymin,ymax [EPSG:code]", "int": "integer", "float": "number",
    "bool": "true/false", "folder": "folder", "file": "file", "folder_out": "output folder", "file_out": "output file",
    "raster_out": "output raster", "vector_out": "output vector file", "sink": "output vector file", "point_sink": "output point file", "table": "output table (.csv, .gpkg…)",
}


def algorithm_help(spec: P.Algorithm) -> str:
    """``--help`` of one algorithm, from its declaration."""
    out = [f"unet:{spec.id} — {spec.title}", ""]
    out += ["\n\n".join(textwrap.fill(par, 100) for par in spec.help.split("\n\n"))]
    out += ["", "Parameters:"]
    for p in spec.params:
        kind = KIND_NAMES[p.kind] + (" " + ", ".join(p.options) if p.kind == "enum" else "")
        if p.kind in ("file", "file_out", "raster_out", "vector_out", "sink", "point_sink", "table") and p.extension:
            kind += f" (.{p.extension})"
        flags = []
        if p.default is not None and not p.is_output:
            flags.append(f"default {str(p.default).lower() if isinstance(p.default, bool) else p.default}")
        if p.minimum is not None or p.maximum is not None:
            flags.append(f"{'' if p.minimum is None else f'{p.minimum:g}'}–{'' if p.maximum is None else f'{p.maximum:g}'}")
        if p.optional:
            flags.append("optional")
        out.append(f"  {p.key}: {p.label} — {kind}" + (f" [{'; '.join(flags)}]" if flags else ""))
        out.append(textwrap.fill(p.help, 100, initial_indent="      ", subsequent_indent="      "))
    if spec.outputs:
        out += ["", "Results: " + ", ".join(o.key for o in spec.outputs)]
    if spec.distributed:
        out += ["", "Runs under torchrun (several processes, GPUs or machines)."]
    return "\n".join(out)


def overview() -> str:
    lines = [USAGE, "", "Algorithms:"]
    lines += [f"  {a.id:<22} {a.title}" for a in P.ALGORITHMS.values()]
    return "\n".join(lines)


def parse_arguments(spec: P.Algorithm, args: list[str]) -> dict[str, list[str]]:
    """``KEY=VALUE`` (or ``--KEY=VALUE``) arguments as key → values (a key may repeat, as for BANDS)."""
    keys = {p.key for p in spec.params}
    given: dict[str, list[str]] = {}
    for a in args:
        text = a[2:] if a.startswith("--") else a
        if "=" not in text:
            raise UserInputError(None, f"'{a}' is not KEY=VALUE. Parameters of {spec.id}: {', '.join(p.key for p in spec.params)}.")
        key, value = text.split("=", 1)
        key = key.strip().upper()
        if key not in keys:
            raise UserInputError(key, f"{spec.id} has no such parameter; it has {', '.join(p.key for p in spec.params)}.")
        given.setdefault(key, []).append(value)
    return given


class CommandLineInputs:
    """The :class:`.inputs.Inputs` of a command-line run: strings checked and converted per declaration."""

    def __init__(self, spec: P.Algorithm, given: dict[str, list[str]]):
        self.spec, self.given = spec, given
        for p in spec.params:  # everything that is only text is checked before any work
            if not p.optional and not p.is_output and p.default is None and not given.get(p.key):
                raise UserInputError(p.key, f"required ({p.label}); give {p.key}=…")
            if not p.optional and p.is_output and not given.get(p.key):
                raise UserInputError(p.key, f"required ({p.label}); give {p.key}=path")
            if p.kind in ("int", "float", "bool", "enum") and given.get(p.key):
                self.value(p.key)

    def _text(self, key: str) -> str | None:
        values = self.given.get(key)
        if not values or values[-1].strip() == "":
            return None
        return values[-1].strip()

    def value(self, key: str):
        p = self.spec.param(key)
        text = self._text(key)
        if p.kind == "bands":
            items = [v.strip() for vs in self.given.get(key, []) for v in vs.split(",") if v.strip()]
            try:
                return [int(v) for v in items] or None
            except ValueError:
                raise UserInputError(key, f"band numbers are whole numbers (e.g. {key}=3,2,1), not '{','.join(items)}'.") from None
        if text is None:
            return p.default
        if p.kind == "int":
            try:
                v = int(text)
            except ValueError:
                raise UserInputError(key, f"'{text}' is not a whole number.") from None
            return self._bounded(p, v)
        if p.kind == "float":
            try:
                v = float(text)
            except ValueError:
                raise UserInputError(key, f"'{text}' is not a number.") from None
            if not math.isfinite(v):
                raise UserInputError(key, f"'{text}' is not a finite number.")
            return self._bounded(p, v)
        if p.kind == "bool":
            low = text.lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise UserInputError(key, f"'{text}' is not true or false.")
        if p.kind == "enum":
            if text not in p.options:
                raise UserInputError(key, f"'{text}' is not one of {', '.join(p.options)} (values are names, not positions).")
            return text
        if p.kind in ("file", "folder"):
            return os.path.abspath(os.path.expanduser(text))
        return text

    @staticmethod
    def _bounded(p: P.Param, v):
        if (p.minimum is not None and v < p.minimum) or (p.maximum is not None and v > p.maximum):
            lo = "" if p.minimum is None else f"{p.minimum:g}"
            hi = "" if p.maximum is None else f"{p.maximum:g}"
            raise UserInputError(p.key, f"{v:g} is out of range ({lo}–{hi}).")
        return v

    def raster(self, key: str):
        from .core.raster import open_raster, raster_info

        text = self._text(key)
        if text is None:
            if self.spec.param(key).optional:
                return None
            raise UserInputError(key, "choose a raster layer.")
        info = raster_info(open_raster(os.path.expanduser(text), key), key)
        if not info.crs_wkt:
            raise UserInputError(key, "the raster has no coordinate reference system; assign one first.")
        return os.path.expanduser(text), info.crs_wkt

    def polygons(self, key: str, crs_wkt: str, field: str | None = None, field_key: str = "CLASS_FIELD"):
        from osgeo import ogr, osr

        text = self._text(key)
        if text is None:
            return None
        path, _, options = text.partition("|")
        layer_name = options.split("=", 1)[1] if options.lower().startswith("layername=") else None
        ds = ogr.Open(os.path.expanduser(path))
        if ds is None:
            raise UserInputError(key, f"'{path}' cannot be opened as a vector layer.")
        layer = ds.GetLayerByName(layer_name) if layer_name else ds.GetLayer(0)
        if layer is None:
            raise UserInputError(key, f"'{path}' has no layer '{layer_name}'." if layer_name else f"'{path}' has no layers.")
        if field and layer.GetLayerDefn().GetFieldIndex(field) < 0:
            raise UserInputError(field_key, "the field does not exist in the class polygons." if key == "LABELS"
                                 else "the field does not exist in the reference polygons.")
        target = osr.SpatialReference()
        target.ImportFromWkt(crs_wkt)
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        source = layer.GetSpatialRef()
        transform = None
        if source is not None and not source.IsSame(target):
            source = source.Clone()
            source.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            transform = osr.CoordinateTransformation(source, target)
        out = []
        for f in layer:
            g = f.GetGeometryRef()
            if g is None or g.IsEmpty():
                continue
            g = g.Clone()
            if transform is not None:
                g.Transform(transform)
            out.append((g.ExportToWkb(), f.GetField(field) if field else 1))
        ds = None
        return out

    def extent(self, key: str, crs_wkt: str):
        from osgeo import osr

        text = self._text(key)
        if text is None:
            return None
        crs_text = None
        if "[" in text:
            text, _, crs_text = text.partition("[")
            crs_text = crs_text.rstrip("]").strip()
        try:
            xmin, xmax, ymin, ymax = (float(v) for v in text.replace(" ", "").split(","))
        except ValueError:
            raise UserInputError(key, f"'{text}' is not an extent; write xmin,xmax,ymin,ymax (qgis_process's order), "
                                      "optionally followed by [EPSG:code].") from None
        if not all(math.isfinite(v) for v in (xmin, xmax, ymin, ymax)):
            raise UserInputError(key, f"'{text}' has a coordinate that is not a finite number.")
        if xmin >= xmax or ymin >= ymax:
            raise UserInputError(key, "xmin must be below xmax and ymin below ymax (the order is xmin,xmax,ymin,ymax).")
        if crs_text:
            source, target = osr.SpatialReference(), osr.SpatialReference()
            if source.SetFromUserInput(crs_text) != 0:
                raise UserInputError(key, f"'{crs_text}' is not a coordinate reference system (e.g. EPSG:32617).")
            target.ImportFromWkt(crs_wkt)
            for s in (source, target):
                s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            if not source.IsSame(target):
                xmin, ymin, xmax, ymax = osr.CoordinateTransformation(source, target).TransformBounds(xmin, ymin, xmax, ymax, 21)
        return xmin, ymin, xmax, ymax

    def output(self, key: str):
        text = self._text(key)
        if not text:
            return None
        file, _, options = text.partition("|")
        return os.path.abspath(os.path.expanduser(file)) + (f"|{options}" if options else "")

    def source(self, key: str):
        text = self._text(key)
        if text is None:
            return None
        file, _, options = text.partition("|")
        return os.path.abspath(os.path.expanduser(file)) + (f"|{options}" if options else "")

    def write_table(self, key, fields, rows, crs_wkt, geometry):
        from .core.layers import write_table

        return write_table(self.output(key), key, fields, rows, crs_wkt, geometry)


class Terminal:
    """Log lines on stdout, warnings and progress on stderr (a bar on a terminal, every 10 % otherwise)."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.tty, self.last, self.shown = quiet, sys.stderr.isatty(), -1, 0.0
        self.canceled = False

    def progress(self, fraction: float) -> None:
        if self.quiet:
            return
        pct = int(100 * min(max(fraction, 0.0), 1.0))
        if self.tty:
            if pct != self.last and time.monotonic() - self.shown > 0.2 or pct == 100:
                sys.stderr.write(f"\r{pct:3d}%")
                sys.stderr.flush()
                self.shown = time.monotonic()
        elif pct // 10 != self.last // 10:
            sys.stderr.write(f"{pct}%\n")
        self.last = pct

    def _line(self, stream, text):
        if self.quiet:
            return
        if self.tty and self.last >= 0:
            sys.stderr.write("\r")
        stream.write(text + "\n")
        stream.flush()

    def log(self, text: str) -> None:
        self._line(sys.stdout, text)

    def warn(self, text: str) -> None:
        self._line(sys.stderr, "Warning: " + text)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if not argv or argv[0] in ("-h", "--help", "help", "list"):
        print(overview())
        return 0
    if argv[0] in ("install", "download-wheels"):
        from .install import main as install_main

        return install_main(argv)
    alg_id = argv[0].split(":", 1)[1] if argv[0].startswith("unet:") else argv[0]
    spec = P.ALGORITHMS.get(alg_id.lower())
    if spec is None:
        print(f"Error: no algorithm '{argv[0]}'.\n\n{overview()}", file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(algorithm_help(spec))
        return 0
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    prefix = f"[rank {rank}] " if launched else ""
    if launched and not spec.distributed:
        print(f"Error: {spec.id} does not run under torchrun; run it as python -m unet_plugin {spec.id} … "
              "(one process).", file=sys.stderr)
        return 2
    term = Terminal(quiet=launched and rank != 0)
    _cancel_on_signals(term)
    from .core.outputs import quiet_close_errors

    quiet_close_errors()
    finished = False
    try:
        inputs = CommandLineInputs(spec, parse_arguments(spec, argv[1:]))
        if spec.needs_torch:
            from .install.deps import import_ml, missing_dependencies

            problem = missing_dependencies() or import_ml()
            if problem:
                print(f"{prefix}Error: this algorithm needs PyTorch: {problem}", file=sys.stderr)
                return 3
        if launched:
            from .ml import distributed

            backend = distributed.init(inputs.value("DEVICE"))
            term.log(f"torchrun: {distributed.world()} processes ({backend}).")
        outputs = RUNNERS[spec.id](inputs, Feedback(term.progress, lambda: term.canceled, term.log, term.warn))
        finished = True
    except UserInputError as exc:
        print(f"{prefix}Error: " + (f"{exc.parameter}: " if exc.parameter else "") + exc.message, file=sys.stderr)
        return 1
    except Canceled:
        print(f"{prefix}Canceled; this run's partial outputs were removed, earlier outputs are untouched.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{prefix}Stopped; this run's partial outputs were removed, earlier outputs are untouched.", file=sys.stderr)
        return 130
    finally:
        if launched:
            from .ml import distributed

            distributed.shutdown(together=finished)
    if term.tty and term.last >= 0 and not term.quiet:
        sys.stderr.write("\n")
    if term.canceled and not term.quiet:
        print(f"{prefix}Canceled; what was kept is listed below (training keeps its best epoch's model and report).",
              file=sys.stderr)
    if not term.quiet:
        if as_json:
            print(json.dumps({"results": outputs}, default=str))
        else:
            print("\nResults:")
            for k, v in outputs.items():
                print(f"{k}:\t{'' if v is None else v}")
    return 130 if term.canceled else 0


#: a second signal this long after the first stops at once (torchrun sends SIGTERM right after Ctrl-C's SIGINT)
HARD_STOP_AFTER = 2.0


def _cancel_on_signals(term: Terminal) -> None:
    """Ctrl-C (SIGINT) and SIGTERM (torchrun stopping its processes, a batch system's time limit) are
    QGIS's Cancel button: the run stops at its next check, training keeps its best epoch's model and
    writes its report, export and classification remove their partial files. A second signal, later,
    stops at once (partial files are still removed; earlier outputs stay untouched)."""
    first = []

    def handler(signum, frame):
        now = time.monotonic()
        if not term.canceled:
            term.canceled = True
            first.append(now)
            term.warn("Canceling at the next step… (press Ctrl-C again to stop at once)")
            return
        if now - first[0] > HARD_STOP_AFTER:
            raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (embedded use)
            pass
