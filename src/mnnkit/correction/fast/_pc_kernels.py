"""Numba kernels of the fast method's arithmetic in PC space.

Projections, shifts along a batch vector, per-cell MNN averages, tricube smoothing and column
variances (plain arrays, checked by the callers).

Determinism: the parallel kernels give every output row to exactly one iteration of a ``prange``
loop, which computes it in a fixed order; nothing is reduced across threads, so the output is bit for
bit the same whatever the number of threads or their scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mnnkit._config import COLUMN_TILE, NUMBA_FASTMATH


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def project_rows(data: np.ndarray, unit: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = <data[i], unit>`` (summed over columns in order)."""
    n, d = data.shape
    for i in prange(n):
        acc = 0.0
        for j in range(d):
            acc += data[i, j] * unit[j]
        out[i] = acc


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def shift_along(data: np.ndarray, unit: np.ndarray, positions: np.ndarray, centre: float) -> None:
    """In place: ``data[i] += (centre - positions[i]) * unit`` (every cell to the same position along ``unit``)."""
    n, d = data.shape
    for i in prange(n):
        step = centre - positions[i]
        for j in range(d):
            data[i, j] = data[i, j] + step * unit[j]


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def group_averages(
    left: np.ndarray, right: np.ndarray, pair_left: np.ndarray, pair_right: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Average of ``left[l] - right[r]`` over each group of pairs sharing a right cell.

    ``pair_left``/``pair_right`` hold the pairs grouped by right cell (a stable sort, so each group
    keeps the pairs' order); group ``g`` is ``starts[g]:starts[g + 1]``. The differences are summed in
    that order, then divided by the group size. Returns ``(n_groups, d)``.
    """
    n_groups = starts.shape[0] - 1
    d = left.shape[1]
    out = np.zeros((n_groups, d))
    for g in prange(n_groups):
        lo = starts[g]
        hi = starts[g + 1]
        r = pair_right[lo]
        for p in range(lo, hi):
            li = pair_left[p]
            for j in range(d):
                out[g, j] += left[li, j] - right[r, j]
        count = hi - lo
        for j in range(d):
            out[g, j] /= count
    return out


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def tricube_correct(
    data: np.ndarray, averages: np.ndarray, indices: np.ndarray, distances: np.ndarray, ndist: float, floor: float
) -> None:
    """In place: add to each row the tricube-weighted average of its neighbours' correction vectors.

    Row ``i`` has neighbours ``indices[i]`` (rows of ``averages``) at ``distances[i]``, nearest first.
    Bandwidth ``h = max(ndist * distances[i, ceil(k/2) - 1], floor)``; weights ``(1 - min(d/h, 1)^3)^3``
    divided by their sum; the weighted vectors are accumulated neighbour by neighbour.
    """
    n, k = indices.shape
    d = data.shape[1]
    middle = (k + 1) // 2 - 1
    for i in prange(n):
        bandwidth = max(distances[i, middle] * ndist, floor)
        weights = np.empty(k)
        total = 0.0
        for a in range(k):
            rel = distances[i, a] / bandwidth
            if rel > 1.0:
                rel = 1.0
            w = 1.0 - rel * rel * rel
            weights[a] = w * w * w
            total += weights[a]
        acc = np.zeros(d)
        for a in range(k):
            w = weights[a] / total
            u = indices[i, a]
            for j in range(d):
                acc[j] += averages[u, j] * w
        for j in range(d):
            data[i, j] = data[i, j] + acc[j]


@njit(cache=True, parallel=True)
def column_sq_deviations(data: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``out[j]`` = sum over rows ``start:stop`` of ``(data[i, j] - mean_j)^2`` (two passes, rows in order).

    Parallel over tiles of ``COLUMN_TILE`` columns; each column is summed by one iteration in row order,
    so the result does not depend on the threads. No copy of the rows is made.
    """
    d = data.shape[1]
    n = stop - start
    n_tiles = (d + COLUMN_TILE - 1) // COLUMN_TILE
    for tile in prange(n_tiles):
        first = tile * COLUMN_TILE
        last = min(first + COLUMN_TILE, d)
        mean = np.zeros(last - first)
        for i in range(start, stop):
            for j in range(first, last):
                mean[j - first] += data[i, j]
        for j in range(first, last):
            mean[j - first] /= n
        acc = np.zeros(last - first)
        for i in range(start, stop):
            for j in range(first, last):
                diff = data[i, j] - mean[j - first]
                acc[j - first] += diff * diff
        for j in range(first, last):
            out[j] = acc[j - first]
