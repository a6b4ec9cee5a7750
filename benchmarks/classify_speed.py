"""Classify Raster throughput against the bare forward pass, and its peak memory by raster size.

In one run, on the same synthetic raster (default 2048×2048, 3 bands, Byte, tiled GeoTIFF) and the
same model (U-Net resnet34, 8 classes, untrained: speed does not depend on the weights):

- Mpx/s of classify() at OVERLAP 0 and 25 (tile 256, batch 4, everything included: loading the
  model, reading, normalising, blending, writing the GeoTIFF, statistics), with onnxruntime (the
  first run exports the ONNX graph into an empty cache, later runs reuse it, as a batch or any
  later run on the same model file does) and with PyTorch forced;
- Mpx/s of the bare model forward over the same 256×256 tiles already in memory as a tensor:
  PyTorch default (fp32, contiguous), PyTorch channels-last (what classify uses on the CPU), and
  onnxruntime (what the Deepness plugin runs) on the model exported by export_onnx; and, on a
  subset of the tiles, what other CPU settings give (autograd left on, 1 thread, bf16 autocast);
- classify at OVERLAP 0 as a share of the best bare forward;
- peak resident memory of classify() for a 5000×5000 and a 20000×20000 raster, also with a minimum
  mapping unit and polygons (child processes;
  the rasters are nodata outside a 512-px column, so only a few hundred tiles are computed, but
  every strip is read and every buffer is allocated at full width).

With ``--trained MINUTES`` the speed part runs on real imagery and a trained model instead (what
issue #16 asks for): a U-Net trained for MINUTES on the NC Landsat strata chips (from scratch), a
raster of about --size² made of copies of the NC scene, tile 256, OVERLAP 0: Classify Raster with
PRECISION=auto and full (each run twice: the first exports / quantises and checks), the bare fp32
onnxruntime forward over the same tiles in memory (the exported graph Deepness runs), and the
share of valid pixels where the auto and full maps agree. ``--overlap-study`` then classifies the
NC scene itself at its chip size (64 px, the default TILE_SIZE for this model) with OVERLAP 0, 12,
25 and 50 and measures seams: disagreement with the 50 % map on pixels within 2 px of the tile
edges of the 0 % grid against the rest, and accuracy against the strata raster.

    python benchmarks/classify_speed.py [--size 2048] [--backbone resnet34] [--skip-memory]
    python benchmarks/classify_speed.py --trained 4 --overlap-study --skip-memory
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from _cpu import cpu_summary  # noqa: E402

TILE, BATCH, CLASSES, BANDS = 256, 4, 8, 3


def make_model(path, backbone):
    import torch

    from unet_plugin.ml.model.modelfile import save_model
    from unet_plugin.ml.model.unet import UNet

    torch.manual_seed(0)
    meta = {"backbone": backbone, "in_channels": BANDS, "bands": [{"index": i, "name": f"b{i}"} for i in range(1, BANDS + 1)],
            "classes": [{"value": v, "name": f"class {v}", "color": [30 * v, 100, 200 - 20 * v]} for v in range(1, CLASSES + 1)],
            "normalization": {"mean": [100.0] * BANDS, "std": [50.0] * BANDS}, "chip_size": TILE, "data_type": "Byte"}
    save_model(path, UNet(backbone, BANDS, CLASSES).eval(), meta)


def make_raster(path, width, height, column=None):
    """Tiled Byte GeoTIFF with a smooth texture; with ``column``, nodata (0) outside [column, column+512)."""
    import numpy as np
    from osgeo import gdal, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    ds = gdal.GetDriverByName("GTiff").Create(path, width, height, BANDS, gdal.GDT_Byte,
                                              ["TILED=YES", "COMPRESS=DEFLATE", "SPARSE_OK=TRUE"])
    ds.SetGeoTransform((500000, 1, 0, 5600000, 0, -1))
    ds.SetProjection(srs.ExportToWkt())
    x0, w = (0, width) if column is None else (column, 512)
    yy, xx = np.mgrid[0:1024, 0:w]
    for b in range(BANDS):
        ds.GetRasterBand(b + 1).SetNoDataValue(0)
    for row in range(0, height, 1024):
        h = min(1024, height - row)
        for b in range(BANDS):
            tex = (128 + 60 * np.sin((xx[:h] + x0) / (17 + 5 * b)) * np.cos((yy[:h] + row) / 23)).astype(np.uint8) | 1
            ds.GetRasterBand(b + 1).WriteArray(tex, x0, row)
    ds = None


def tiles_of(path):
    import numpy as np
    from osgeo import gdal

    data = gdal.Open(path).ReadAsArray().astype(np.float32)
    data = (data - 100.0) / 50.0
    _, h, w = data.shape
    return np.stack([data[:, r:r + TILE, c:c + TILE] for r in range(0, h - TILE + 1, TILE) for c in range(0, w - TILE + 1, TILE)])


def bare_forward(model, tiles, channels_last, threads=None, bf16=False, inference=True):
    import contextlib

    import torch

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.from_numpy(tiles)
    old = torch.get_num_threads()
    torch.set_num_threads(threads or old)
    try:
        with torch.inference_mode() if inference else contextlib.nullcontext(), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x[:BATCH].contiguous(memory_format=fmt))  # warm-up
            t0 = time.perf_counter()
            for b in range(0, len(x), BATCH):
                torch.softmax(model(x[b:b + BATCH].contiguous(memory_format=fmt)).float(), 1)
            return time.perf_counter() - t0
    finally:
        torch.set_num_threads(old)


def onnx_forward(model_path, tiles, work):
    import numpy as np
    import onnxruntime as ort

    from unet_plugin.ml.model.onnx_export import export_onnx

    onnx_path = os.path.join(work, "model.onnx")
    export_onnx(model_path, onnx_path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    # the exported graph takes pixels/255 and normalises itself: undo our normalisation
    raw = ((tiles * 50.0 + 100.0) / 255.0).astype(np.float32)
    sess.run(None, {name: raw[:BATCH]})
    t0 = time.perf_counter()
    for b in range(0, len(raw), BATCH):
        sess.run(None, {name: raw[b:b + BATCH]})
    return time.perf_counter() - t0


def classify_seconds(image, model, out, overlap, engine):
    from unet_plugin.ml.classify import ClassifyConfig, classify

    t0 = time.perf_counter()
    classify(ClassifyConfig(input=image, model=model, output=out, overlap=overlap, batch_size=BATCH, tile_size=TILE,
                            engine=engine), log=lambda m: None)
    return time.perf_counter() - t0


def peak_memory(image, model, out, **extra):
    code = f"""
import json, sys, time
sys.path.insert(0, {ROOT!r})
sys.path.insert(0, {HERE!r})
from _peak import peak_mb
from unet_plugin.ml.classify import ClassifyConfig, classify
t0 = time.perf_counter()
r = classify(ClassifyConfig(input={image!r}, model={model!r}, output={out!r}, overlap=25, batch_size={BATCH}, **{extra!r}),
             log=lambda m: None)
print(json.dumps({{"seconds": time.perf_counter() - t0, "tiles": r.tiles_run, "skipped": r.tiles_skipped,
                  "peak_mb": peak_mb()}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--backbone", default="resnet34")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--trained", type=float, default=0, help="minutes of training on the NC chips (real imagery)")
    ap.add_argument("--overlap-study", action="store_true")
    args = ap.parse_args()
    if args.trained:
        return trained_comparison(args)

    import torch

    with tempfile.TemporaryDirectory(prefix="unet-classify-speed-") as work:
        model_path, image = os.path.join(work, "m.pt"), os.path.join(work, "image.tif")
        make_model(model_path, args.backbone)
        make_raster(image, args.size, args.size)
        mpx = args.size * args.size / 1e6
        print(f"Raster {args.size}×{args.size}, {BANDS} bands Byte; U-Net {args.backbone}, {CLASSES} classes; "
              f"tile {TILE}, batch {BATCH}; torch {torch.__version__}, {torch.get_num_threads()} threads.")

        if not args.memory_only:
            speed(model_path, image, mpx, work)
        if not args.skip_memory:
            for size in (5000, 20000):
                path = os.path.join(work, f"big{size}.tif")
                make_raster(path, size, size, column=size // 2)
                m = peak_memory(path, model_path, os.path.join(work, f"big{size}_out.tif"))
                print(f"Peak memory, {size}×{size} raster: {m['peak_mb']:.0f} MB "
                      f"({m['tiles']} tiles computed, {m['skipped']} nodata tiles skipped, {m['seconds']:.1f} s)")
                m = peak_memory(path, model_path, os.path.join(work, f"big{size}_mmu.tif"), min_area=20,
                                output_polygons=os.path.join(work, f"big{size}_polygons.gpkg"))
                print(f"Peak memory, {size}×{size} raster, with MIN_AREA 20 and OUTPUT_POLYGONS: {m['peak_mb']:.0f} MB "
                      f"({m['seconds']:.1f} s)")
                os.remove(path)


def speed(model_path, image, mpx, work):
    from unet_plugin.ml.model.modelfile import load_model

    tiles = tiles_of(image)
    tile_mpx = len(tiles) * TILE * TILE / 1e6
    model, _ = load_model(model_path, "cpu")
    rates = {}
    rates["bare PyTorch fp32 (default)"] = tile_mpx / bare_forward(model, tiles, channels_last=False)
    rates["bare PyTorch channels-last"] = tile_mpx / bare_forward(model, tiles, channels_last=True)
    # the other CPU settings, for the record (classify uses inference mode, channels-last, all threads, fp32)
    def subset_rate(n, **kw):
        return n * TILE * TILE / 1e6 / bare_forward(model, tiles[:n], True, **kw)

    others = {
        "PyTorch channels-last, autograd on": subset_rate(32, inference=False),
        "PyTorch channels-last, 1 thread": subset_rate(32, threads=1),
        "PyTorch channels-last, bf16 autocast": subset_rate(8, bf16=True),
    }
    try:
        rates["bare onnxruntime"] = tile_mpx / onnx_forward(model_path, tiles, work)
    except ImportError:
        print("(onnxruntime not installed: skipped)")
    for name, r in list(rates.items()) + list(others.items()):
        print(f"  {name:34s} {r:6.3f} Mpx/s  ({r * 1e6 / TILE / TILE:5.2f} tiles/s)")
    os.environ["UNET_CACHE_DIR"] = os.path.join(work, "cache")  # start cold: the first run exports the ONNX graph
    runs = [("auto", 0, " (first run)"), ("auto", 0, ""), ("auto", 25, ""), ("torch", 0, " (PyTorch forced)"),
            ("torch", 25, " (PyTorch forced)")]
    for i, (engine, overlap, note) in enumerate(runs):
        s = classify_seconds(image, model_path, os.path.join(work, f"c{i}.tif"), overlap, engine)
        label = f"Classify Raster, OVERLAP {overlap}{note}"
        rates[label] = mpx / s
        print(f"  {label:34s} {mpx / s:6.3f} Mpx/s  ({s:.1f} s)")
    best = max(rates, key=lambda k: rates[k] if k.startswith("bare") else 0)
    ours = rates["Classify Raster, OVERLAP 0"]
    print(f"Classify OVERLAP 0, first run (ONNX export included) / best bare forward: "
          f"{rates['Classify Raster, OVERLAP 0 (first run)'] / rates[best]:.2f}")
    print(f"Classify OVERLAP 0 / best bare forward ({best}): {ours / rates[best]:.2f}")
    print(f"Classify OVERLAP 0 / bare PyTorch default: {ours / rates['bare PyTorch fp32 (default)']:.2f}")
    print(f"Classify OVERLAP 0, PyTorch forced / bare channels-last: "
          f"{rates['Classify Raster, OVERLAP 0 (PyTorch forced)'] / rates['bare PyTorch channels-last']:.2f}")


NC = os.path.join(ROOT, "tests", "data", "nc_landsat7")


def mosaic(path, size):
    """A tiled GeoTIFF of about size×size made of copies of the NC scene (Float32, its nodata)."""
    import numpy as np
    from osgeo import gdal

    src = gdal.Open(os.path.join(NC, "nc_lsat7_2000_6band.tif"))
    data = src.ReadAsArray()
    ky, kx = -(-size // data.shape[1]), -(-size // data.shape[2])
    big = np.tile(data, (1, ky, kx))
    ds = gdal.GetDriverByName("GTiff").Create(path, big.shape[2], big.shape[1], big.shape[0], gdal.GDT_Float32,
                                              ["TILED=YES", "COMPRESS=DEFLATE"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b in range(big.shape[0]):
        band = ds.GetRasterBand(b + 1)
        band.SetNoDataValue(src.GetRasterBand(b + 1).GetNoDataValue())
        band.WriteArray(big[b])
    ds = None
    return big.shape[2], big.shape[1]


def trained_comparison(args):
    import numpy as np
    import onnxruntime as ort
    from osgeo import gdal

    import torch

    from unet_plugin.core.chips import ExportConfig, export_chips
    from unet_plugin.ml.model.modelfile import load_model
    from unet_plugin.ml.classify import ClassifyConfig, classify
    from unet_plugin.ml.classify.onnx_cache import _export_graph
    from unet_plugin.ml.train import TrainConfig, train

    print("CPU:", cpu_summary())
    with tempfile.TemporaryDirectory(prefix="unet-classify-trained-") as work:
        os.environ["UNET_CACHE_DIR"] = os.path.join(work, "cache")
        chips, model = os.path.join(work, "chips"), os.path.join(work, "m.pt")
        image, strata = os.path.join(NC, "nc_lsat7_2000_6band.tif"), os.path.join(NC, "strata.tif")
        export_chips(ExportConfig(input=image, output=chips, label_raster=strata, chip_size=64, stride=32))
        r = train(TrainConfig(chips=chips, output_model=model, backbone=args.backbone, pretrained=False, epochs=500,
                              time_limit=args.trained, batch_size=8, precision="full", early_stopping=0), log=lambda m: None)
        print(f"Model: U-Net {args.backbone} trained {r.seconds:.0f} s ({r.epochs_run} epochs) on the NC strata chips, "
              f"validation mIoU {r.miou:.3f}")
        big = os.path.join(work, "mosaic.tif")
        w, h = mosaic(big, args.size)
        mpx = w * h / 1e6
        print(f"Raster: {w}×{h} px, 6 bands Float32 (copies of the NC scene); tile {TILE}, batch {BATCH}, OVERLAP 0")

        # the bare fp32 onnxruntime forward over the tiles in memory (normalised, nodata zeroed): the model's
        # graph as exported for 256-px tiles, what an engine like Deepness's runs, with nothing around it
        src = gdal.Open(big)
        data = src.ReadAsArray().astype(np.float32)
        valid = data[0] != src.GetRasterBand(1).GetNoDataValue()
        src = None
        net, meta = load_model(model, torch.device("cpu"))
        data = (data - np.array(meta["normalization"]["mean"], np.float32)[:, None, None]) / \
            np.array(meta["normalization"]["std"], np.float32)[:, None, None]
        data[:, ~valid] = 0.0
        from unet_plugin.core.windows import axis_origins

        # the tile grid Classify Raster runs at OVERLAP 0 (edge tiles shifted inside the raster), so both
        # compute the same tiles and the rates are per Mpx of raster
        tiles = np.stack([data[:, y:y + TILE, x:x + TILE] for y in axis_origins(h, TILE, TILE) for x in axis_origins(w, TILE, TILE)])
        graph = os.path.join(work, "bare.onnx")
        _export_graph(net, tiles.shape[1], TILE, TILE, graph)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = os.cpu_count() or 1
        sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        raw = np.ascontiguousarray(tiles)
        sess.run(None, {"input": raw[:BATCH]})
        t0 = time.perf_counter()
        for b in range(0, len(raw), BATCH):
            sess.run(None, {"input": raw[b:b + BATCH]})
        bare = mpx / (time.perf_counter() - t0)
        print(f"  {'bare onnxruntime fp32 (tiles in memory)':44s} {bare:6.3f} Mpx/s  ({len(tiles)} tiles, the same as classify's)")
        rates, maps = {}, {}
        for precision, note in (("full", " (first run: ONNX export)"), ("full", ""), ("auto", " (first run: quantise, check)"),
                                ("auto", "")):
            logs = []
            out = os.path.join(work, f"c_{precision}.tif")
            t0 = time.perf_counter()
            res = classify(ClassifyConfig(input=big, model=model, output=out, tile_size=TILE, overlap=0, batch_size=BATCH,
                                          precision=precision), log=logs.append)
            rate = mpx / (time.perf_counter() - t0)
            rates[precision] = rate
            choice = next((m for m in logs if m.startswith("Precision")), "")
            print(f"  {'Classify Raster PRECISION=' + precision + note:44s} {rate:6.3f} Mpx/s  {res.engine}  {choice}")
            maps[precision] = gdal.Open(out).ReadAsArray()
        valid = maps["full"] != 255
        agree = 100 * (maps["auto"] == maps["full"])[valid].mean()
        print(f"auto / bare fp32 onnxruntime: {rates['auto'] / bare:.2f}×; full / bare: {rates['full'] / bare:.2f}×; "
              f"auto / full: {rates['auto'] / rates['full']:.2f}×; maps agree on {agree:.2f} % of valid pixels")
        if args.overlap_study:
            overlap_study(model, image, strata, work)


def overlap_study(model, image, strata, work):
    """Seams at OVERLAP 0, 12, 25 (and 50 as the reference) on the NC scene, 64-px tiles."""
    import numpy as np
    from osgeo import gdal

    from unet_plugin.core.windows import axis_origins
    from unet_plugin.ml.classify import ClassifyConfig, classify

    tile = 64
    truth = gdal.Open(strata).ReadAsArray()
    maps, seconds = {}, {}
    for overlap in (50, 0, 12, 25):
        out = os.path.join(work, f"o{overlap}.tif")
        t0 = time.perf_counter()
        classify(ClassifyConfig(input=image, model=model, output=out, tile_size=tile, overlap=overlap, precision="full"),
                 log=lambda m: None)
        seconds[overlap] = time.perf_counter() - t0
        maps[overlap] = gdal.Open(out).ReadAsArray()
    h, w = maps[0].shape
    edge = np.zeros((h, w), dtype=bool)  # within 2 px of a tile edge of the 0 % grid
    for o in axis_origins(h, tile, tile):
        edge[max(o - 2, 0):o + 2] = True
        edge[max(o + tile - 2, 0):o + tile + 2] = True
    for o in axis_origins(w, tile, tile):
        edge[:, max(o - 2, 0):o + 2] = True
        edge[:, max(o + tile - 2, 0):o + tile + 2] = True
    valid = maps[50] != 255
    known = valid & (truth > 0) & (truth < 255)
    print(f"OVERLAP study (NC scene {w}×{h}, 64-px tiles, {edge[valid].mean() * 100:.0f} % of pixels near a 0 %-grid tile edge):")
    for overlap in (0, 12, 25, 50):
        m = maps[overlap]
        near = 100 * (m != maps[50])[valid & edge].mean()
        far = 100 * (m != maps[50])[valid & ~edge].mean()
        acc = 100 * (m == truth)[known].mean()
        print(f"  OVERLAP {overlap:2d}: differs from the 50 % map on {near:5.2f} % of pixels near tile edges, {far:5.2f} % "
              f"elsewhere; accuracy vs strata {acc:.2f} %; {seconds[overlap]:.1f} s")


if __name__ == "__main__":
    main()
