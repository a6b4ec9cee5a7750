"""Read chip data sets (ours or Esri "Classified Tiles") and split them spatially."""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from ..codes import IGNORE
from ..errors import UserInputError
from ..raster import window_bounds
from ..styles import default_color
from ..windows import Window
from .folder import CHIPS_FORMAT, CHIPS_FORMAT_VERSION

gdal.UseExceptions()


@dataclass
class ChipDataset:
    """A chip folder, as training sees it."""

    folder: str
    kind: str                      # "unet-qgis" or "esri"
    ids: list[str]
    image_paths: list[str]
    label_paths: list[str]
    bounds: list[tuple]            # (xmin, ymin, xmax, ymax) per chip
    classes: list[dict]            # value, name, color, pixel_count (background first if present)
    statistics: list[dict]         # per band: mean, std, min, max
    bands: list[dict]
    chip_size: int
    crs: str
    pixel_size: list[float]
    data_type: str
    nodata: list
    georeferenced: bool = True     # False: chips without world files (the split follows the chip order)
    label_source: str = ""         # "polygons" or "raster" (ours since 0.4.0); "" unknown
    unlabeled: str = ""            # what the export made of pixels outside every polygon
    masked: bool = False           # exported with a MASK of the completely labelled areas
    label_shares: list | None = None  # per chip {label value: share of its pixels}, where known
    source_band_count: int = 0     # bands of the raster the chips were cut from (0: unknown)

    def __len__(self) -> int:
        return len(self.ids)


def _chip_bounds(path: str) -> tuple:
    ds = gdal.Open(path)
    return window_bounds(ds.GetGeoTransform(), Window(0, 0, ds.RasterXSize, ds.RasterYSize))


def load_chip_dataset(folder: str, parameter: str = "CHIPS") -> ChipDataset:
    """Open a chip folder written by Export Training Chips or by ArcGIS Pro (Classified Tiles).

    Raises:
        UserInputError: an empty or foreign folder, or chips that disagree.
    """
    if not folder or not os.path.isdir(folder):
        raise UserInputError(parameter, f"'{folder}' is not a folder. Choose the folder Export Training Chips wrote.")
    try:
        data = _load(folder, parameter)
    except UserInputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        # a truncated dataset.json, missing keys, a bad .emd value, map.txt in another encoding
        what = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
        raise UserInputError(parameter, f"the chip data set in '{folder}' is damaged ({what}). Export the chips again "
                                        "(Export Training Chips) or copy the folder again.") from None
    missing = [p for p in data.image_paths + data.label_paths if not os.path.isfile(p)]
    if missing:
        raise UserInputError(parameter, f"the chip data set in '{folder}' is incomplete: {len(missing)} chip files are "
                                        f"listed but missing (e.g. '{missing[0]}'). Export the chips again.")
    return data


def _load(folder: str, parameter: str) -> ChipDataset:
    if os.path.exists(os.path.join(folder, "dataset.json")):
        data = _load_ours(folder, parameter)
    elif os.path.exists(os.path.join(folder, "esri_model_definition.emd")) or os.path.exists(os.path.join(folder, "map.txt")):
        data = _load_esri(folder, parameter)
    else:
        raise UserInputError(
            parameter,
            f"'{folder}' is not a chip data set: it has neither dataset.json (Export Training Chips) "
            "nor esri_model_definition.emd/map.txt (ArcGIS 'Classified Tiles').",
        )
    if not data.ids:
        raise UserInputError(parameter, f"the chip data set in '{folder}' holds no chips.")
    _check_agreement(data, parameter)
    return data


def _load_ours(folder: str, parameter: str) -> ChipDataset:
    with open(os.path.join(folder, "dataset.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format") != CHIPS_FORMAT:
        raise UserInputError(parameter, f"'{folder}/dataset.json' is not a chip data set of this plugin.")
    if int(meta.get("format_version", 0)) > CHIPS_FORMAT_VERSION:
        raise UserInputError(parameter, "the chip data set was written by a newer version of the plugin; update it.")
    chips = meta["chips"]
    return ChipDataset(
        folder=folder, kind="unet-qgis", ids=[c["id"] for c in chips],
        image_paths=[os.path.join(folder, "images", c["id"] + ".tif") for c in chips],
        label_paths=[os.path.join(folder, "labels", c["id"] + ".tif") for c in chips],
        bounds=[tuple(c["bounds"]) for c in chips], classes=meta["classes"],
        statistics=meta["statistics"], bands=meta["bands"], chip_size=int(meta["chip_size"]),
        crs=meta.get("crs", ""), pixel_size=meta.get("pixel_size", [1.0, 1.0]),
        data_type=meta.get("data_type", "Float32"), nodata=meta.get("nodata", []),
        label_source=meta.get("label_source", ""), unlabeled=meta.get("unlabeled", ""), masked=bool(meta.get("mask", False)),
        source_band_count=int(meta.get("source_band_count", 0)),
        label_shares=[{int(v): float(f) for v, f in c["label_shares"].items()} for c in chips]
        if all("label_shares" in c for c in chips) else None,
    )


ESRI_CHIP_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".mrf")


def _esri_classes(emd: dict, accumulated: dict) -> list[dict]:
    """Classes from Pro's metadata: ``Value``/``Name``/``Color`` or ``ClassValue``/``ClassName``/``ClassColor``.

    Pro writes ``[-1, -1, -1]`` for "no colour"; such classes (and any colour outside 0–255) get
    the plugin's default colour, so class rasters and styles get real ones.
    """
    listed = emd.get("Classes") or accumulated.get("Classes") or []
    classes = []
    for c in listed:
        value = c.get("Value", c.get("ClassValue"))
        if value is None:
            continue
        value = int(value)
        if value in (0, IGNORE):  # Esri's NoData, and our own ignore class when the folder is ours
            continue
        color = c.get("Color", c.get("ClassColor"))
        if not isinstance(color, (list, tuple)) or len(color) < 3 or any(not 0 <= int(v) <= 255 for v in color[:3]):
            color = default_color(value)
        classes.append({"value": value, "name": str(c.get("Name", c.get("ClassName", f"class {value}"))),
                        "color": [int(v) for v in color[:3]], "pixel_count": 0})
    return classes


def _read_map(folder: str) -> list[tuple[str, str]]:
    """(image, label) paths from map.txt (Windows separators, CRLF, trailing blanks), else from images/."""
    map_path = os.path.join(folder, "map.txt")
    pairs = []
    if os.path.exists(map_path):
        with open(map_path, encoding="utf-8-sig") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    pairs.append(tuple(os.path.join(folder, *p.replace("\\", "/").split("/")) for p in parts[:2]))
        return pairs
    for img in sorted(glob.glob(os.path.join(folder, "images", "*"))):
        if img.lower().endswith(ESRI_CHIP_EXTENSIONS):
            pairs.append((img, os.path.join(folder, "labels", os.path.basename(img))))
    return pairs


def _load_esri(folder: str, parameter: str) -> ChipDataset:
    emd, accumulated = {}, {}
    for name, target in (("esri_model_definition.emd", emd), ("esri_accumulated_stats.json", accumulated)):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8-sig") as f:
                    target.update(json.load(f))
            except (OSError, ValueError) as exc:
                raise UserInputError(parameter, f"'{path}' cannot be read as JSON ({exc}).") from None
    pairs = _read_map(folder)
    missing = [p for pair in pairs for p in pair if not os.path.exists(p)]
    if missing:
        raise UserInputError(parameter, f"{len(missing)} chip files listed in map.txt are missing, e.g. {missing[0]}")
    if not pairs:
        raise UserInputError(parameter, f"'{folder}' lists no chips.")
    first = gdal.Open(pairs[0][0])
    n_bands = first.RasterCount
    band0 = first.GetRasterBand(1)
    if first.RasterXSize != first.RasterYSize:
        raise UserInputError(
            parameter, f"the chips are {first.RasterXSize}×{first.RasterYSize} px; Train U-Net trains on square chips "
            "(they are rotated by 90° while training). Export square tiles (Tile Size X = Tile Size Y in ArcGIS Pro).")
    classes = _esri_classes(emd, accumulated)
    nodata = [first.GetRasterBand(i + 1).GetNoDataValue() for i in range(n_bands)]
    # statistics over valid pixels of the chips themselves (a sample of at most ~200), class counts over all labels
    count, total, totalsq = np.zeros(n_bands), np.zeros(n_bands), np.zeros(n_bands)
    hist = np.zeros(256, dtype=np.int64)
    shares: list[dict] = []
    step = max(1, len(pairs) // 200)
    georeferenced = True
    for i, (img, lbl) in enumerate(pairs):
        if i % step == 0:
            a = gdal.Open(img).ReadAsArray().astype(np.float64).reshape(n_bands, -1)
            for b in range(n_bands):
                v = a[b][np.isfinite(a[b])]
                if nodata[b] is not None:
                    v = v[v != nodata[b]]
                count[b] += v.size
                total[b] += v.sum()
                totalsq[b] += np.square(v).sum()
        chip_hist = np.bincount(gdal.Open(lbl).ReadAsArray().ravel().astype(np.int64).clip(0, 255), minlength=256)
        hist += chip_hist
        shares.append({int(v): float(chip_hist[v]) / max(chip_hist.sum(), 1) for v in np.nonzero(chip_hist)[0]})
    mean = total / np.maximum(count, 1)
    std = np.sqrt(np.maximum(totalsq / np.maximum(count, 1) - mean**2, 0))
    known = {c["value"] for c in classes}
    for v in np.nonzero(hist[1:IGNORE])[0] + 1:
        if int(v) not in known:
            classes.append({"value": int(v), "name": f"class {v}", "color": default_color(int(v)), "pixel_count": 0})
    for c in classes:
        c["pixel_count"] = int(hist[c["value"]])
    if hist[0]:
        classes.append({"value": 0, "name": "background", "color": default_color(0), "pixel_count": int(hist[0])})
    classes.sort(key=lambda c: c["value"])
    ids = [os.path.splitext(os.path.basename(img))[0] for img, _ in pairs]
    bounds = [_chip_bounds(p[0]) for p in pairs]
    if len(set(bounds)) < len(bounds) // 2 + 1:  # no world files: every chip at the same place
        georeferenced = False
        w = first.RasterXSize
        # chips in map.txt order side by side: Pro writes them tile by tile, so runs of
        # consecutive chips stand in for spatial blocks
        bounds = [(i * w, 0.0, (i + 1) * w, float(w)) for i in range(len(pairs))]
    gt = first.GetGeoTransform()
    return ChipDataset(
        folder=folder, kind="esri", ids=ids, image_paths=[p[0] for p in pairs], label_paths=[p[1] for p in pairs],
        bounds=bounds, classes=classes,
        statistics=[{"band": i + 1, "mean": float(mean[i]), "std": float(std[i])} for i in range(n_bands)],
        bands=[{"index": i + 1, "name": f"Band {i + 1}"} for i in range(n_bands)],
        chip_size=first.RasterXSize, crs=first.GetProjection(),
        pixel_size=[abs(gt[1]), abs(gt[5])] if georeferenced else [],
        data_type=gdal.GetDataTypeName(band0.DataType), nodata=nodata, georeferenced=georeferenced, label_shares=shares,
    )


def _check_agreement(data: ChipDataset, parameter: str) -> None:
    """Every chip must have the data set's band count and size; name the ones that do not."""
    n_bands = len(data.bands)
    bad = []
    for cid, img, lbl in zip(data.ids, data.image_paths, data.label_paths):
        ids, lds = gdal.Open(img), gdal.Open(lbl)
        if (ids.RasterCount != n_bands or ids.RasterXSize != data.chip_size or ids.RasterYSize != data.chip_size
                or lds.RasterXSize != ids.RasterXSize or lds.RasterYSize != ids.RasterYSize):
            bad.append(f"{cid} ({ids.RasterCount} bands, {ids.RasterXSize}×{ids.RasterYSize}, label {lds.RasterXSize}×{lds.RasterYSize})")
    if bad:
        raise UserInputError(
            parameter,
            f"{len(bad)} chip(s) disagree with the data set ({n_bands} bands, {data.chip_size}×{data.chip_size} px): "
            + ", ".join(bad[:5]),
        )
