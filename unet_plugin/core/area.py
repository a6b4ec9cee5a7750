"""Area estimates with confidence intervals: the good-practice accuracy assessment.

Olofsson, P., Foody, G.M., Herold, M., Stehman, S.V., Woodcock, C.E., Wulder, M.A. (2014): Good
practices for estimating area and assessing accuracy of land change. Remote Sensing of
Environment 148, 42–57 (and FAO's 2016 practical guide built on it).

A class map's pixel counts are biased by its errors. With a probability sample of points
stratified by the map's classes and a reference label for each point, the stratified estimators
below give the error matrix in proportions of area, overall, user's and producer's accuracy and
the area of every class — each with its standard error and 95 % confidence interval. The
equation numbers are the paper's. Pure numpy: no GDAL, no QGIS, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import params
from .errors import UserInputError

Z95 = 1.96  # two-sided 95 % interval, as the paper and FAO's guide compute it (the exact quantile is 1.95996)
ALLOCATIONS = params.ALLOCATIONS


# ---- designing the sample -------------------------------------------------------------------------

def sample_size(weights, expected_users_accuracy, target_standard_error: float) -> int:
    """Total sample size for a target standard error of overall accuracy (eq. 13):
    ``n = (Σ W_i S_i / S(Ô))²`` with ``S_i = sqrt(U_i (1 − U_i))``, rounded up."""
    w = np.asarray(weights, dtype=np.float64)
    u = np.broadcast_to(np.asarray(expected_users_accuracy, dtype=np.float64), w.shape)
    if not target_standard_error > 0:
        raise UserInputError("TARGET_STANDARD_ERROR", "must be above 0 (e.g. 0.01 for ±2 % at 95 % confidence).")
    if np.any((u <= 0) | (u >= 1)):
        raise UserInputError("EXPECTED_USERS_ACCURACY", "must be between 0 and 1 (e.g. 0.8), not 0 or 1.")
    return int(math.ceil(round((float(np.sum(w * np.sqrt(u * (1 - u)))) / target_standard_error) ** 2, 9)))


def _largest_remainder(total: int, shares) -> np.ndarray:
    """Whole numbers proportional to ``shares`` that sum to ``total`` (Hamilton's method; ties by order)."""
    shares = np.asarray(shares, dtype=np.float64)
    if total <= 0 or shares.sum() <= 0:
        return np.zeros(len(shares), dtype=np.int64)
    exact = total * shares / shares.sum()
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return out


def allocate(total: int, pixels, allocation: str, min_per_class: int = 50) -> np.ndarray:
    """Points per stratum (map class) for a sample of ``total`` points.

    - ``proportional``: by the classes' shares of the map (rare classes may get few or none);
    - ``equal``: the same number for every class;
    - ``minimum-per-class`` (the paper's advice, section 5.1.1): every class at least
      ``min_per_class``; the rest of the sample proportional among the classes that get more.

    No stratum gets more points than it has pixels (the excess goes to the others); the counts sum
    to ``total`` unless the map has fewer pixels.
    """
    pixels = np.asarray(pixels, dtype=np.int64)
    if allocation not in ALLOCATIONS:
        raise UserInputError("ALLOCATION", f"'{allocation}' is not one of {', '.join(ALLOCATIONS)}.")
    total = int(min(total, pixels.sum()))
    k = len(pixels)
    out = np.zeros(k, dtype=np.int64)
    free = pixels > 0
    if allocation == "minimum-per-class":
        if min_per_class < 1:
            raise UserInputError("MIN_PER_CLASS", "must be at least 1.")
        floor = np.minimum(pixels, min_per_class)
        if floor.sum() > total:
            raise UserInputError("SAMPLE_SIZE", f"{total} points cannot give each of the {int(free.sum())} classes "
                                 f"{min_per_class} (MIN_PER_CLASS); use at least {int(floor.sum())} points or a smaller "
                                 "MIN_PER_CLASS.")
        fixed = np.zeros(k, dtype=bool)
        while True:  # classes whose proportional share is below the minimum get the minimum
            rest = total - int(floor[fixed].sum())
            share = np.where(free & ~fixed, pixels, 0).astype(np.float64)
            alloc = rest * share / max(share.sum(), 1.0)
            low = free & ~fixed & (alloc < floor)
            if not low.any():
                break
            fixed |= low
        out[fixed] = floor[fixed]
        out[~fixed] = _largest_remainder(total - int(out.sum()), np.where(free & ~fixed, pixels, 0))[~fixed]
    elif allocation == "equal":
        out = _largest_remainder(total, free.astype(np.float64))
    else:
        out = _largest_remainder(total, pixels)
    # no stratum gets more points than pixels: the excess goes to the others, proportionally
    for _ in range(k):
        over = out > pixels
        if not over.any():
            break
        extra = int((out - pixels)[over].sum())
        out[over] = pixels[over]
        room = np.where(out < pixels, pixels - out, 0)
        out += np.minimum(_largest_remainder(extra, room), room)
    return out


# ---- estimating from the labelled sample ----------------------------------------------------------

@dataclass
class AreaEstimate:
    """The stratified estimates of one labelled sample (map classes are the strata; i = map, j = reference)."""

    counts: np.ndarray          # n_ij: sample points by map class (rows) and reference class (columns)
    weights: np.ndarray         # W_i: each map class's share of the mapped area
    proportions: np.ndarray     # p_ij = W_i n_ij / n_i.  (eq. 4)
    overall: float              # Ô = Σ p_jj  (eq. 1)
    overall_se: float           # eq. 5
    users: np.ndarray           # Û_i = p_ii / p_i.  (eq. 2); NaN without sample points
    users_se: np.ndarray        # eq. 6
    producers: np.ndarray       # P̂_j = p_jj / p_.j  (eq. 3); NaN where no point is of class j
    producers_se: np.ndarray    # eq. 7
    area_share: np.ndarray      # p̂_.k: each class's share of the area (eq. 9)
    area_share_se: np.ndarray   # eq. 10
    total_area: float           # A: the mapped area, in the unit of ``map_area`` (hectares here)
    map_area: np.ndarray        # each map class's mapped area

    @property
    def area(self) -> np.ndarray:
        """Error-adjusted area of each class, Â_k = A × p̂_.k  (eq. 11)."""
        return self.total_area * self.area_share

    @property
    def area_ci95(self) -> np.ndarray:
        """Half-width of the 95 % interval of the area (eq. 12): 1.96 × A × S(p̂_.k)."""
        return Z95 * self.total_area * self.area_share_se

    def ci95(self, se):
        return Z95 * np.asarray(se)


def stratified_estimate(counts, map_pixels, pixel_area: float = 1.0) -> AreaEstimate:
    """The paper's estimators (eqs. 1–12) from sample counts and the strata's pixel counts.

    Args:
        counts: (k, k) sample counts n_ij, map class i (the stratum) by reference class j.
        map_pixels: (k,) pixels of each map class (its stratum's size) on the assessed area.
        pixel_area: area of one pixel (in hectares for areas in hectares).
    """
    n = np.asarray(counts, dtype=np.float64)
    N = np.asarray(map_pixels, dtype=np.float64)
    W = N / N.sum()
    n_i = n.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n_i[:, None] > 0, n / n_i[:, None], 0.0)          # n_ij / n_i.
        p = W[:, None] * share                                              # eq. 4
        p_j = p.sum(0)
        # a stratum with one point has no variance estimate (n_i − 1 = 0): it adds nothing, as in the paper's tools
        dof = np.where(n_i > 1, n_i - 1, np.inf)
        users = np.where(n_i > 0, np.diag(share), np.nan)                   # eq. 2 (p_ii / p_i. = n_ii / n_i.)
        users_var = users * (1 - users) / dof                               # eq. 6
        overall = float(np.trace(p))                                        # eq. 1
        overall_var = float(np.nansum(W ** 2 * users_var))                  # eq. 5
        producers = np.where(p_j > 0, np.diag(p) / p_j, np.nan)             # eq. 3
        # eq. 7: with N̂_.j = Σ_i N_i. n_ij / n_i. the estimated pixels of reference class j
        N_j = (N[:, None] * share).sum(0)
        cross = (N[:, None] ** 2 * share * (1 - share) / dof[:, None])       # N_i.² n_ij/n_i. (1 − n_ij/n_i.) / (n_i. − 1)
        k = len(N)
        producers_var = np.full(k, np.nan)
        for j in range(k):
            if N_j[j] > 0:
                others = sum(cross[i, j] for i in range(k) if i != j)
                own = N[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / dof[j] if n_i[j] > 0 else 0.0
                producers_var[j] = (own + producers[j] ** 2 * others) / N_j[j] ** 2
        area_share_var = (W[:, None] ** 2 * share * (1 - share) / dof[:, None]).sum(0)  # eq. 10
    total = float(N.sum() * pixel_area)
    return AreaEstimate(counts=np.asarray(counts), weights=W, proportions=p, overall=overall,
                        overall_se=math.sqrt(overall_var), users=users, users_se=np.sqrt(users_var),
                        producers=producers, producers_se=np.sqrt(producers_var), area_share=p_j,
                        area_share_se=np.sqrt(area_share_var), total_area=total, map_area=N * pixel_area)


def kappa_of(p: np.ndarray) -> float:
    """Cohen's kappa of an error matrix in proportions (reported for comparison; the paper advises against it)."""
    po, pe = float(np.trace(p)), float((p.sum(1) * p.sum(0)).sum())
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")
