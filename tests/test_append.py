"""Export Training Chips with APPEND: the labelling loop adds chips to the folder of an earlier export."""

from __future__ import annotations

import json
import os

import numpy as np
from osgeo import gdal, ogr

from conftest import NC_IMAGE, NC_POLYGONS, NC_STRATA, cli, rasterize_like

X0, Y1 = 630534.0, 228114.0  # the NC grid's origin; 28.5 m pixels
LEFT = f"{X0},{X0 + 245 * 28.5},{Y1 - 443 * 28.5},{Y1}"
RIGHT = f"{X0 + 245 * 28.5},{X0 + 489 * 28.5},{Y1 - 443 * 28.5},{Y1}"


def _digest(folder) -> dict:
    import hashlib

    return {os.path.relpath(os.path.join(r, f), folder): hashlib.sha256(open(os.path.join(r, f), "rb").read()).hexdigest()
            for r, _d, fs in os.walk(folder) for f in fs}


def test_chips_are_added_with_the_folders_classes_and_normalisation(no_qgis, tmp_path):
    env = no_qgis()
    chips = tmp_path / "chips"
    run = cli(env, "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=64", f"EXTENT={LEFT}",
              f"OUTPUT={chips}")
    assert run.returncode == 0, run.stderr
    before = json.loads((chips / "dataset.json").read_text())
    # the analyst's new polygons on the other half, with text classes: agriculture sorts first but is code 2 here
    run = cli(env, "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABELS={NC_POLYGONS}", "CLASS_FIELD=label",
              "UNLABELED=ignore", "CHIP_SIZE=64", f"EXTENT={RIGHT}", "APPEND=true", f"OUTPUT={chips}")
    assert run.returncode == 0, run.stderr
    assert "chips added to the" in run.stdout
    after = json.loads((chips / "dataset.json").read_text())
    assert [(c["value"], c["name"]) for c in after["classes"]] == [(c["value"], c["name"]) for c in before["classes"]]
    assert after["statistics"] == before["statistics"]  # the normalisation a fine-tuned model keeps
    added = after["chips"][len(before["chips"]):]
    assert after["chips"][:len(before["chips"])] == before["chips"] and added
    assert len({c["id"] for c in after["chips"]}) == len(after["chips"])
    on_disk = {os.path.relpath(os.path.join(r, f), chips) for r, _d, fs in os.walk(chips) for f in fs}
    assert on_disk == set(after["files"])
    assert len((chips / "map.txt").read_text().splitlines()) == len(after["chips"])  # Esri's list grew too
    # the new chips' labels carry the folder's codes: what the polygons rasterise to with strata's numbering
    codes = {c["name"]: c["value"] for c in before["classes"]}
    chip = added[len(added) // 2]
    label = gdal.Open(str(chips / "labels" / f"{chip['id']}.tif"))
    gt = label.GetGeoTransform()
    col, row = round((gt[0] - X0) / 28.5), round((Y1 - gt[3]) / 28.5)
    from unet_segmentation.unet_plugin.core.labels import write_polygons

    src = ogr.Open(NC_POLYGONS)
    coded = str(tmp_path / "coded.gpkg")
    write_polygons(coded, gdal.Open(NC_IMAGE).GetProjection(),
                   [(f.GetGeometryRef().ExportToWkb(), codes[f.GetField("label")]) for f in src.GetLayer(0)])
    src = None
    truth = rasterize_like(NC_IMAGE, coded, "code")[row:row + 64, col:col + 64]
    got = label.ReadAsArray()
    known = truth != 255
    assert known.any() and np.array_equal(got[known], truth[known])
    from unet_segmentation.unet_plugin.core.chips import load_chip_dataset

    assert len(load_chip_dataset(str(chips))) == len(after["chips"])


def test_a_mismatch_is_refused_before_work_and_changes_nothing(no_qgis, tmp_path):
    env = no_qgis()
    chips = tmp_path / "chips"
    assert cli(env, "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=64", f"EXTENT={LEFT}",
               f"OUTPUT={chips}").returncode == 0
    kept = _digest(chips)
    wetland = str(tmp_path / "wetland.gpkg")  # the analyst typed a class the folder does not have
    gdal.VectorTranslate(wetland, NC_POLYGONS, format="GPKG")
    ds = ogr.Open(wetland, 1)
    layer = ds.GetLayer(0)
    f = layer.GetNextFeature()
    f.SetField("label", "wetland")
    layer.SetFeature(f)
    ds = None
    other = tmp_path / "other_classes.tif"
    gdal.Translate(str(other), NC_STRATA, scaleParams=[[1, 7, 11, 17]], outputType=gdal.GDT_Byte)
    common = [f"INPUT={NC_IMAGE}", f"EXTENT={RIGHT}", "APPEND=true", f"OUTPUT={chips}"]
    cases = [
        ([f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=128"], "CHIP_SIZE"),
        ([f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=64", "BANDS=1,2,3"], "BANDS"),
        ([f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=64", "BANDS=6,5,4,3,2,1"], "BANDS"),
        ([f"LABEL_RASTER={other}", "CHIP_SIZE=64"], "LABEL_RASTER"),
        ([f"LABELS={wetland}", "CLASS_FIELD=label", "CHIP_SIZE=64"], "CLASS_FIELD"),
    ]
    for args, key in cases:
        run = cli(env, "exporttrainingchips", *common, *args)
        assert run.returncode == 1 and f"Error: {key}: " in run.stderr and "Traceback" not in run.stderr, (key, run.stderr)
        assert _digest(chips) == kept, key
    empty = tmp_path / "empty"
    empty.mkdir()
    run = cli(env, "exporttrainingchips", f"INPUT={NC_IMAGE}", f"LABEL_RASTER={NC_STRATA}", "CHIP_SIZE=64", "APPEND=true",
              f"OUTPUT={empty}")
    assert run.returncode == 1 and "Error: OUTPUT: " in run.stderr and os.listdir(empty) == []
