"""The files of Esri's Classified Tiles layout, beside our own, so arcgis.learn and ArcGIS Pro read our chips."""

from __future__ import annotations

import json
import os

from ..codes import IGNORE

ESRI_IGNORE_NAME = "ignore (unlabelled or nodata)"


def esri_classes(meta: dict) -> list[dict]:
    """The classes as Esri's Classified Tiles lists them: no 0 (Esri's NoData), and our ignore value
    255 as a class of its own when the labels hold it.

    arcgis.learn feeds label values unchanged to its loss when the class values are 1..n without
    gaps, so a 255 it does not know ends in "Target 255 is out of bounds". Declared as a class,
    it is mapped to a class index like any other, and ``UnetClassifier(data, ignore_classes=[255])``
    leaves it out of the loss, which is what 255 means here.
    """
    classes = [dict(c) for c in meta["classes"] if c["value"] != 0]
    if meta.get("ignored_pixel_count", 0) > 0:
        classes.append({"value": IGNORE, "name": ESRI_IGNORE_NAME, "color": [0, 0, 0],
                        "pixel_count": int(meta["ignored_pixel_count"])})
    return classes


def write_esri_files(folder: str, meta: dict) -> None:
    """Write the files arcgis.learn's ``prepare_data(dataset_type="Classified_Tiles")`` reads, in Pro's layout.

    ``esri_model_definition.emd`` (classes with Value/Name/Color, band statistics without nodata
    in ``AllTilesStats``, ``InputRastersProps``), ``esri_accumulated_stats.json`` (class pixel and
    image counts under ``ClassPixelStats``, which arcgis.learn's class balancing and multi-folder
    merging read; ``BandStatsState``), ``map.txt`` and ``stats.txt``.
    """
    size = meta["chip_size"]
    classes = esri_classes(meta)
    chips = meta["chips"]
    images_per_class = [sum(1 for ch in chips if ch["label_shares"].get(str(c["value"]), 0) > 0) for c in classes]
    with open(os.path.join(folder, "map.txt"), "w", encoding="utf-8") as f:
        for chip in chips:
            f.write(f"images\\{chip['id']}.tif labels\\{chip['id']}.tif\n")
    stats = meta["statistics"]
    emd = {
        "Framework": "arcgis.learn.models._inferencing",
        "ModelConfiguration": "_unet",
        "ModelType": "ImageClassification",
        "MetaDataMode": "Classified_Tiles",
        "ExtractBands": list(range(len(meta["bands"]))),
        "ImageHeight": size,
        "ImageWidth": size,
        "ImageSpaceUsed": "MAP_SPACE",
        "Classes": [{"Value": c["value"], "Name": c["name"], "Color": list(c["color"][:3])} for c in classes],
        "InputRastersProps": {
            "RasterCount": 1,
            "BandNames": [b["name"] for b in meta["bands"]],
            "DataType": meta["data_type"],
            "NoData": meta.get("nodata"),
            "CellSize": {"x": meta["pixel_size"][0], "y": meta["pixel_size"][1]},
            "SpatialReference": {"wkt": meta["crs"]},
        },
        "AllTilesStats": [{"BandName": s.get("name", ""), "Min": s["min"], "Max": s["max"], "Mean": s["mean"],
                           "StdDev": s["std"]} for s in stats],
    }
    with open(os.path.join(folder, "esri_model_definition.emd"), "w", encoding="utf-8") as f:
        json.dump(emd, f, indent=1)
    accumulated = {
        "Version": 1,
        "MetaDataMode": "Classified_Tiles",
        "ImageFormat": "TIFF",
        "NumTiles": len(chips),
        "TileSizeX": size,
        "TileSizeY": size,
        "NumBands": len(meta["bands"]),
        "NumClasses": len(classes),
        "OutputFeatures": False,
        "ImageSpaceUsed": "MAP_SPACE",
        "CellSize": {"x": meta["pixel_size"][0], "y": meta["pixel_size"][1]},
        "SpatialReference": {"wkt": meta["crs"]},
        "Classes": [{"ClassValue": c["value"], "ClassName": c["name"], "ClassColor": list(c["color"][:3])} for c in classes],
        "ClassPixelStats": {
            "NumClasses": len(classes),
            "NumImagesTotal": len(chips),
            "NumImagesPerClass": images_per_class,
            "NumPixelsPerClass": [int(c["pixel_count"]) for c in classes],
        },
        # Min, Max, M1 (mean), M2 (sum of squared deviations) and Num over valid pixels: what
        # arcgis.learn merges across folders into AllTilesStats
        "BandStatsState": [{"Min": s["min"], "Max": s["max"], "M1": s["mean"], "M2": s["std"] ** 2 * s.get("count", 0),
                            "Num": s.get("count", 0)} for s in stats],
    }
    with open(os.path.join(folder, "esri_accumulated_stats.json"), "w", encoding="utf-8") as f:
        json.dump(accumulated, f, indent=1)
    with open(os.path.join(folder, "stats.txt"), "w", encoding="utf-8") as f:
        f.write(f"Total number of tiles: {len(chips)}\n")
        for c in classes:
            f.write(f"Class {c['value']} ({c['name']}): {c['pixel_count']} pixels\n")
