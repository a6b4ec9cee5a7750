"""The spatial split of chips into training and validation: blocks of neighbouring chips, chosen so
that every class keeps a share of its labels for training; validation areas masked out of the
training chips that overlap them."""

from __future__ import annotations

import random

import numpy as np

from ..codes import IGNORE

BLOCK_SIZES = (2, 3, 4, 6, 8, 12, 16)  # validation block sides tried, in chips
SPLIT_ORDERS = 8  # with the chips' classes known: random orders of the blocks tried per block size,
SPLIT_BUDGET = 10000  # fewer where chips × orders would pass this (10,000 chips: 1 order, about 1.5 s)


def spatial_split(bounds: list[tuple], percent: float, seed: int, shares: list[dict] | None = None
                  ) -> tuple[list[int], list[int], dict]:
    """Hold out about ``percent`` % of the chips as validation *areas*, apart from training.

    Chips are grouped by their centres into square blocks; whole blocks are taken (reproducibly
    from ``seed``) until the validation share is reached. Every other chip trains, also one that
    overlaps a validation chip: its pixels inside validation chips are left out of the loss
    (:func:`validation_mask`), so every label outside the validation areas counts and no
    validation pixel is ever trained on. Blocks of several sizes (2 to 16 chips wide) are tried;
    the split that keeps the most training pixels wins, among those holding out at most 1.5× the
    share asked (ties go to the smaller blocks, tried first). Blocks stay scattered at random:
    one compact patch would validate on one corner of the area only.

    ``shares`` (per chip, label value → share of its pixels) makes the split look after every
    class: a rare class often lives in one place (the one lake of the NC scene), and blocks that
    happen to take that place leave training without it. Several block orders are then tried
    per size, and a split where each class keeps at least ``1 − 1.5 × percent`` of its pixels for
    training (or, where none does, the one whose worst-off class keeps the most) goes before one
    that keeps more pixels in all.

    Returns:
        ``(train, validation, overlaps)``: chip indices, and for each training chip that overlaps
        validation chips, their bounds.
    """
    n = len(bounds)
    if percent <= 0 or n == 0:
        return list(range(n)), [], {}
    b = np.asarray(bounds, dtype=np.float64)
    chip = float(max((b[:, 2] - b[:, 0]).max(), (b[:, 3] - b[:, 1]).max()))
    # centres relative to the top-left corner of the chips, so blocks follow the chip grid
    cx = (b[:, 0] + b[:, 2]) / 2 - b[:, 0].min()
    cy = b[:, 3].max() - (b[:, 1] + b[:, 3]) / 2
    target = max(1, round(n * percent / 100))
    matrix = _class_matrix(shares, n)
    classes = matrix[1] if matrix else None
    floor = 1.0 - 1.5 * percent / 100  # each class keeps at least this share of its pixels: enough
    best = None
    for m in BLOCK_SIZES:
        bx, by = np.floor(cx / (m * chip)).astype(np.int64), np.floor(cy / (m * chip)).astype(np.int64)
        blocks: dict[tuple, list[int]] = {}
        for i, key in enumerate(zip(bx.tolist(), by.tolist())):
            blocks.setdefault(key, []).append(i)
        for r in range(min(SPLIT_ORDERS, max(1, SPLIT_BUDGET // n)) if classes is not None else 1):
            keys = sorted(blocks)
            random.Random(seed if r == 0 else f"{seed}/{r}").shuffle(keys)
            split = _split_by_blocks(b, blocks, keys, target)
            best = max(best or split, split, key=lambda s: _rank(s, target, classes, floor))
        if len(blocks) <= 2:  # larger blocks cannot do better
            break
    return best[:3]


def _class_matrix(shares: list[dict] | None, n: int) -> tuple[list[int], np.ndarray] | None:
    """The label values (255, unknown, left out) and the chips × values pixel shares, or None
    without shares for at least two values."""
    if not shares or len(shares) != n:
        return None
    values = sorted({int(v) for s in shares for v in s} - {IGNORE})
    if len(values) < 2:
        return None
    col = {v: j for j, v in enumerate(values)}
    m = np.zeros((n, len(values)))
    for i, s in enumerate(shares):
        for v, f in s.items():
            if int(v) in col:
                m[i, col[int(v)]] = f
    return values, m


def _rank(split, target: int, classes: np.ndarray | None, floor: float) -> tuple:
    """Order of preference between splits: at most 1.5× the validation share asked (none within:
    the one closest to it); then the share of its pixels the worst-off class keeps for training,
    up to ``floor``; then the training pixels kept in all (``split[3]``: per chip, the share that
    trains)."""
    kept = split[3]
    if len(split[1]) > 1.5 * target:
        return (False, 0.0, -len(split[1]))
    worst = 1.0
    if classes is not None:
        total = classes.sum(0)
        worst = float(np.min((kept @ classes)[total > 0] / total[total > 0]))
    return (True, round(min(worst, floor), 3), float(kept.sum()))


def class_training_shares(bounds: list[tuple], shares: list[dict] | None, train: list[int], overlaps: dict) -> dict:
    """Per label value (255 left out), the share of its chip pixels that trains after a split
    (chips overlapping validation areas count with their pixels outside them); {} where the
    chips' classes are not known."""
    matrix = _class_matrix(shares, len(bounds))
    if matrix is None:
        return {}
    values, m = matrix
    kept = np.zeros(len(bounds))
    kept[list(train)] = 1.0
    for i, vb in overlaps.items():
        kept[i] = _outside(bounds[i], vb)
    total = m.sum(0)
    return {v: float(k / t) for v, k, t in zip(values, kept @ m, total) if t > 0}


def _outside(chip, others: list) -> float:
    """The share of a chip's pixels outside the ``others`` bounds (on a 16 × 16 sample grid)."""
    return 1.0 - float(validation_mask(tuple(chip), others, 16, 16).mean())


def validation_mask(chip: tuple, others: list[tuple], height: int, width: int) -> np.ndarray:
    """Pixels of a chip (bounds ``chip``, ``height`` × ``width`` px) inside any of the ``others`` bounds.

    A pixel is inside when its centre is: ``col`` is inside ``[x0, x1)`` when
    ``x0 <= xmin + (col + 0.5) * px < x1`` (rows likewise from the top, ``ymax``).
    """
    xmin, ymin, xmax, ymax = chip
    px, py = (xmax - xmin) / width, (ymax - ymin) / height
    cols = xmin + (np.arange(width) + 0.5) * px
    rows = ymax - (np.arange(height) + 0.5) * py
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in others:
        mask |= np.outer((rows > y0) & (rows < y1), (cols > x0) & (cols < x1))
    return mask


def _split_by_blocks(b: np.ndarray, blocks: dict, order: list, target: int):
    """Validation: the blocks in ``order`` until ``target`` chips; training: every other chip, with
    the validation chips it overlaps. Also returns, per chip, the share of its pixels that trains."""
    val_keys, count = set(), 0
    for k in order:
        if count >= target:
            break
        val_keys.add(k)
        count += len(blocks[k])
    # a chip can only overlap chips whose centres lie within one chip of its own: the blocks
    # (at least two chips wide) around its own
    val_bounds = {k: b[blocks[k]] for k in val_keys}
    train, overlaps, kept = [], {}, np.zeros(len(b))
    for k, members in blocks.items():
        if k in val_keys:
            continue
        near = [val_bounds[(k[0] + dx, k[1] + dy)] for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                if (k[0] + dx, k[1] + dy) in val_bounds]
        train.extend(members)
        if not near:
            kept[members] = 1.0
            continue
        vb = np.concatenate(near)
        for i in members:
            x0, y0, x1, y1 = b[i]
            hit = vb[(vb[:, 0] < x1) & (vb[:, 2] > x0) & (vb[:, 1] < y1) & (vb[:, 3] > y0)]
            if len(hit):
                overlaps[i] = [tuple(map(float, h)) for h in hit]
                kept[i] = _outside(b[i], overlaps[i])
            else:
                kept[i] = 1.0
    return sorted(train), sorted(i for k in val_keys for i in blocks[k]), overlaps, kept
