"""arcgis.learn 2.4.1's own code, loaded from its wheel, to judge our Classified Tiles folders.

The arcgis package imports far too much (fastai, its GIS stack) to be imported here, so the
functions and statements that read a Classified Tiles folder are taken from its source files
as they are — parsed with ``ast`` and executed unchanged — not rewritten:

- ``_data.merge_emd_and_stats``: how ``prepare_data([folder_a, folder_b])`` merges folders;
- ``prepare_data``'s class-mapping statement (``Value``/``Name`` or ``ClassValue``/``ClassName``)
  and its class-weight statement (``ClassPixelStats.NumPixelsPerClass``, for class balancing);
- ``models/_unet_utils``: ``is_contiguous`` and ``map_to_contiguous``, which turn label pixel
  values into the class indices its loss sees (``ArcGISSegmentationLabelList``).

The wheel is downloaded by scripts/setup.sh into the dev venv (``$ARCGIS_WHEEL`` overrides).
"""

from __future__ import annotations

import ast
import glob
import json
import logging
import os
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

LEARN = "arcgis-2.4.1.data/platlib/arcgis/learn/"


def wheel_path() -> str | None:
    if os.environ.get("ARCGIS_WHEEL"):
        return os.environ["ARCGIS_WHEEL"]
    venv = os.path.dirname(os.path.dirname(sys.executable))
    found = glob.glob(os.path.join(venv, "wheels", "arcgis-2.4.1-*.whl"))
    return found[0] if found else None


class ArcgisLearn:
    """The pieces of arcgis.learn named above, executed from the wheel's source."""

    def __init__(self, wheel: str):
        with zipfile.ZipFile(wheel) as z:
            self.data_src = z.read(LEARN + "_data.py").decode("utf-8")
            self.unet_src = z.read(LEARN + "models/_unet_utils.py").decode("utf-8")
        self.data_tree = ast.parse(self.data_src)
        self.unet_tree = ast.parse(self.unet_src)
        import torch

        self.namespace = {"json": json, "Path": Path, "defaultdict": defaultdict, "logging": logging, "np": np,
                          "torch": torch, "os": os}
        for tree, names in ((self.data_tree, ("merge_emd_and_stats",)),
                            (self.unet_tree, ("is_contiguous", "map_to_contiguous"))):
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name in names:
                    exec(compile(ast.Module(body=[node], type_ignores=[]), "arcgis/learn", "exec"), self.namespace)

    def _statement(self, function: str, marker: str, kind) -> ast.stmt:
        fn = next(n for n in ast.walk(self.data_tree) if isinstance(n, ast.FunctionDef) and n.name == function)
        found = [n for n in ast.walk(fn) if isinstance(n, kind) and marker in (ast.get_source_segment(self.data_src, n) or "")]
        return min(found, key=lambda n: len(ast.get_source_segment(self.data_src, n)))

    def _run(self, node: ast.stmt, scope: dict) -> dict:
        exec(compile(ast.Module(body=[node], type_ignores=[]), "arcgis/learn/_data.py", "exec"), dict(self.namespace), scope)
        return scope

    def merge_emd_and_stats(self, folders):
        return self.namespace["merge_emd_and_stats"]([Path(f) for f in folders])

    def class_mapping(self, emd: dict, user_mapping=None) -> dict:
        """``prepare_data``'s class mapping from the .emd (its try/except on Value / ClassValue)."""
        node = self._statement("prepare_data", "emd_class_mapping = {", ast.Try)
        return self._run(node, {"emd": emd, "class_mapping": user_mapping})["emd_class_mapping"]

    def class_weight(self, stats: dict):
        """``prepare_data``'s class weights for ``class_balancing=True`` (None: balancing ignored)."""
        node = self._statement("prepare_data", "pixel_stats = stats.get(\"ClassPixelStats\"", ast.If)

        class Data:
            pass

        scope = self._run(node, {"dataset_type": "Classified_Tiles", "stats": stats, "data": Data()})
        return scope["data"].class_weight

    def label_indices(self, label: np.ndarray, class_mapping: dict):
        """Class indices its loss gets for a label chip, and its class list (``["NoData"] + names``)."""
        import torch

        ns = self.namespace
        classes = ["NoData"] + list(class_mapping.values())
        x = torch.from_numpy(label.astype(np.float32))[None]
        if not ns["is_contiguous"](sorted([0] + list(class_mapping.keys()))):
            x = ns["map_to_contiguous"](x, [0] + list(class_mapping.keys()))
        return x, classes
