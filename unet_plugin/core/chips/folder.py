"""The chip folder: its format name and version, the files an export owns, and how a new export takes its place.

An export is written into a partial folder beside OUTPUT and moved into place at the end. A
re-export of the same raster replaces exactly the files the earlier export listed in its manifest
(``dataset.json``'s ``files``); anything else a user put in the folder stays.
"""

from __future__ import annotations

import json
import os
import shutil

from ..errors import UserInputError
from ..outputs import apply_umask, partial_path

CHIPS_FORMAT = "unet-qgis-chips"
CHIPS_FORMAT_VERSION = 1

#: what an export writes besides the chips; with the chips' files, the export's own (its manifest)
EXPORT_FILES = ("dataset.json", "map.txt", "esri_model_definition.emd", "esri_accumulated_stats.json", "stats.txt")


def owned_files(output: str) -> list[str]:
    """The files (relative paths) an earlier export wrote into ``output``: its manifest in
    dataset.json, or for exports before 0.4.2 the chips it lists and the files every export writes."""
    try:
        with open(os.path.join(output, "dataset.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return [f for f in EXPORT_FILES if os.path.exists(os.path.join(output, f))]
    if isinstance(meta.get("files"), list):
        return [str(f) for f in meta["files"]] + ["dataset.json"]
    chips = [c.get("id") for c in meta.get("chips", []) if isinstance(c, dict)]
    return ([os.path.join(sub, f"{c}.tif") for c in chips if c for sub in ("images", "labels")]
            + [f for f in EXPORT_FILES if os.path.exists(os.path.join(output, f))])


def move_into_place(work: str, output: str) -> None:
    """The finished export in ``work`` becomes ``output``; an earlier export there is replaced file
    by file — exactly the files it wrote (its manifest); anything else in the folder stays."""
    shutil.rmtree(os.path.join(work, ".scratch"), ignore_errors=True)
    apply_umask(work)
    if not os.path.isdir(output) or not os.listdir(output):
        if os.path.isdir(output):
            os.rmdir(output)
        os.replace(work, output)
        return
    old = partial_path(output)  # the earlier export's files, until the new ones are in place
    for rel in owned_files(output):
        src = os.path.join(output, rel)
        if os.path.isfile(src) and os.path.normpath(rel).split(os.sep)[0] not in ("", "..", "."):
            os.renames(src, os.path.join(old, rel))
    for root, _dirs, files in os.walk(work):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), work)
            os.makedirs(os.path.dirname(os.path.join(output, rel)), exist_ok=True)
            os.replace(os.path.join(root, f), os.path.join(output, rel))
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def check_output_folder(output: str, source: str) -> None:
    """Refuse to mix data sets: OUTPUT must be new, empty, or an earlier export of the same raster."""
    replaced = output.rstrip("/\\") + ".replaced"  # left by versions before 0.4.2 killed while replacing
    if os.path.isdir(replaced):
        if os.path.exists(output):
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            os.replace(replaced, output)
    if not os.path.exists(output):
        return
    if not os.path.isdir(output):
        raise UserInputError("OUTPUT", f"'{output}' is a file, not a folder.")
    entries = os.listdir(output)
    if not entries:
        return
    meta = os.path.join(output, "dataset.json")
    if os.path.exists(meta):
        try:
            with open(meta, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = {}
        if old.get("format") == CHIPS_FORMAT and os.path.abspath(old.get("source", "")) == os.path.abspath(source):
            return  # a re-run of the same export: replaced as a whole at the end
        raise UserInputError(
            "OUTPUT",
            f"'{output}' already holds a chip data set of another raster "
            f"({old.get('source', 'unknown')}). Choose a new or empty folder; data sets are never mixed.",
        )
    raise UserInputError(
        "OUTPUT", f"'{output}' is not empty ({len(entries)} entries). Choose a new or empty folder."
    )
