"""Export Training Chips with APPEND: new chips added to the chip folder of an earlier export.

The labelling loop adds a few windows at a time (Suggest Areas to Label → the analyst labels →
export → fine-tune), so the new chips join the old ones in one folder. They must be the same kind
of data: bands (count and names), data type and chip size; their classes are the folder's (names
matched to its classes, never renumbered); the folder's normalisation statistics are kept, so a
model fine-tuned on the grown folder sees its inputs scaled as before. A mismatch is refused before
any work, naming the parameter to change.
"""

from __future__ import annotations

import json
import os
import shutil

from ..errors import UserInputError
from ..outputs import apply_umask, write_text
from .esri import write_esri_files
from .folder import CHIPS_FORMAT

KEEP = ("format", "format_version", "source", "source_band_count", "crs", "pixel_size", "bands", "data_type", "nodata",
        "chip_size", "unlabeled", "label_source", "mask", "ignore_value", "statistics")


def load_target(output: str) -> dict:
    """The earlier export in ``output`` that chips are appended to."""
    meta_path = os.path.join(output, "dataset.json")
    if not os.path.isfile(meta_path):
        raise UserInputError("OUTPUT", f"'{output}' holds no chip data set of this plugin (dataset.json) to add chips to. "
                                       "Turn APPEND off for a new folder.")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        meta["chips"], meta["classes"]  # noqa: B018 - the keys an append needs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserInputError("OUTPUT", f"the chip data set in '{output}' is damaged ({exc}); export it again.") from None
    if meta.get("format") != CHIPS_FORMAT:
        raise UserInputError("OUTPUT", f"'{meta_path}' is not a chip data set of this plugin.")
    return meta


def check_compatible(old: dict, info, bands: list[int], data_type: str, size: int) -> None:
    """The new chips must be like the folder's: bands, data type, chip size."""
    names = [info.band_names[b - 1] for b in bands]
    have = [b.get("name", "") for b in old["bands"]]
    if len(names) != len(have):
        raise UserInputError("BANDS", f"the chip folder's chips have {len(have)} bands ({', '.join(have)}); these would "
                                      f"have {len(names)}. Give BANDS so that they match.")
    if [n.lower() for n in names] != [n.lower() for n in have] and not all(n.lower().startswith("band ") for n in names + have):
        raise UserInputError("BANDS", f"the chip folder's bands are {', '.join(have)}; these would be {', '.join(names)}. "
                                      "Give BANDS in the folder's order.")
    if data_type != old.get("data_type"):
        raise UserInputError("INPUT", f"the chip folder holds {old.get('data_type')} chips; this imagery gives {data_type}. "
                                      "Add chips of the same imagery (or convert it first).")
    if int(size) != int(old["chip_size"]):
        raise UserInputError("CHIP_SIZE", f"the chip folder holds chips of {old['chip_size']} px; use CHIP_SIZE="
                                          f"{old['chip_size']} to add to it.")


def codes_for(values: list, old_classes: list[dict], parameter: str = "CLASS_FIELD") -> tuple[dict, list[dict]]:
    """Class field values → the folder's class codes: names matched (case-insensitive), codes kept;
    a class the folder does not have is an error listing its classes."""
    by_name = {str(c["name"]).strip().lower(): int(c["value"]) for c in old_classes}
    by_value = {int(c["value"]) for c in old_classes}
    mapping, unknown = {}, []
    for v in {v for v in values if v is not None and v != ""}:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
            (mapping.__setitem__(v, int(v)) if int(v) in by_value else unknown.append(str(int(v))))
        elif str(v).strip().lower() in by_name:
            mapping[v] = by_name[str(v).strip().lower()]
        else:
            unknown.append(str(v))
    if unknown:
        raise UserInputError(parameter, f"classes {', '.join(sorted(unknown))} are not classes of the chip folder, which has "
                             + ", ".join(f"{c['value']} {c['name']}" for c in old_classes if int(c["value"]))
                             + ". Use its class names (or export into a new folder).")
    used = set(mapping.values())
    return mapping, [dict(c) for c in old_classes if int(c["value"]) in used]


def match_classes(old_classes: list[dict], new_classes: list[dict], parameter: str) -> None:
    """A label raster's classes must be the folder's (by value; by name too where both have real names)."""
    old = {int(c["value"]): str(c["name"]) for c in old_classes}
    for c in new_classes:
        v, name = int(c["value"]), str(c["name"])
        if v not in old:
            raise UserInputError(parameter, f"class {v} ({name}) is not a class of the chip folder, which has "
                                 + ", ".join(f"{k} {n}" for k, n in old.items() if k) + ".")
        if not name.startswith("class ") and not old[v].startswith("class ") and name.lower() != old[v].lower():
            raise UserInputError(parameter, f"class {v} is '{name}' here but '{old[v]}' in the chip folder; recode the labels.")


def merge_into(work: str, output: str, old: dict, new: dict) -> dict:
    """Move the new chips (renumbered after the folder's) into ``output`` and write the grown
    dataset.json and Esri files last, each whole. Returns the merged description."""
    first = 1 + max((int(c["id"]) for c in old["chips"] if str(c["id"]).isdigit()), default=-1)
    width = len(old["chips"][0]["id"]) if old["chips"] else 9
    merged = {k: old[k] for k in KEEP if k in old}
    chips = [dict(c) for c in old["chips"]]
    files = list(old.get("files") or [])
    for n, chip in enumerate(new["chips"]):
        new_id = f"{first + n:0{width}d}"
        for sub in ("images", "labels"):
            src = os.path.join(work, sub, f"{chip['id']}.tif")
            apply_umask(src)
            os.replace(src, os.path.join(output, sub, f"{new_id}.tif"))
            files.append(f"{sub}/{new_id}.tif")
        chips.append(dict(chip, id=new_id))
    counts = {int(c["value"]): int(c.get("pixel_count", 0)) for c in old["classes"]}
    for c in new["classes"]:
        counts[int(c["value"])] = counts.get(int(c["value"]), 0) + int(c.get("pixel_count", 0))
    merged["classes"] = [dict(c, pixel_count=counts[int(c["value"])]) for c in old["classes"]]
    merged["ignored_pixel_count"] = int(old.get("ignored_pixel_count", 0)) + int(new.get("ignored_pixel_count", 0))
    merged["stride"] = old.get("stride")
    merged["chips"] = chips
    merged["appended"] = list(old.get("appended") or []) + [{"source": new["source"], "chips": len(new["chips"])}]
    esri = os.path.join(work, ".esri")
    os.makedirs(esri, exist_ok=True)
    write_esri_files(esri, merged)
    for name in sorted(os.listdir(esri)):
        with open(os.path.join(esri, name), encoding="utf-8") as f:
            write_text(os.path.join(output, name), "OUTPUT", f.read())
    merged["files"] = sorted(set(files) | set(os.listdir(esri)) | {"dataset.json"})
    write_text(os.path.join(output, "dataset.json"), "OUTPUT", json.dumps(merged, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return merged
