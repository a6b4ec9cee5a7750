"""Read chip data sets (ours or Esri "Classified Tiles") and split them spatially."""

from __future__ import annotations

import glob
import json
import os
import random
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from .chips import FORMAT_NAME, FORMAT_VERSION
from .errors import UserInputError
from .raster import window_bounds
from .styles import default_color
from .windows import Window

gdal.UseExceptions()
IGNORE = 255


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
    if meta.get("format") != FORMAT_NAME:
        raise UserInputError(parameter, f"'{folder}/dataset.json' is not a chip data set of this plugin.")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
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


BLOCK_SIZES = (2, 3, 4, 6, 8, 12, 16)  # validation block sides tried, in chips
SPLIT_ORDERS = 8  # with the chips' classes known: random orders of the blocks tried per block size,
SPLIT_BUDGET = 10000  # fewer where chips × orders would pass this (10,000 chips: 1 order, about 1.5 s)


def spatial_split(bounds: list[tuple], percent: float, seed: int, shares: list[dict] | None = None
                  ) -> tuple[list[int], list[int], dict]:
    """Hold out about ``percent`` % of the chips as validation *areas*, apart from training.

    Chips are grouped by their centres into square blocks; whole blocks are taken (reproducibly
    from ``seed``) until the validation share is reached. Every other chip trains, also one that
    overlaps a validation chip: its pixels inside validation chips are left out of the loss
    (:func:`validation_mask`), so every label outside the validation areas counts and no
    validation pixel is ever trained on. Blocks of several sizes (2 to 16 chips wide) are tried;
    the split that keeps the most training pixels wins, among those holding out at most 1.5× the
    share asked (ties go to the smaller blocks, tried first). Blocks stay scattered at random:
    one compact patch would validate on one corner of the area only.

    ``shares`` (per chip, label value → share of its pixels) makes the split look after every
    class: a rare class often lives in one place (the one lake of the NC scene), and blocks that
    happen to take that place leave training without it. Several block orders are then tried
    per size, and a split where each class keeps at least ``1 − 1.5 × percent`` of its pixels for
    training (or, where none does, the one whose worst-off class keeps the most) goes before one
    that keeps more pixels in all.

    Returns:
        ``(train, validation, overlaps)``: chip indices, and for each training chip that overlaps
        validation chips, their bounds.
    """
    n = len(bounds)
    if percent <= 0 or n == 0:
        return list(range(n)), [], {}
    b = np.asarray(bounds, dtype=np.float64)
    chip = float(max((b[:, 2] - b[:, 0]).max(), (b[:, 3] - b[:, 1]).max()))
    # centres relative to the top-left corner of the chips, so blocks follow the chip grid
    cx = (b[:, 0] + b[:, 2]) / 2 - b[:, 0].min()
    cy = b[:, 3].max() - (b[:, 1] + b[:, 3]) / 2
    target = max(1, round(n * percent / 100))
    matrix = _class_matrix(shares, n)
    classes = matrix[1] if matrix else None
    floor = 1.0 - 1.5 * percent / 100  # each class keeps at least this share of its pixels: enough
    best = None
    for m in BLOCK_SIZES:
        bx, by = np.floor(cx / (m * chip)).astype(np.int64), np.floor(cy / (m * chip)).astype(np.int64)
        blocks: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(bx.tolist(), by.tolist())):
            blocks.setdefault(key, []).append(i)
        for r in range(min(SPLIT_ORDERS, max(1, SPLIT_BUDGET // n)) if classes is not None else 1):
            keys = sorted(blocks)
            random.Random(seed if r == 0 else f"{seed}/{r}").shuffle(keys)
            split = _split_by_blocks(b, blocks, keys, target)
            best = max(best or split, split, key=lambda s: _rank(s, target, classes, floor))
        if len(blocks) <= 2:  # larger blocks cannot do better
            break
    return best[:3]


def _class_matrix(shares: list[dict] | None, n: int) -> tuple[list[int], np.ndarray] | None:
    """The label values (255, unknown, left out) and the chips × values pixel shares, or None
    without shares for at least two values."""
    if not shares or len(shares) != n:
        return None
    values = sorted({int(v) for s in shares for v in s} - {IGNORE})
    if len(values) < 2:
        return None
    col = {v: j for j, v in enumerate(values)}
    m = np.zeros((n, len(values)))
    for i, s in enumerate(shares):
        for v, f in s.items():
            if int(v) in col:
                m[i, col[int(v)]] = f
    return values, m


def _rank(split, target: int, classes: np.ndarray | None, floor: float) -> tuple:
    """Order of preference between splits: at most 1.5× the validation share asked (none within:
    the one closest to it); then the share of its pixels the worst-off class keeps for training,
    up to ``floor``; then the training pixels kept in all (``split[3]``: per chip, the share that
    trains)."""
    kept = split[3]
    if len(split[1]) > 1.5 * target:
        return (False, 0.0, -len(split[1]))
    worst = 1.0
    if classes is not None:
        total = classes.sum(0)
        worst = float(np.min((kept @ classes)[total > 0] / total[total > 0]))
    return (True, round(min(worst, floor), 3), float(kept.sum()))


def class_training_shares(bounds: list[tuple], shares: list[dict] | None, train: list[int], overlaps: dict) -> dict:
    """Per label value (255 left out), the share of its chip pixels that trains after a split
    (chips overlapping validation areas count with their pixels outside them); {} where the
    chips' classes are not known."""
    matrix = _class_matrix(shares, len(bounds))
    if matrix is None:
        return {}
    values, m = matrix
    kept = np.zeros(len(bounds))
    kept[list(train)] = 1.0
    for i, vb in overlaps.items():
        kept[i] = _outside(bounds[i], vb)
    total = m.sum(0)
    return {v: float(k / t) for v, k, t in zip(values, kept @ m, total) if t > 0}


def _outside(chip, others: list) -> float:
    """The share of a chip's pixels outside the ``others`` bounds (on a 16 × 16 sample grid)."""
    return 1.0 - float(validation_mask(tuple(chip), others, 16, 16).mean())


def validation_mask(chip: tuple, others: list[tuple], height: int, width: int) -> np.ndarray:
    """Pixels of a chip (bounds ``chip``, ``height`` × ``width`` px) inside any of the ``others`` bounds.

    A pixel is inside when its centre is: ``col`` is inside ``[x0, x1)`` when
    ``x0 <= xmin + (col + 0.5) * px < x1`` (rows likewise from the top, ``ymax``).
    """
    xmin, ymin, xmax, ymax = chip
    px, py = (xmax - xmin) / width, (ymax - ymin) / height
    cols = xmin + (np.arange(width) + 0.5) * px
    rows = ymax - (np.arange(height) + 0.5) * py
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in others:
        mask |= np.outer((rows > y0) & (rows < y1), (cols > x0) & (cols < x1))
    return mask


def _split_by_blocks(b: np.ndarray, blocks: dict, order: list, target: int):
    """Validation: the blocks in ``order`` until ``target`` chips; training: every other chip, with
    the validation chips it overlaps. Also returns, per chip, the share of its pixels that trains."""
    val_keys, count = set(), 0
    for k in order:
        if count >= target:
            break
        val_keys.add(k)
        count += len(blocks[k])
    # a chip can only overlap chips whose centres lie within one chip of its own: the blocks
    # (at least two chips wide) around its own
    val_bounds = {k: b[blocks[k]] for k in val_keys}
    train, overlaps, kept = [], {}, np.zeros(len(b))
    for k, members in blocks.items():
        if k in val_keys:
            continue
        near = [val_bounds[(k[0] + dx, k[1] + dy)] for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                if (k[0] + dx, k[1] + dy) in val_bounds]
        train.extend(members)
        if not near:
            kept[members] = 1.0
            continue
        vb = np.concatenate(near)
        for i in members:
            x0, y0, x1, y1 = b[i]
            hit = vb[(vb[:, 0] < x1) & (vb[:, 2] > x0) & (vb[:, 1] < y1) & (vb[:, 3] > y0)]
            if len(hit):
                overlaps[i] = [tuple(map(float, h)) for h in hit]
                kept[i] = _outside(b[i], overlaps[i])
            else:
                kept[i] = 1.0
    return sorted(train), sorted(i for k in val_keys for i in blocks[k]), overlaps, kept
