"""The chips as tensors: normalised images and index labels, validation areas and nodata ignored."""

from __future__ import annotations

import os

import numpy as np
import torch
from osgeo import gdal

from ...core.chips import ChipDataset, validation_mask
from ...core.codes import IGNORE
from ...core.errors import UserInputError
from .sampling import class_presence

IN_MEMORY_BUDGET = 4 * 1024**3  # chips beyond this are read from disk each epoch


def classes_and_lut(data: ChipDataset) -> tuple[list[dict], np.ndarray]:
    """The classes that have pixels, and the table from label values to class indices (others: IGNORE)."""
    classes = [c for c in data.classes if c.get("pixel_count", 1) > 0]
    if len(classes) < 2:
        names = ", ".join(c["name"] for c in classes) or "none"
        raise UserInputError(
            "CHIPS", f"the chips hold only one class ({names}); a segmentation model needs at least two. "
            "Label another class, or export with UNLABELED=background."
        )
    lut = np.full(256, IGNORE, dtype=np.uint8)
    for i, c in enumerate(classes):
        lut[int(c["value"])] = i
    return classes, lut


class ChipTensors:
    """Normalised chips and index labels, in memory when they fit, else read on demand."""

    def __init__(self, data: ChipDataset, indices: list[int], lut: np.ndarray, mean: np.ndarray, std: np.ndarray,
                 held_out: dict | None = None):
        """``held_out``: chip index → bounds of validation chips it overlaps; those pixels are ignored."""
        self.data, self.indices, self.lut = data, indices, lut
        self.held_out = held_out or {}
        self.mean = mean.reshape(-1, 1, 1).astype(np.float32)
        self.std = std.reshape(-1, 1, 1).astype(np.float32)
        nbytes = len(indices) * (len(mean) * 4 + 1) * data.chip_size**2
        self.cache = None
        if indices and nbytes <= IN_MEMORY_BUDGET:
            pairs = [self._read(i) for i in indices]
            self.cache = (torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs])))

    def _read(self, i: int):
        try:
            return self._read_chip(i)
        except RuntimeError as exc:  # a truncated or damaged GeoTIFF: name it, not IReadBlock
            raise UserInputError(
                "CHIPS", f"chip {os.path.basename(self.data.image_paths[i])} (or its label) cannot be read: "
                f"{str(exc).splitlines()[0]}. Export the chips again, or delete the damaged chip and its label.") from None

    def _read_chip(self, i: int):
        img = gdal.Open(self.data.image_paths[i]).ReadAsArray()
        if img.ndim == 2:
            img = img[None]
        valid = np.ones(img.shape[1:], dtype=bool)
        for b, nd in enumerate(self.data.nodata or []):
            if nd is not None:
                valid &= img[b] != nd
        x = (img.astype(np.float32) - self.mean) / self.std
        x[:, ~valid] = 0.0
        x[~np.isfinite(x)] = 0.0
        y = self.lut[gdal.Open(self.data.label_paths[i]).ReadAsArray()]
        y[~valid] = IGNORE
        if i in self.held_out:  # validation pixels never reach the training loss
            y[validation_mask(self.data.bounds[i], self.held_out[i], *y.shape)] = IGNORE
        return x, y.astype(np.uint8)

    def __len__(self):
        return len(self.indices)

    def presence(self, k: int) -> np.ndarray:
        """chips × classes: which classes each chip holds (its training labels, validation areas left out)."""
        if self.cache is not None:
            return class_presence(self.cache[1], k)
        if not self.indices:
            return np.zeros((0, k), dtype=bool)
        return np.concatenate([class_presence(torch.from_numpy(self._read(i)[1][None]), k) for i in self.indices])

    def batch(self, positions) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is not None:
            idx = torch.as_tensor(positions)
            return self.cache[0][idx], self.cache[1][idx]
        pairs = [self._read(self.indices[p]) for p in positions]
        return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(np.stack([p[1] for p in pairs]))
