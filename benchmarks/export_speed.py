"""Export Training Chips throughput and memory against a plain loop of gdal.Translate windows.

Builds a synthetic raster (default 10000×10000, 4 bands, Byte, tiled GeoTIFF) with a label raster,
then in one run: chips/s and MB/s of export_chips, chips/s of gdal.Translate on the same grid,
their ratio, and the peak resident memory of each (measured in child processes). Then the peak
memory of both for rasters of other sizes (--memory-sizes): export_chips caps GDAL's block cache
per run, so its memory stays flat; the plain loop's grows with the raster up to GDAL's default cache
(5 % of the RAM).

    python benchmarks/export_speed.py [--size 10000] [--chip 256] [--memory-sizes 5000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT_PARENT = os.path.dirname(HERE)


def make_rasters(folder, size, bands):
    import numpy as np
    from osgeo import gdal, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    image, labels = os.path.join(folder, "image.tif"), os.path.join(folder, "labels.tif")
    drv = gdal.GetDriverByName("GTiff")
    img = drv.Create(image, size, size, bands, gdal.GDT_Byte, ["TILED=YES", "COMPRESS=DEFLATE"])
    lab = drv.Create(labels, size, size, 1, gdal.GDT_Byte, ["TILED=YES", "COMPRESS=DEFLATE"])
    for ds in (img, lab):
        ds.SetGeoTransform((500000, 1, 0, 5600000, 0, -1))
        ds.SetProjection(srs.ExportToWkt())
    rng = np.random.default_rng(0)
    for row in range(0, size, 1024):
        h = min(1024, size - row)
        for b in range(bands):
            img.GetRasterBand(b + 1).WriteArray(rng.integers(0, 255, (h, size), dtype=np.uint8), 0, row)
        lab.GetRasterBand(1).WriteArray((rng.integers(0, 4, (h, size)) // 3 + 1).astype(np.uint8), 0, row)
    img = lab = None
    return image, labels


def run_child(mode, image, labels, out, chip):
    code = f"""
import json, os, sys, time
sys.path.insert(0, {ROOT_PARENT!r})
sys.path.insert(0, {HERE!r})
from _peak import peak_mb
t0 = time.perf_counter()
if {mode!r} == "ours":
    from unet_plugin.core.chips import ExportConfig, export_chips
    r = export_chips(ExportConfig(input={image!r}, output={out!r}, label_raster={labels!r}, chip_size={chip}))
    n = r.chip_count
else:
    from osgeo import gdal
    from unet_plugin.core.windows import grid
    os.makedirs({out!r}, exist_ok=True)
    src, lab = gdal.Open({image!r}), gdal.Open({labels!r})
    n = 0
    for w in grid(0, 0, src.RasterXSize, src.RasterYSize, {chip}, {chip}):
        win = [w.col, w.row, w.width, w.height]
        gdal.Translate(os.path.join({out!r}, f"i{{n}}.tif"), src, srcWin=win)
        gdal.Translate(os.path.join({out!r}, f"l{{n}}.tif"), lab, srcWin=win)
        n += 1
print(json.dumps({{"chips": n, "seconds": time.perf_counter() - t0,
                  "peak_mb": peak_mb()}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--bands", type=int, default=4)
    ap.add_argument("--chip", type=int, default=256)
    ap.add_argument("--memory-sizes", type=int, nargs="*", default=[5000, 20000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image, labels = make_rasters(tmp, args.size, args.bands)
        mb = args.size * args.size * (args.bands + 1) / 1e6
        ours = run_child("ours", image, labels, os.path.join(tmp, "ours"), args.chip)
        base = run_child("translate", image, labels, os.path.join(tmp, "translate"), args.chip)
        print(f"raster {args.size}×{args.size}, {args.bands} bands Byte + labels ({mb:.0f} MB uncompressed), chips {args.chip} px")
        print(f"{'':22} {'chips':>7} {'s':>8} {'chips/s':>9} {'MB/s':>8} {'peak MB':>8}")
        for name, r in (("export_chips", ours), ("gdal.Translate loop", base)):
            print(f"{name:22} {r['chips']:7d} {r['seconds']:8.1f} {r['chips'] / r['seconds']:9.1f} "
                  f"{mb / r['seconds']:8.1f} {r['peak_mb']:8.0f}")
        print(f"speed ratio export_chips / gdal.Translate: {base['seconds'] / ours['seconds']:.2f}")
        for name in os.listdir(tmp):
            path = os.path.join(tmp, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        print(f"peak memory by raster size ({args.bands} bands Byte + labels, chips {args.chip} px)")
        for size in args.memory_sizes:
            image, labels = make_rasters(tmp, size, args.bands)
            row = [f"{size}×{size}"]
            for name, mode in (("export_chips", "ours"), ("gdal.Translate loop", "translate")):
                out = os.path.join(tmp, mode)
                r = run_child(mode, image, labels, out, args.chip)
                shutil.rmtree(out)
                row.append(f"{name} {r['peak_mb']:.0f} MB ({r['chips']} chips, {r['seconds']:.0f} s)")
            print(f"  {row[0]}: " + ", ".join(row[1:]))
            for name in ("image.tif", "labels.tif"):
                os.remove(os.path.join(tmp, name))


if __name__ == "__main__":
    main()
