"""The tile grid of Classify Raster: where tiles go, how they blend, which rows each process owns.

Tiles overlap by OVERLAP percent and blend with weights that fall off towards their edges. Column
blocks bound the strip buffers by the block width, not the raster's width: a block finalises
columns [x0, x1) and runs every tile of the grid that touches them, so a pixel gets exactly the
tiles it gets without blocks (tiles across a boundary run in both blocks). Under torchrun each
process finalises a band of rows [y0, y1) and runs every tile row touching it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...core.windows import axis_origins


def blend_weights(height: int, width: int) -> np.ndarray:
    """Tile weights that fall off linearly towards the edges (never zero).

    ``w(i) = max(min(i + 0.5, n - i - 0.5) / (n / 2), 0.01)`` along each axis,
    the 2-D weight their product: a pixel near a tile's edge counts little
    where a neighbouring tile sees it from its centre, so overlaps leave no seams.
    """
    def ramp(n):
        i = np.arange(n, dtype=np.float32)
        return np.maximum(np.minimum(i + 0.5, n - i - 0.5) / (n / 2), 0.01)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def tta_forward(model, x: torch.Tensor) -> torch.Tensor:
    """Mean softmax over the 8 flips/90° rotations of ``x``."""
    total = None
    for flip in (False, True):
        xf = x.flip(-1) if flip else x
        for k in range(4):
            p = torch.softmax(model(torch.rot90(xf, k, (-2, -1))).float(), 1)
            p = torch.rot90(p, -k, (-2, -1))
            p = p.flip(-1) if flip else p
            total = p if total is None else total + p
    return total / 8


def row_range(rows: list[int], height: int, rank: int, world: int) -> tuple[int, int]:
    """The rows [y0, y1) that process ``rank`` of ``world`` finalises: an even share of the tile rows,
    cut at tile-row origins (the first share starts at 0, the last ends at ``height``)."""
    n = len(rows)
    i0, i1 = n * rank // world, n * (rank + 1) // world
    y0 = 0 if rank == 0 else (rows[i0] if i0 < n else height)
    y1 = height if rank == world - 1 else (rows[i1] if i1 < n else height)
    return y0, max(y0, y1)



@dataclass(frozen=True)
class Block:
    """A column block: it finalises columns [x0, x1) and reads the strip [s0, s0 + width) its tiles need."""

    x0: int
    x1: int
    s0: int
    width: int
    cols: list[int]


@dataclass(frozen=True)
class TileGrid:
    """Tile origins (relative to the window), tile shape and this process's share of the work."""

    th: int
    tw: int
    stride: int
    rows: list[int]
    cols: list[int]
    y0: int  # this process finalises rows [y0, y1)
    y1: int
    my_rows: list[int]  # the tile rows it runs: every one touching [y0, y1)
    blocks: list[Block]

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)

    @property
    def tile_runs(self) -> int:
        """Tiles this process runs (tiles across block boundaries run twice)."""
        return max(len(self.my_rows) * sum(len(b.cols) for b in self.blocks), 1)


def plan_tiles(width: int, height: int, tile: int, overlap: float, block_width: int, rank: int, world: int) -> TileGrid:
    """The tile grid over a ``width`` × ``height`` window for process ``rank`` of ``world``."""
    stride = max(1, tile - int(round(tile * overlap / 100)))
    th, tw = min(tile, height), min(tile, width)
    rows = axis_origins(height, tile, stride)
    cols = axis_origins(width, tile, stride)
    y0, y1 = row_range(rows, height, rank, world)
    my_rows = [r for r in rows if r < y1 and r + th > y0]
    block_width = max(block_width, tw)
    blocks = []
    for x0 in range(0, width, block_width):
        x1 = min(x0 + block_width, width)
        bcols = [c for c in cols if c < x1 and c + tw > x0]
        blocks.append(Block(x0, x1, bcols[0], bcols[-1] + tw - bcols[0], bcols))
    return TileGrid(th, tw, stride, rows, cols, y0, y1, my_rows, blocks)
