"""Classify Raster: stream a raster through a trained U-Net in blended, overlapping tiles.

Memory is bounded by one strip of tiles of one column block (tile height ×
BLOCK_WIDTH), not by the raster's size. Reading and normalising run on one thread, writing on
another, so both overlap with the model's forward pass.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import secrets
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from osgeo import gdal

from ..core.errors import Canceled, UserInputError
from ..core.layers import close_raster, verify_raster
from ..core.outputs import (
    PARTIAL_MARK, check_aliases, commit, discard, partial_path, style_path, write_error, write_text,
)
from ..core.paths import check_output_file, check_output_format, raster_format
from ..core.raster import (
    check_bands, extent_window, gdal_cache_budget, open_raster, raster_info, read_window, same_crs, window_geotransform,
)
from ..core.styles import NODATA, apply_classes_to_band, classes_qml
from ..core.windows import Window, axis_origins
from . import distributed
from .modelfile import ModelFileError, load_model
from .train import pick_device

CONFIDENCE_NODATA = -1.0
BLOCK_WIDTH = 2048


@dataclass(frozen=True)
class ClassifyConfig:
    """Parameters of Classify Raster, as plain values (docs/parameters.md)."""

    input: str
    model: str
    output: str
    extent: tuple[float, float, float, float] | None = None
    tile_size: int = 0
    overlap: float = 25.0
    batch_size: int = 4
    tta: bool = False
    device: str = "auto"
    output_confidence: str | None = None
    output_probabilities: str | None = None
    min_area: int = 0  # pixels; regions of one class smaller than this are merged into their surroundings
    output_polygons: str | None = None
    precision: str = "auto"  # "auto": int8/bf16 where they draw the same map and run faster; "full": float32
    engine: str = "auto"  # CPU forward pass: "auto" (onnxruntime when installed), "onnxruntime", "torch"
    bands: list[int] | None = None  # the raster's bands in the model's order (None: by number, checked by name)
    block_width: int = 0  # columns per block (0: BLOCK_WIDTH); memory grows with it, not with the raster


@dataclass
class ClassifyResult:
    output: str
    confidence: str | None
    classes: list[dict]
    tiles_run: int
    tiles_skipped: int
    seconds: float
    class_shares: dict
    warnings: list[str]
    engine: str = "torch"


def blend_weights(height: int, width: int) -> np.ndarray:
    """Tile weights that fall off linearly towards the edges (never zero).

    ``w(i) = max(min(i + 0.5, n - i - 0.5) / (n / 2), 0.01)`` along each axis,
    the 2-D weight their product: a pixel near a tile's edge counts little
    where a neighbouring tile sees it from its centre, so overlaps leave no seams.
    """
    def ramp(n):
        i = np.arange(n, dtype=np.float32)
        return np.maximum(np.minimum(i + 0.5, n - i - 0.5) / (n / 2), 0.01)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def tta_forward(model, x: torch.Tensor) -> torch.Tensor:
    """Mean softmax over the 8 flips/90° rotations of ``x``."""
    total = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in range(4):
            p = torch.softmax(model(torch.rot90(xf, k, (-2, -1))).float(), 1)
            p = torch.rot90(p, -k, (-2, -1))
            p = p.flip(-1) if flip else p
            total = p if total is None else total + p
    return total / 8


ONNX_CACHE_FILES = 8  # exported graphs kept on disk (least recently used go first)
_SESSIONS: "OrderedDict[tuple[str, int], OnnxForward]" = OrderedDict()  # (key, threads) → session kept in this process
_SESSIONS_KEPT = 2
_SESSIONS_LOCK = threading.Lock()


def onnx_cache_dir() -> str:
    """Where exported graphs are kept: $UNET_CACHE_DIR, else the user's cache folder."""
    base = os.environ.get("UNET_CACHE_DIR")
    if not base:
        root = os.environ.get("LOCALAPPDATA") if os.name == "nt" else None
        root = root or os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(root, "qgis-unet")
    return os.path.join(base, "onnx")


def _export_graph(model: torch.nn.Module, channels: int, height: int, width: int, path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.to(memory_format=torch.contiguous_format).eval(), torch.zeros(1, channels, height, width),
                          path, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)


class OnnxForward:
    """The model's forward pass in onnxruntime: the same logits, about 1.3× faster on a CPU.

    Exporting the graph takes seconds, so it is done once per model file and tile shape: the
    graph is kept in :func:`onnx_cache_dir` (keyed by the digest of the model file's bytes,
    the tile shape and the PyTorch version; the least recently used beyond
    ONNX_CACHE_FILES are removed) and the prepared session in this process (batch runs reuse it).
    Without a writable cache folder the graph goes to a temporary folder removed after loading.
    Called like the model: torch tensor in, logits out.
    """

    def __init__(self, session, version: str, source: str, path: str | None = None):
        self.session, self.version, self.source, self.path = session, version, source, path

    @staticmethod
    def key(model_digest: str, channels: int, height: int, width: int) -> str:
        """The graph's cache key: the model file's content digest, tile shape, PyTorch.

        The digest of the bytes, not path, size and modification time: models of one
        architecture have identical sizes, and ``cp -p``, ``rsync -a`` or a coarse file system
        clock keep the time, so a replaced model would run the old model's graph.
        """
        ident = f"{model_digest}|{channels}|{height}|{width}|{torch.__version__}|2"
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]

    @classmethod
    def is_cached(cls, model_digest: str, channels: int, height: int, width: int) -> bool:
        """Whether the graph is ready without an export (kept in this process or on disk)."""
        key = cls.key(model_digest, channels, height, width)
        with _SESSIONS_LOCK:
            if any(k == key for k, _ in _SESSIONS):
                return True
        return os.path.isfile(os.path.join(onnx_cache_dir(), key + ".onnx"))

    @classmethod
    def prepare(cls, model: torch.nn.Module, model_digest: str, channels: int, height: int, width: int, threads: int) -> "OnnxForward":
        import onnxruntime as ort

        key = cls.key(model_digest, channels, height, width)
        with _SESSIONS_LOCK:
            hit = _SESSIONS.get((key, threads))
            if hit is not None:
                _SESSIONS.move_to_end((key, threads))
                return cls(hit.session, hit.version, "kept in memory", hit.path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # no busy-waiting between batches: the reader and writer threads need those cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(path):
            return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        folder = onnx_cache_dir()
        cached = os.path.join(folder, key + ".onnx")
        sess = None
        source = "cached graph"
        graph = cached
        if os.path.isfile(cached):
            try:
                sess = session(cached)
                os.utime(cached)  # recently used
            except Exception:  # damaged file: export again
                sess = None
        if sess is None:
            source = "exported"
            try:
                os.makedirs(folder, exist_ok=True)
                partial = f"{cached}.{os.getpid()}.{threading.get_ident()}.partial"
                try:
                    _export_graph(model, channels, height, width, partial)
                    os.replace(partial, cached)  # whole files only: a concurrent run never sees half a graph
                finally:
                    if os.path.exists(partial):
                        os.remove(partial)
                sess = session(cached)
                _prune(folder)
            except OSError:  # no writable cache: a temporary export
                graph = None
                with tempfile.TemporaryDirectory(prefix="unet-onnx-") as tmp:
                    path = os.path.join(tmp, "model.onnx")
                    _export_graph(model, channels, height, width, path)
                    sess = session(path)
        runner = cls(sess, ort.__version__, source, graph)
        with _SESSIONS_LOCK:
            _SESSIONS[(key, threads)] = runner
            while len(_SESSIONS) > _SESSIONS_KEPT:
                _SESSIONS.popitem(last=False)
        return runner

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"input": x.contiguous().numpy()})[0]
        return torch.from_numpy(out)


def _prune(folder: str) -> None:
    """Keep the ONNX_CACHE_FILES most recently used graphs."""
    try:
        files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".onnx")]
        files.sort(key=lambda f: os.stat(f).st_mtime, reverse=True)
        for f in files[ONNX_CACHE_FILES:]:
            os.remove(f)
    except OSError:  # another run pruned it first
        pass


def forward_engine(model, meta: dict, config: ClassifyConfig, device: torch.device, th: int, tw: int, n_tiles: int, log,
                   calibration=None):
    """The callable that runs the model on a batch, and its name for the log.

    On the CPU, onnxruntime when it is installed and worth its start-up (the graph is cached
    already, or there are enough tiles to repay a second or two of export) and the tile shape
    survives TTA's rotations; otherwise PyTorch (channels-last on the CPU, half precision on CUDA).
    """
    channels = int(meta["in_channels"])
    # under torchrun rank 0's answer counts: a graph cached a moment ago by another process must not
    # make one process run another engine (the map must equal a single process's)
    if distributed.agree(device.type == "cpu" and config.engine in ("auto", "onnxruntime") and (th == tw or not config.tta)
                         and (n_tiles >= 16 or config.engine == "onnxruntime"
                              or OnnxForward.is_cached(meta["file_sha256"], channels, th, tw))):
        try:
            t0 = time.perf_counter()
            runner = OnnxForward.prepare(model, meta["file_sha256"], channels, th, tw, torch.get_num_threads())
            log(f"Model prepared for onnxruntime in {time.perf_counter() - t0:.1f} s ({runner.source}).")
            return _faster(runner, f"onnxruntime {runner.version}", model, meta, config, th, tw, n_tiles, log,
                           calibration, runner.path)
        except ImportError:
            if config.engine == "onnxruntime":
                raise UserInputError("DEVICE", "onnxruntime is not installed; install it with pip or use PyTorch.") from None
            log("Tip: with onnxruntime installed (pip install onnxruntime), classification on the CPU is about 1.3× "
                "faster, and PRECISION=auto can use int8 where it draws the same map (another 1.35× end to end, measured "
                "on an AVX2 CPU).")
        except Exception as exc:  # an operator the exporter cannot handle: PyTorch still works
            log(f"onnxruntime not used ({type(exc).__name__}: {exc}); classifying with PyTorch.")
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
        forward = (lambda x: model(x.contiguous(memory_format=torch.channels_last)))
        return _faster(forward, f"PyTorch {torch.__version__.split('+')[0]}", model, meta, config, th, tw, n_tiles, log,
                       calibration, None)
    if config.precision == "full":
        return (lambda x: model(x)), f"PyTorch {torch.__version__.split('+')[0]} (CUDA, float32)"

    def cuda_forward(x):
        with torch.autocast("cuda", dtype=torch.float16):
            return model(x).float()
    return cuda_forward, f"PyTorch {torch.__version__.split('+')[0]} (CUDA, half precision)"


def _faster(forward, name, model, meta, config, th, tw, n_tiles, log, calibration, graph):
    """With PRECISION=auto on a CPU, a faster arithmetic that draws the same map (:mod:`.inference_precision`)."""
    if config.precision != "auto" or calibration is None or (config.tta and th != tw):
        if config.precision == "full":
            log("Precision: float32 throughout (PRECISION=full).")
        return forward, name
    from . import inference_precision

    tiles, masks = calibration()
    return inference_precision.choose(forward, name, model, meta, th, tw, torch.get_num_threads(), tiles, masks,
                                      n_tiles, graph, log)


_GENERIC_BAND = re.compile(r"^band[ _]?\d+$", re.IGNORECASE)


def _informative(name: str) -> bool:
    """A band name that says what the band is ("red", "B08"), not only where it is ("Band 3")."""
    return bool(name) and not _GENERIC_BAND.match(name.strip())


def model_bands(meta: dict, info, chosen: list[int] | None = None) -> list[int]:
    """The raster's bands to feed the model, in its order: BANDS when given, else the training bands
    by number (on a raster like the training raster) or all bands when the counts match; band names
    are compared where both sides have real ones (a raster with the bands in another order is an
    error, not a silent wrong map)."""
    wanted = [int(b["index"]) for b in meta["bands"]]
    names = [str(b.get("name") or "") for b in meta["bands"]]
    n, count = len(wanted), info.band_count
    expected = ", ".join(f"{i + 1}: {nm or 'band ' + str(w)}" for i, (w, nm) in enumerate(zip(wanted, names)))
    if chosen:
        chosen = check_bands(chosen, count, "BANDS")
        if len(chosen) != n:
            raise UserInputError("BANDS", f"the model takes {n} bands, in this order: {expected}; {len(chosen)} were given.")
        return chosen
    source_count = int(meta.get("source_band_count") or 0)
    if max(wanted) <= count and source_count in (0, count):
        picked = wanted
    elif count == n:
        picked = list(range(1, n + 1))
    else:
        raise UserInputError(
            "BANDS", f"the model takes {n} bands, in this order: {expected}; the raster has {count}. Give BANDS with the "
            f"raster's band numbers in the model's order (e.g. BANDS={','.join(str(b) for b in _by_name(names, info) or wanted[:count])}).")
    have = [info.band_names[b - 1] for b in picked]
    clash = [(i, m, h) for i, (m, h) in enumerate(zip(names, have)) if _informative(m) and _informative(h) and m.strip().lower() != h.strip().lower()]
    if clash:
        i, m, h = clash[0]
        hint = _by_name(names, info)
        raise UserInputError(
            "BANDS", f"the raster's bands do not match the model's: model band {i + 1} is '{m}', the raster gives '{h}'. "
            f"The model takes, in this order: {expected}. "
            + (f"Give BANDS={','.join(map(str, hint))} to feed the raster's bands in that order." if hint else
               "Use imagery with those bands, or give BANDS to pick and order them."))
    return picked


def _by_name(names: list[str], info) -> list[int] | None:
    """The raster's band numbers holding the model's band names, in the model's order, if all are there."""
    lookup = {nm.strip().lower(): i + 1 for i, nm in enumerate(info.band_names) if _informative(nm)}
    found = [lookup.get(nm.strip().lower()) for nm in names]
    return found if names and all(found) else None


def check_input(ds, info, meta: dict, bands: list[int], warn: Callable[[str], None]) -> None:
    """Compare the raster with the model's training data; warn where results may suffer."""
    dtypes = {info.data_types[b - 1] for b in bands}
    if meta.get("data_type") and dtypes != {meta["data_type"]}:
        warn(f"The raster's data type ({', '.join(sorted(dtypes))}) differs from the training data's ({meta['data_type']}).")
    if meta.get("pixel_size"):
        ratio = info.pixel_size[0] / float(meta["pixel_size"][0])
        if ratio > 1.5 or ratio < 1 / 1.5:
            warn(f"The raster's pixel size ({info.pixel_size[0]:g}) is far from the training data's ({float(meta['pixel_size'][0]):g}); "
                 "resample the raster to the training resolution for reliable results.")
    if meta.get("crs") and not same_crs(meta["crs"], info.crs_wkt):
        warn("The raster's CRS differs from the training data's; results are fine if the pixel size matches.")
    # a coarse look at the values: a raster scaled differently (0–1 vs 0–10000) would give garbage.
    # 16 windows of 64 px spread over the raster, not a decimated read of all of it (which GDAL does by
    # reading every pixel where there are no overviews: seconds on a large raster)
    side = 64
    xs = np.linspace(0, max(info.width - side, 0), 4).astype(int)
    ys = np.linspace(0, max(info.height - side, 0), 4).astype(int)
    sample = np.concatenate([
        ds.ReadAsArray(int(x), int(y), min(side, info.width), min(side, info.height), band_list=bands)
        .reshape(len(bands), -1) for y in ys for x in xs], axis=1).astype(np.float64)
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    for i, b in enumerate(bands):
        nd = info.nodata[b - 1]
        v = sample[i][np.isfinite(sample[i]) & ((sample[i] != nd) if nd is not None else True)]
        if v.size and abs(np.median(v) - mean[i]) > 5 * max(std[i], 1e-6):
            warn(f"Band {b}: values (median {np.median(v):.4g}) are far from the training data's (mean {mean[i]:.4g}, "
                 f"std {std[i]:.4g}); is the raster scaled the same way?")


def _create(path: str, width: int, height: int, gt, wkt: str, dtype: int, nodata: float, bands: int = 1) -> gdal.Dataset:
    ds = gdal.GetDriverByName("GTiff").Create(
        path, width, height, bands, dtype,
        ["TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2" if dtype == gdal.GDT_Byte else "PREDICTOR=1", "BIGTIFF=IF_SAFER",
         "INTERLEAVE=BAND"],
    )
    ds.SetGeoTransform(gt)
    ds.SetProjection(wkt)
    for b in range(bands):
        ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
    return ds


PROBABILITY_NODATA = 255  # probabilities are stored as round(p × 255), at most 254 (0.996), scale 1/255


def probability_bytes(prob: np.ndarray) -> np.ndarray:
    """Probabilities (k, h, w) as Byte: ``min(round(p × 255), 254)``, read back as value / 255 (GDAL scale)."""
    return np.minimum(np.rint(prob * 255.0), 254).astype(np.uint8)


def _finish_output(tmp: str, final: str, classes: list[dict] | None, key: str) -> None:
    """Style a finished partial GeoTIFF, read it back, and let it replace ``final`` (converted
    first where ``final`` is another format). Until then an earlier ``final`` is untouched."""
    if classes is not None:
        ds = gdal.Open(tmp, gdal.GA_Update)
        apply_classes_to_band(ds.GetRasterBand(1), classes)
        close_raster(ds, key, final)
        ds = None
    driver = raster_format(final, key)
    if driver != "GTiff":
        converted = partial_path(final)
        try:
            gdal.Translate(converted, tmp, format=driver)
        except RuntimeError as exc:
            discard(converted)
            raise write_error(key, final, exc) from None
        finally:
            discard(tmp)
        tmp = converted
    verify_raster(tmp, key, final)
    commit(tmp, final, key)
    if classes is not None:
        write_text(style_path(final), key, classes_qml(classes))


def classify(
    config: ClassifyConfig,
    progress: Callable[[float], None] = lambda f: None,
    is_canceled: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> ClassifyResult:
    """Run Classify Raster.

    Raises:
        UserInputError: bad parameters, a file that is not a model, mismatching bands.
        Canceled: the run was canceled; no output is left behind.
    """
    with gdal_cache_budget():
        return _classify(config, progress, is_canceled, log, warn)


def _classify(config: ClassifyConfig, progress, is_canceled, log, warn) -> ClassifyResult:
    t0 = time.time()
    warnings: list[str] = []

    def _warn(msg):
        warnings.append(msg)
        (warn or log)(msg)

    device = pick_device(config.device)
    try:
        model, meta = load_model(config.model, device)
    except ModelFileError as exc:
        raise UserInputError("MODEL", str(exc)) from None
    ds = open_raster(config.input, "INPUT")
    info = raster_info(ds, "INPUT")
    bands = model_bands(meta, info, config.bands)
    window = extent_window(info, config.extent)
    tile = int(config.tile_size or meta["chip_size"])
    if tile < 32 or tile % 32:
        raise UserInputError("TILE_SIZE", f"{tile} is not usable: the model needs a multiple of 32 (e.g. {max(32, round(tile / 32) * 32)}).")
    if not 0 <= config.overlap <= 75:
        raise UserInputError("OVERLAP", "must be a percentage from 0 to 75.")
    if config.batch_size < 1:
        raise UserInputError("BATCH_SIZE", "must be at least 1.")
    if config.min_area < 0:
        raise UserInputError("MIN_AREA", "must be 0 (off) or a number of pixels.")
    outputs = {"OUTPUT": config.output, "OUTPUT_CONFIDENCE": config.output_confidence,
               "OUTPUT_PROBABILITIES": config.output_probabilities, "OUTPUT_POLYGONS": config.output_polygons}
    check_aliases({"INPUT": config.input, "MODEL": config.model}, outputs)
    for key, path in outputs.items():
        if path:
            check_output_file(path, key)
            check_output_format(path, key, "vector_out" if key == "OUTPUT_POLYGONS" else "raster_out")
    check_input(ds, info, meta, bands, _warn)

    classes = meta["classes"]
    k = len(classes)
    lut = np.array([int(c["value"]) for c in classes], dtype=np.uint8)
    mean = np.array(meta["normalization"]["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.array(meta["normalization"]["std"], dtype=np.float32).reshape(-1, 1, 1)
    stride = max(1, tile - int(round(tile * config.overlap / 100)))
    th, tw = min(tile, window.height), min(tile, window.width)
    rows = axis_origins(window.height, tile, stride)
    cols = axis_origins(window.width, tile, stride)
    n_tiles = len(rows) * len(cols)
    # under torchrun each process finalises a band of rows [y0, y1) and runs every tile row touching it
    y0, y1 = row_range(rows, window.height, distributed.rank(), distributed.world())
    my_rows = [r for r in rows if r < y1 and r + th > y0]
    weights = torch.from_numpy(blend_weights(th, tw)).to(device)
    if config.precision not in ("auto", "full"):
        raise UserInputError("PRECISION", f"unknown precision '{config.precision}'; choose auto or full.")

    def read_tile(r: int, c: int):
        data, valid = read_window(ds, bands, Window(window.col + c, window.row + r, tw, th), info.nodata)
        x = (data.astype(np.float32) - mean) / std
        x[:, ~valid] = 0.0
        return x, valid

    def calibration():
        from .inference_precision import sample_tiles

        return sample_tiles(read_tile, rows, cols)

    forward, engine = forward_engine(model, meta, config, device, th, tw, n_tiles, log, calibration)
    log(f"Classifying {window.width}×{window.height} px in {n_tiles} tiles of {tw}×{th} px "
        f"(overlap {config.overlap:g} %, stride {stride} px) on {device} with {engine}; model {meta['backbone']}, {k} classes.")

    main = distributed.is_main()
    # rank 0 writes the whole raster; other processes their band of rows into part files it merges
    y_off = 0 if main else y0
    out_h = window.height if main else y1 - y0
    gt = window_geotransform(info.geotransform, Window(window.col, window.row + y_off, window.width, out_h))
    stamp = distributed.agree(f"{os.getpid()}-{secrets.token_hex(4)}")  # one run's partial names, on every process
    tmp_out = _part_name(config.output, distributed.rank(), stamp)
    tmp_conf = _part_name(config.output_confidence, distributed.rank(), stamp) if config.output_confidence else None
    tmp_prob = _part_name(config.output_probabilities, distributed.rank(), stamp) if config.output_probabilities else None
    others = [_part_name(p, r, stamp) for r in range(1, distributed.world()) for p in (config.output, config.output_confidence,
                                                                                       config.output_probabilities) if p and main]
    out_ds = conf_ds = prob_ds = None
    if out_h > 0:
        out_ds = _create(tmp_out, window.width, out_h, gt, info.crs_wkt, gdal.GDT_Byte, NODATA)
        conf_ds = _create(tmp_conf, window.width, out_h, gt, info.crs_wkt, gdal.GDT_Float32, CONFIDENCE_NODATA) if tmp_conf else None
    if tmp_prob and out_h > 0:
        prob_ds = _create(tmp_prob, window.width, out_h, gt, info.crs_wkt, gdal.GDT_Byte, PROBABILITY_NODATA, k)
        for b, c in enumerate(classes):
            band = prob_ds.GetRasterBand(b + 1)
            band.SetDescription(c["name"])
            band.SetScale(1.0 / 255.0)
            band.SetOffset(0.0)
    counts = np.zeros(256, dtype=np.int64)
    stop = threading.Event()
    failure: list[BaseException] = []

    # Column blocks bound the strip buffers by BLOCK_WIDTH, not the raster's width. A block
    # finalises columns [x0, x1) and runs every tile of the grid that touches them, so a pixel
    # gets exactly the tiles it gets without blocks (tiles across a boundary run in both blocks).
    block_width = max(int(config.block_width or BLOCK_WIDTH), tw)
    blocks = []
    for x0 in range(0, window.width, block_width):
        x1 = min(x0 + block_width, window.width)
        bcols = [c for c in cols if c < x1 and c + tw > x0]
        blocks.append((x0, x1, bcols[0], bcols[-1] + tw - bcols[0], bcols))
    tile_runs = max(len(my_rows) * sum(len(b[4]) for b in blocks), 1)  # tiles across block boundaries run twice

    def reader(q_in: queue.Queue):
        """Read one strip per tile row and block, normalise, cut into tiles."""
        try:
            for bi, (_, _, s0, bw, bcols) in enumerate(blocks):
                for r in my_rows:
                    if stop.is_set():
                        return
                    strip_win = Window(window.col + s0, window.row + r, bw, th)
                    data, valid = read_window(ds, bands, strip_win, info.nodata)
                    x = (data.astype(np.float32) - mean) / std
                    x[:, ~valid] = 0.0
                    tiles = [(c - s0, x[:, :, c - s0:c - s0 + tw], valid[:, c - s0:c - s0 + tw].any()) for c in bcols]
                    q_in.put((bi, r, tiles, valid))
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
        finally:
            q_in.put(None)

    def writer(q_out: queue.Queue):
        try:
            while True:
                item = q_out.get()
                if item is None:
                    break
                x, y, cls, conf, probs = item
                y -= y_off
                out_ds.GetRasterBand(1).WriteArray(cls, x, y)
                if conf_ds is not None:
                    conf_ds.GetRasterBand(1).WriteArray(conf, x, y)
                if prob_ds is not None:
                    for b in range(probs.shape[0]):
                        prob_ds.GetRasterBand(b + 1).WriteArray(probs[b], x, y)
        except (RuntimeError, OSError) as exc:  # disk full, a file system gone: a message, not a traceback
            failure.append(write_error("OUTPUT", config.output, exc))
        except BaseException as exc:
            failure.append(exc)

    q_in: queue.Queue = queue.Queue(maxsize=2)
    q_out: queue.Queue = queue.Queue(maxsize=4)
    threads = [threading.Thread(target=reader, args=(q_in,), daemon=True), threading.Thread(target=writer, args=(q_out,), daemon=True)]
    for t in threads:
        t.start()

    done = run = skipped = 0
    state = {"block": None}

    def start_block(bi: int):
        x0, x1, s0, bw, _ = blocks[bi]
        state.update(block=bi, prev=None, keep=(x0 - s0, x1 - s0), x0=x0,
                     acc=torch.zeros((k, th, bw), dtype=torch.float32, device=device),
                     wsum=torch.zeros((th, bw), dtype=torch.float32, device=device),
                     valid=np.zeros((th, bw), dtype=bool))

    def flush(nrows: int, y: int):
        """Finalise the first ``nrows`` rows of the block's strip buffers (raster row ``y``), those in [y0, y1)."""
        a, b = state["keep"]
        r0, r1 = max(y0 - y, 0), min(y1 - y, nrows)
        if r1 <= r0:
            return
        y += r0
        wsum = state["wsum"][r0:r1, a:b]
        prob = state["acc"][:, r0:r1, a:b] / wsum.clamp(min=1e-12)
        conf, idx = prob.max(0)
        cls = lut[idx.cpu().numpy()]
        ok = state["valid"][r0:r1, a:b] & (wsum > 0).cpu().numpy()
        cls[~ok] = NODATA
        counts[:] += np.bincount(cls.ravel(), minlength=256)
        conf_np = conf.cpu().numpy().astype(np.float32) if conf_ds is not None else None
        if conf_np is not None:
            conf_np[~ok] = CONFIDENCE_NODATA
        probs = None
        if prob_ds is not None:
            probs = probability_bytes(prob.cpu().numpy())
            probs[:, ~ok] = PROBABILITY_NODATA
        q_out.put((state["x0"], y, cls, conf_np, probs))

    try:
        with torch.inference_mode():
            while True:
                item = q_in.get()
                if item is None:
                    break
                bi, r, tiles, valid = item
                if bi != state["block"]:
                    if state["block"] is not None:
                        flush(th, state["prev"])
                    start_block(bi)
                acc, wsum, valid_buf, prev = state["acc"], state["wsum"], state["valid"], state["prev"]
                if prev is not None:  # rows [prev, r) are final: write them, shift the buffers
                    d = r - prev
                    flush(d, prev)
                    acc[:, : th - d] = acc[:, d:].clone()
                    acc[:, th - d:] = 0
                    wsum[: th - d] = wsum[d:].clone()
                    wsum[th - d:] = 0
                    valid_buf[: th - d] = valid_buf[d:]
                    valid_buf[th - d:] = False
                valid_buf[:] |= valid
                work = [(c, t) for c, t, has_data in tiles if has_data]
                skipped += len(tiles) - len(work)
                for b in range(0, len(work), config.batch_size):
                    if is_canceled():
                        raise Canceled()
                    chunk = work[b:b + config.batch_size]
                    x = torch.from_numpy(np.stack([t for _, t in chunk])).to(device)
                    prob = tta_forward(forward, x) if config.tta else torch.softmax(forward(x).float(), 1)
                    for (c, _), p in zip(chunk, prob):
                        acc[:, :, c:c + tw] += p * weights
                        wsum[:, c:c + tw] += weights
                    run += len(chunk)
                    progress((done + b + len(chunk)) / tile_runs)
                done += len(tiles)
                progress(done / tile_runs)
                if failure:
                    break
                state["prev"] = r
            if is_canceled():
                raise Canceled()
            if failure:
                raise failure[0]
            if state["block"] is not None:
                flush(th, state["prev"])
        q_out.put(None)
        for t in threads:
            t.join()
        if failure:
            raise failure[0]
        for d, key, path in ((out_ds, "OUTPUT", config.output), (conf_ds, "OUTPUT_CONFIDENCE", config.output_confidence),
                             (prob_ds, "OUTPUT_PROBABILITIES", config.output_probabilities)):
            if d is not None:
                close_raster(d, key, path)
        d = out_ds = conf_ds = prob_ds = None  # no reference left: the files are closed (whole) here
        if distributed.active():
            counts[:] = distributed.total(counts)
            distributed.barrier()  # every process's rows are written
            if not main:
                return _result_of(config, classes, run, skipped, t0, counts, warnings, engine, log, window, device, False)
            _merge_parts(config, rows, window.height, distributed.world(), stamp)
        if config.min_area > 0 or config.output_polygons:
            from ..core.regions import polygonize, sieve

            if config.min_area > 0:
                sieve(tmp_out, config.min_area, is_canceled)
                log(f"Minimum mapping unit {config.min_area} px: smaller regions merged into the largest neighbouring region.")
            if config.output_polygons:
                n_polygons = polygonize(tmp_out, config.output_polygons, classes, is_canceled)
                log(f"{n_polygons:,} polygons written to {config.output_polygons}.")
        _finish_output(tmp_out, config.output, classes, "OUTPUT")
        if tmp_conf:
            _finish_output(tmp_conf, config.output_confidence, None, "OUTPUT_CONFIDENCE")
        if tmp_prob:
            _finish_output(tmp_prob, config.output_probabilities, None, "OUTPUT_PROBABILITIES")
    except BaseException:
        stop.set()
        try:  # unblock and stop the threads, then remove every partial output
            while q_in.get_nowait() is not None:
                pass
        except queue.Empty:
            pass
        q_out.put(None)
        for t in threads:
            t.join(timeout=10)
        out_ds = conf_ds = prob_ds = None
        for p in [tmp_out, tmp_conf, tmp_prob] + others:
            discard(p)  # plain removal: a damaged partial file (disk full) cannot be opened to be deleted
        raise
    return _result_of(config, classes, run, skipped, t0, counts, warnings, engine, log, window, device, True)


def _result_of(config, classes, run, skipped, t0, counts, warnings, engine, log, window, device, report) -> ClassifyResult:
    total = max(int(counts[:NODATA].sum()), 1)
    shares = {c["name"]: float(counts[int(c["value"])]) / total for c in classes}
    seconds = time.time() - t0
    if report:
        procs = distributed.world()
        log(f"{run} tiles classified{f' by rank 0 of {procs} processes' if procs > 1 else ''}, {skipped} skipped (all nodata), "
            f"{seconds:.1f} s ({window.width * window.height / 1e6 / max(seconds, 1e-9):.2f} Mpx/s) on {device} with {engine}.")
        log("Class shares: " + ", ".join(f"{n} {100 * s:.1f}%" for n, s in shares.items()))
    return ClassifyResult(config.output, config.output_confidence, classes, run, skipped, seconds, shares, warnings, engine)


def row_range(rows: list[int], height: int, rank: int, world: int) -> tuple[int, int]:
    """The rows [y0, y1) that process ``rank`` of ``world`` finalises: an even share of the tile rows,
    cut at tile-row origins (the first share starts at 0, the last ends at ``height``)."""
    n = len(rows)
    i0, i1 = n * rank // world, n * (rank + 1) // world
    y0 = 0 if rank == 0 else (rows[i0] if i0 < n else height)
    y1 = height if rank == world - 1 else (rows[i1] if i1 < n else height)
    return y0, max(y0, y1)


def _part_name(path: str, rank: int, stamp: str) -> str:
    """Where process ``rank`` writes its rows of output ``path`` before rank 0 has the whole: a hidden
    name beside it, unique to this run (``stamp``: rank 0's process id and a random part), so two
    runs onto one OUTPUT never share a file."""
    folder, base = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{base}{PARTIAL_MARK}{stamp}" + (".tif" if rank == 0 else f".part{rank}.tif"))


def _merge_parts(config: ClassifyConfig, rows: list[int], height: int, world: int, stamp: str, strip: int = 512) -> None:
    """Copy the other processes' bands of rows into rank 0's outputs (strip by strip), removing the parts."""
    for key, path in (("OUTPUT", config.output), ("OUTPUT_CONFIDENCE", config.output_confidence),
                      ("OUTPUT_PROBABILITIES", config.output_probabilities)):
        if not path:
            continue
        whole = gdal.Open(_part_name(path, 0, stamp), gdal.GA_Update)
        for r in range(1, world):
            y0, y1 = row_range(rows, height, r, world)
            if y1 <= y0:
                continue
            part = gdal.Open(_part_name(path, r, stamp))
            for b in range(1, whole.RasterCount + 1):
                src, dst = part.GetRasterBand(b), whole.GetRasterBand(b)
                for y in range(0, y1 - y0, strip):
                    n = min(strip, y1 - y0 - y)
                    dst.WriteArray(src.ReadAsArray(0, y, part.RasterXSize, n), 0, y0 + y)
            part = None
            gdal.GetDriverByName("GTiff").Delete(_part_name(path, r, stamp))
        close_raster(whole, key, path)
        whole = None
