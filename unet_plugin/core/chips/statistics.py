"""Band statistics of the exported chips: count, mean, standard deviation, min and max over valid pixels."""

from __future__ import annotations

import numpy as np


class BandStats:
    """Per-band count, mean, standard deviation, min and max over valid pixels, chip by chip.

    Each chip's mean and sum of squared deviations are merged into the running ones (Chan et
    al.'s pairwise update), which stays exact where a sum of squares would lose digits to large
    values. Integer bands of up to 16 bits are counted in a histogram, the cheapest pass over
    them; other types in float64.
    """

    _OFFSETS = {np.dtype(np.uint8): 0, np.dtype(np.uint16): 0, np.dtype(np.int8): 128, np.dtype(np.int16): 32768}

    def __init__(self, n: int):
        self.count = np.zeros(n)
        self.mean = np.zeros(n)
        self.m2 = np.zeros(n)
        self.min = np.full(n, np.inf)
        self.max = np.full(n, -np.inf)

    def add(self, data: np.ndarray, valid: np.ndarray) -> None:
        n = int(np.count_nonzero(valid))
        if n == 0:
            return
        every = n == valid.size
        offset = self._OFFSETS.get(data.dtype)
        for i in range(data.shape[0]):
            px = data[i].ravel() if every else data[i][valid]
            if offset is not None:
                hist = np.bincount(px.astype(np.int32) + offset if offset else px)
                values = np.arange(len(hist), dtype=np.float64) - offset
                mean = float(hist @ values) / n
                m2 = float(hist @ np.square(values - mean))
                seen = np.flatnonzero(hist)
                lo, hi = values[seen[0]], values[seen[-1]]
            else:
                x = px.astype(np.float64)
                mean = float(x.mean())
                d = x - mean
                m2 = float(d @ d)
                lo, hi = float(x.min()), float(x.max())
            total = self.count[i] + n
            delta = mean - self.mean[i]
            self.mean[i] += delta * n / total
            self.m2[i] += m2 + delta * delta * self.count[i] * n / total
            self.count[i] = total
            self.min[i] = min(self.min[i], lo)
            self.max[i] = max(self.max[i], hi)

    def as_list(self, bands: list[int], names: tuple) -> list[dict]:
        std = np.sqrt(self.m2 / np.maximum(self.count, 1))
        return [
            {"band": b, "name": names[b - 1], "min": float(self.min[i]), "max": float(self.max[i]),
             "mean": float(self.mean[i]), "std": float(std[i]), "count": int(self.count[i])}
            for i, b in enumerate(bands)
        ]
