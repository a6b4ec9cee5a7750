"""The streaming core of Classify Raster: strips in, blended class probabilities out.

Memory is bounded by one strip of tiles of one column block (tile height × block width), not by
the raster's size. A reader thread reads one strip per tile row and block, normalises it and cuts
it into tiles; the calling thread runs the model and accumulates the tiles' weighted probabilities
in strip buffers; rows no later tile touches are final and go to a writer thread. Reading and
writing so overlap with the model's forward pass.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...core.codes import CONFIDENCE_NODATA, NODATA, PROBABILITY_NODATA
from ...core.errors import Canceled
from ...core.outputs import write_error
from ...core.raster import read_window
from ...core.windows import Window
from .outputs import PartialOutputs, probability_bytes
from .tiles import TileGrid, blend_weights, tta_forward


@dataclass(frozen=True)
class Source:
    """The raster as the model sees it: which bands, where, and how they are normalised."""

    ds: object  # gdal.Dataset
    bands: list[int]
    window: Window
    nodata: list
    mean: np.ndarray  # (bands, 1, 1)
    std: np.ndarray

    def read(self, col: int, row: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised values (bands, h, w) at window offset (col, row), nodata pixels 0, and the valid mask."""
        data, valid = read_window(self.ds, self.bands, Window(self.window.col + col, self.window.row + row, width, height),
                                  self.nodata)
        x = (data.astype(np.float32) - self.mean) / self.std
        x[:, ~valid] = 0.0
        return x, valid


class StripRunner:
    """Run every tile of this process's share of ``grid`` through ``forward`` and write the finished rows."""

    def __init__(self, source: Source, grid: TileGrid, forward: Callable, lut: np.ndarray, device: torch.device,
                 outputs: PartialOutputs, batch_size: int, tta: bool):
        self.source, self.grid, self.forward, self.lut = source, grid, forward, lut
        self.device, self.outputs, self.batch_size, self.tta = device, outputs, batch_size, tta
        self.k = len(lut)
        self.weights = torch.from_numpy(blend_weights(grid.th, grid.tw)).to(device)
        self.counts = np.zeros(256, dtype=np.int64)  # pixels per class value of the finished rows
        self.run = self.skipped = self.done = 0
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.q_in: queue.Queue = queue.Queue(maxsize=2)
        self.q_out: queue.Queue = queue.Queue(maxsize=4)
        self.block = None  # index of the block in the buffers
        self.prev = None  # the tile row the buffers start at

    # -- threads -----------------------------------------------------------------------------
    def _reader(self) -> None:
        """Read one strip per tile row and block, normalise, cut into tiles."""
        grid = self.grid
        try:
            for bi, block in enumerate(grid.blocks):
                for r in grid.my_rows:
                    if self.stop.is_set():
                        return
                    x, valid = self.source.read(block.s0, r, block.width, grid.th)
                    s0, tw = block.s0, grid.tw
                    tiles = [(c - s0, x[:, :, c - s0:c - s0 + tw], valid[:, c - s0:c - s0 + tw].any()) for c in block.cols]
                    self.q_in.put((bi, r, tiles, valid))
        except BaseException as exc:  # reported by the main thread
            self.failure.append(exc)
        finally:
            self.q_in.put(None)

    def _writer(self) -> None:
        try:
            while True:
                item = self.q_out.get()
                if item is None:
                    break
                self.outputs.write(*item)
        except (RuntimeError, OSError) as exc:  # disk full, a file system gone: a message, not a traceback
            self.failure.append(write_error("OUTPUT", self.outputs.config.output, exc))
        except BaseException as exc:
            self.failure.append(exc)

    def run_all(self, progress: Callable[[float], None], is_canceled: Callable[[], bool]) -> None:
        """Classify this process's rows; the rasters hold them when it returns (not yet closed)."""
        threads = [threading.Thread(target=self._reader, daemon=True), threading.Thread(target=self._writer, daemon=True)]
        for t in threads:
            t.start()
        try:
            with torch.inference_mode():
                self._consume(progress, is_canceled)
            self.q_out.put(None)
            for t in threads:
                t.join()
            if self.failure:
                raise self.failure[0]
        except BaseException:
            self.stop.set()
            try:  # unblock and stop the threads
                while self.q_in.get_nowait() is not None:
                    pass
            except queue.Empty:
                pass
            self.q_out.put(None)
            for t in threads:
                t.join(timeout=10)
            raise

    # -- the model over the strips -----------------------------------------------------------
    def _consume(self, progress, is_canceled) -> None:
        while True:
            item = self.q_in.get()
            if item is None:
                break
            bi, r, tiles, valid = item
            if bi != self.block:
                if self.block is not None:
                    self._flush(self.grid.th, self.prev)
                self._start_block(bi)
            if self.prev is not None:  # rows [prev, r) are final: write them, shift the buffers
                self._advance(r - self.prev)
            self.valid_buf[:] |= valid
            self._predict(tiles, progress, is_canceled)
            if self.failure:
                break
            self.prev = r
        if is_canceled():
            raise Canceled()
        if self.failure:
            raise self.failure[0]
        if self.block is not None:
            self._flush(self.grid.th, self.prev)

    def _start_block(self, bi: int) -> None:
        block, th = self.grid.blocks[bi], self.grid.th
        self.block, self.prev = bi, None
        self.keep = (block.x0 - block.s0, block.x1 - block.s0)
        self.x0 = block.x0
        self.acc = torch.zeros((self.k, th, block.width), dtype=torch.float32, device=self.device)
        self.wsum = torch.zeros((th, block.width), dtype=torch.float32, device=self.device)
        self.valid_buf = np.zeros((th, block.width), dtype=bool)

    def _advance(self, d: int) -> None:
        """Write the first ``d`` rows of the buffers and shift the rest up."""
        th, acc, wsum, valid_buf = self.grid.th, self.acc, self.wsum, self.valid_buf
        self._flush(d, self.prev)
        acc[:, : th - d] = acc[:, d:].clone()
        acc[:, th - d:] = 0
        wsum[: th - d] = wsum[d:].clone()
        wsum[th - d:] = 0
        valid_buf[: th - d] = valid_buf[d:]
        valid_buf[th - d:] = False

    def _predict(self, tiles: list, progress, is_canceled) -> None:
        """Add the probabilities of one strip's tiles that hold data to the buffers."""
        acc, wsum, weights, tw = self.acc, self.wsum, self.weights, self.grid.tw
        work = [(c, t) for c, t, has_data in tiles if has_data]
        self.skipped += len(tiles) - len(work)
        for b in range(0, len(work), self.batch_size):
            if is_canceled():
                raise Canceled()
            chunk = work[b:b + self.batch_size]
            x = torch.from_numpy(np.stack([t for _, t in chunk])).to(self.device)
            prob = tta_forward(self.forward, x) if self.tta else torch.softmax(self.forward(x).float(), 1)
            for (c, _), p in zip(chunk, prob):
                acc[:, :, c:c + tw] += p * weights
                wsum[:, c:c + tw] += weights
            self.run += len(chunk)
            progress((self.done + b + len(chunk)) / self.grid.tile_runs)
        self.done += len(tiles)
        progress(self.done / self.grid.tile_runs)

    def _flush(self, nrows: int, y: int) -> None:
        """Finalise the first ``nrows`` rows of the block's strip buffers (window row ``y``), those in [y0, y1)."""
        y0, y1 = self.grid.y0, self.grid.y1
        a, b = self.keep
        r0, r1 = max(y0 - y, 0), min(y1 - y, nrows)
        if r1 <= r0:
            return
        y += r0
        wsum = self.wsum[r0:r1, a:b]
        prob = self.acc[:, r0:r1, a:b] / wsum.clamp(min=1e-12)
        conf, idx = prob.max(0)
        cls = self.lut[idx.cpu().numpy()]
        ok = self.valid_buf[r0:r1, a:b] & (wsum > 0).cpu().numpy()
        cls[~ok] = NODATA
        self.counts[:] += np.bincount(cls.ravel(), minlength=256)
        conf_np = conf.cpu().numpy().astype(np.float32) if self.outputs.wants_confidence else None
        if conf_np is not None:
            conf_np[~ok] = CONFIDENCE_NODATA
        probs = None
        if self.outputs.wants_probabilities:
            probs = probability_bytes(prob.cpu().numpy())
            probs[:, ~ok] = PROBABILITY_NODATA
        self.q_out.put((self.x0, y, cls, conf_np, probs))
