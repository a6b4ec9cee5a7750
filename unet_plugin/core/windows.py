"""Where chips and tiles go: the one formula for windows over a raster."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """A pixel window: column and row offset, width and height."""

    col: int
    row: int
    width: int
    height: int


def axis_origins(length: int, size: int, stride: int) -> list[int]:
    """Origins of windows of ``size`` pixels along an axis of ``length`` pixels.

    The formula: ``n = ceil((length - size) / stride) + 1`` windows at
    ``o_i = min(i * stride, length - size)``. Every pixel is covered, no window
    reaches past the edge, and the last window is shifted back to end exactly at
    the edge (so it overlaps its neighbour more than ``stride`` says). When
    ``length < size`` there is one window at 0, which the caller pads.

    Args:
        length: pixels along the axis (> 0).
        size: window size in pixels (> 0).
        stride: pixels between window origins (> 0).

    Returns:
        Sorted, unique origins.
    """
    if length <= 0 or size <= 0 or stride <= 0:
        raise ValueError("length, size and stride must be positive")
    if length <= size:
        return [0]
    n = math.ceil((length - size) / stride) + 1
    return sorted({min(i * stride, length - size) for i in range(n)})


def grid(
    col0: int, row0: int, width: int, height: int, size: int, stride: int
) -> list[Window]:
    """Windows of ``size`` × ``size`` over the pixel rectangle, row by row.

    Windows are clipped to the rectangle when it is smaller than ``size``.
    """
    rows = axis_origins(height, size, stride)
    cols = axis_origins(width, size, stride)
    return [
        Window(col0 + c, row0 + r, min(size, width), min(size, height))
        for r in rows
        for c in cols
    ]
