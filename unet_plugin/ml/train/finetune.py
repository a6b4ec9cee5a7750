"""INIT_MODEL: continue training a model only on chips of its classes, bands and value scale."""

from __future__ import annotations

import re

from ...core.chips import ChipDataset
from ...core.errors import UserInputError


def check_fine_tuning(meta: dict, data: ChipDataset, classes: list[dict]) -> None:
    """Refuse INIT_MODEL unless the chips have its classes (value and name), bands and value scale.

    Classes are matched by value *and* name: text classes get codes 1..n in sorted order, so
    other classes of the same count get the same codes and would silently take over the
    model's meaning.
    """
    ours = [(int(c["value"]), str(c["name"])) for c in meta["classes"]]
    theirs = [(int(c["value"]), str(c["name"])) for c in classes]
    if ours != theirs:
        raise UserInputError(
            "INIT_MODEL",
            "the model's classes " + ", ".join(f"{v} {n}" for v, n in ours) + " differ from the chips' classes "
            + ", ".join(f"{v} {n}" for v, n in theirs) + ". Fine-tune only on chips labelled with the same classes "
            "(same codes and names).",
        )
    if int(meta["in_channels"]) != len(data.bands):
        raise UserInputError(
            "INIT_MODEL", f"the model was trained on {meta['in_channels']} bands; these chips have {len(data.bands)}. "
            "Fine-tune only on chips of the same bands in the same order.")
    names = [b.get("name", "") for b in meta.get("bands", [])]
    chip_names = [b.get("name", "") for b in data.bands]
    default = re.compile(r"^Band \d+$")
    for i, (a, b) in enumerate(zip(names, chip_names)):
        if a and b and a != b and not default.match(a) and not default.match(b):
            raise UserInputError(
                "INIT_MODEL", f"band {i + 1} of the model is '{a}' but of the chips '{b}'. "
                "Export the chips with the model's bands in the same order (BANDS).")
    mean, std = meta["normalization"]["mean"], meta["normalization"]["std"]
    for i, stats in enumerate(data.statistics):
        if abs(float(stats["mean"]) - float(mean[i])) > 5 * max(float(std[i]), 1e-6):
            raise UserInputError(
                "INIT_MODEL", f"band {i + 1} of the chips (mean {float(stats['mean']):.4g}) is on another scale than the "
                f"model's training data (mean {float(mean[i]):.4g}, std {float(std[i]):.4g}). Fine-tune on imagery "
                "scaled like the model's (same sensor, units and processing level).")
