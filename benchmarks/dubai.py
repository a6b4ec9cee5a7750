"""High-resolution RGB with dense labels for the benchmarks: the Dubai aerial imagery set.

"Semantic segmentation of aerial imagery" by Humans in the Loop (public domain, CC0 1.0;
imagery of Dubai from the Mohammed Bin Rashid Space Centre): 8 tiles, each cut into 9 parts,
72 RGB JPEGs of 509×544 to 2149×1479 px with RGB-coded masks of 6 classes. Its pixel size is not
published; houses of about 12 m span about 20 px, so it is near 0.5–0.7 m. Get the folder
``Semantic segmentation dataset`` (from Kaggle, or any copy of it) and pass its path with
``--dubai``; nothing of it is in this repository.

The parts carry no georeference. :func:`canvas` lays chosen parts one below the other on a pixel
grid (0.5 m, UTM zone 40N; the position is nominal), each starting on a multiple of the chip size
so that no chip spans two parts, and writes the image and a label raster (0 = unlabelled or
between parts, nodata; 1–5 the classes). Tiles 1–6 are for tuning; tiles 7 and 8 (the densest
built-up tiles) are the lockbox: no default may be decided on them.
"""

from __future__ import annotations

import os

import numpy as np

# mask colour → class value (the data set's classes.json, as its mask PNGs store them)
COLOURS = {
    (226, 169, 41): 1,   # water
    (132, 41, 246): 2,   # land (unpaved area)
    (110, 193, 228): 3,  # road
    (60, 16, 152): 4,    # building
    (254, 221, 58): 5,   # vegetation
}  # (155, 155, 155) unlabelled → 0
NAMES = {1: "water", 2: "land", 3: "road", 4: "building", 5: "vegetation"}
TUNING_TILES = (1, 2, 3, 4, 5, 6)
LOCKBOX_TILES = (7, 8)
PIXEL = 0.5
ORIGIN = (500000.0, 2800000.0)  # nominal, UTM 40N


def parts(root: str, tiles, numbers) -> list[tuple[str, str]]:
    """(image, mask) paths of the given tiles' parts."""
    out = []
    for t in tiles:
        for n in numbers:
            base = os.path.join(root, f"Tile {t}")
            out.append((os.path.join(base, "images", f"image_part_{n:03d}.jpg"),
                        os.path.join(base, "masks", f"image_part_{n:03d}.png")))
    missing = [p for pair in out for p in pair if not os.path.isfile(p)]
    if missing:
        raise SystemExit(f"--dubai: {missing[0]} not found (give the folder 'Semantic segmentation dataset').")
    return out


def mask_values(rgb: np.ndarray) -> np.ndarray:
    """Class values from an RGB mask: the nearest of the class colours within 30, else 0."""
    px = rgb[:3].reshape(3, -1).T.astype(np.int32)
    colours = np.array(list(COLOURS), dtype=np.int32)
    dist = ((px[:, None, :] - colours[None]) ** 2).sum(-1)
    best = dist.argmin(1)
    values = np.array(list(COLOURS.values()), dtype=np.uint8)[best]
    values[dist[np.arange(len(best)), best] > 30 ** 2] = 0
    return values.reshape(rgb.shape[1:])


def read_mask(path: str) -> np.ndarray:
    """A mask as RGB (3, h, w): some of the PNGs are RGB, some paletted."""
    from osgeo import gdal

    ds = gdal.Open(path)
    if ds.RasterCount >= 3:
        return ds.ReadAsArray()[:3]
    table = ds.GetRasterBand(1).GetColorTable()
    lut = np.array([table.GetColorEntry(i)[:3] for i in range(table.GetCount())] + [(0, 0, 0)] * 256, dtype=np.uint8)
    return lut[ds.GetRasterBand(1).ReadAsArray()].transpose(2, 0, 1)


def canvas(pairs, out_image: str, out_labels: str, align: int = 256, image_nodata: bool = False) -> list[tuple[int, int, int, int]]:
    """Write the parts one below the other; returns each part's (row, col, height, width) on the canvas.

    ``image_nodata``: the image's 0 is nodata, so the space between parts is no imagery (about 1 % of
    the real pixels have a 0 in some band and become nodata too; for tools that must not look there).
    """
    from osgeo import gdal, osr

    sizes = [(ds.RasterYSize, ds.RasterXSize) for ds in (gdal.Open(img) for img, _ in pairs)]
    slots = [-(-h // align) * align for h, _ in sizes]
    height, width = sum(slots), -(-max(w for _, w in sizes) // align) * align
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32640)
    gt = (ORIGIN[0], PIXEL, 0.0, ORIGIN[1], 0.0, -PIXEL)
    opts = ["COMPRESS=DEFLATE", "TILED=YES"]
    img_ds = gdal.GetDriverByName("GTiff").Create(out_image, width, height, 3, gdal.GDT_Byte, opts)
    lab_ds = gdal.GetDriverByName("GTiff").Create(out_labels, width, height, 1, gdal.GDT_Byte, opts)
    for ds in (img_ds, lab_ds):
        ds.SetGeoTransform(gt)
        ds.SetProjection(srs.ExportToWkt())
    lab_ds.GetRasterBand(1).SetNoDataValue(0)
    if image_nodata:
        for b in range(1, 4):
            img_ds.GetRasterBand(b).SetNoDataValue(0)
    placed, row = [], 0
    for (img, msk), (h, w), slot in zip(pairs, sizes, slots):
        rgb = gdal.Open(img).ReadAsArray()
        m = read_mask(msk)
        if m.shape[1:] != rgb.shape[1:]:
            raise SystemExit(f"{msk}: mask size {m.shape[1:]} differs from its image {rgb.shape[1:]}.")
        img_ds.WriteRaster(0, row, w, h, np.ascontiguousarray(rgb[:3]).tobytes(), band_list=[1, 2, 3])
        lab_ds.GetRasterBand(1).WriteArray(mask_values(m), 0, row)
        placed.append((row, 0, h, w))
        row += slot
    img_ds = lab_ds = None
    return placed
