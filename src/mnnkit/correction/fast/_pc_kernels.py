"""Numba kernels of the fast method's arithmetic in PC space.

Projections, shifts along a batch vector, per-cell MNN averages, tricube smoothing and column
variances (plain arrays, checked by the callers).

Determinism: the parallel kernels give every output row to exactly one call of a serial range
kernel (:func:`mnnkit._threads.run_in_ranges`), which computes it in a fixed order; nothing is
reduced across threads, so the output is bit for bit the same whatever the number of threads or
their scheduling. No ``parallel=True``: see docs/compile_cache.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mnnkit._config import COLUMN_TILE, NUMBA_FASTMATH
from mnnkit._threads import run_in_ranges


def project_rows(data: np.ndarray, unit: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = <data[i], unit>`` (summed over columns in order)."""
    run_in_ranges(_project_rows, data.shape[0], 1, data, unit, out)


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _project_rows(data, unit, out, first, last):  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`project_rows`."""
    d = data.shape[1]
    for i in range(first, last):
        acc = 0.0
        for j in range(d):
            acc += data[i, j] * unit[j]
        out[i] = acc


def shift_along(data: np.ndarray, unit: np.ndarray, positions: np.ndarray, centre: float) -> None:
    """In place: ``data[i] += (centre - positions[i]) * unit`` (every cell to the same position along ``unit``)."""
    run_in_ranges(_shift_along, data.shape[0], 1, data, unit, positions, float(centre))


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _shift_along(data, unit, positions, centre, first, last):  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`shift_along`."""
    d = data.shape[1]
    for i in range(first, last):
        step = centre - positions[i]
        for j in range(d):
            data[i, j] = data[i, j] + step * unit[j]


def group_averages(
    left: np.ndarray, right: np.ndarray, pair_left: np.ndarray, pair_right: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """Average of ``left[l] - right[r]`` over each group of pairs sharing a right cell.

    ``pair_left``/``pair_right`` hold the pairs grouped by right cell (a stable sort, so each group
    keeps the pairs' order); group ``g`` is ``starts[g]:starts[g + 1]``. The differences are summed in
    that order, then divided by the group size. Returns ``(n_groups, d)``.
    """
    n_groups = starts.shape[0] - 1
    out = np.zeros((n_groups, left.shape[1]))
    run_in_ranges(_group_averages, n_groups, 1, left, right, pair_left, pair_right, starts, out)
    return out


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _group_averages(left, right, pair_left, pair_right, starts, out, first, last):  # pragma: no cover
    """Groups ``first:last`` of :func:`group_averages`, into ``out`` (zeros)."""
    d = left.shape[1]
    for g in range(first, last):
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


def weighted_group_averages(
    left: np.ndarray,
    right: np.ndarray,
    pair_left: np.ndarray,
    pair_right: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
) -> np.ndarray:
    """As :func:`group_averages`, with pair ``p`` weighing ``weights[p]``: weighted sum over sum of weights."""
    n_groups = starts.shape[0] - 1
    out = np.zeros((n_groups, left.shape[1]))
    run_in_ranges(_weighted_group_averages, n_groups, 1, left, right, pair_left, pair_right, weights, starts, out)
    return out


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _weighted_group_averages(left, right, pair_left, pair_right, weights, starts, out, first, last):  # pragma: no cover
    """Groups ``first:last`` of :func:`weighted_group_averages`, into ``out`` (zeros)."""
    d = left.shape[1]
    for g in range(first, last):
        total = 0.0
        for p in range(starts[g], starts[g + 1]):
            w = weights[p]
            total += w
            for j in range(d):
                out[g, j] += w * (left[pair_left[p], j] - right[pair_right[p], j])
        for j in range(d):
            out[g, j] /= total


def tricube_correct(
    data: np.ndarray, averages: np.ndarray, indices: np.ndarray, distances: np.ndarray, ndist: float, floor: float
) -> None:
    """In place: add to each row the tricube-weighted average of its neighbours' correction vectors.

    Row ``i`` has neighbours ``indices[i]`` (rows of ``averages``) at ``distances[i]``, nearest first.
    Bandwidth ``h = max(ndist * distances[i, ceil(k/2) - 1], floor)``; weights ``(1 - min(d/h, 1)^3)^3``
    divided by their sum; the weighted vectors are accumulated neighbour by neighbour.
    """
    run_in_ranges(_tricube_correct, data.shape[0], 1, data, averages, indices, distances, float(ndist), float(floor))


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _tricube_correct(data, averages, indices, distances, ndist, floor, first, last):  # pragma: no cover
    """Rows ``first:last`` of :func:`tricube_correct`."""
    k = indices.shape[1]
    d = data.shape[1]
    middle = (k + 1) // 2 - 1
    weights = np.empty(k)
    acc = np.empty(d)
    for i in range(first, last):
        bandwidth = max(distances[i, middle] * ndist, floor)
        total = 0.0
        for a in range(k):
            rel = distances[i, a] / bandwidth
            if rel > 1.0:
                rel = 1.0
            w = 1.0 - rel * rel * rel
            weights[a] = w * w * w
            total += weights[a]
        acc[:] = 0.0
        for a in range(k):
            w = weights[a] / total
            u = indices[i, a]
            for j in range(d):
                acc[j] += averages[u, j] * w
        for j in range(d):
            data[i, j] = data[i, j] + acc[j]


def column_sq_deviations(data: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """``out[j]`` = sum over rows ``start:stop`` of ``(data[i, j] - mean_j)^2`` (two passes, rows in order).

    Ranges of ``COLUMN_TILE`` columns go to the numba threads; each column is summed in row order, so
    the result does not depend on the threads. No copy of the rows is made.
    """
    run_in_ranges(_column_sq_deviations, data.shape[1], COLUMN_TILE, data, int(start), int(stop), out)


@njit(cache=True, nogil=True)
def _column_sq_deviations(data, start, stop, out, first, last):  # pragma: no cover - traced by numba
    """Columns ``first:last`` of :func:`column_sq_deviations`."""
    n = stop - start
    width = last - first
    mean = np.empty(width)  # zeroed here, as acc below: np.zeros would compile an implementation of its own
    acc = np.empty(width)
    for j in range(width):
        mean[j] = 0.0
        acc[j] = 0.0
    for i in range(start, stop):
        for j in range(first, last):
            mean[j - first] += data[i, j]
    for j in range(width):
        mean[j] /= n
    for i in range(start, stop):
        for j in range(first, last):
            diff = data[i, j] - mean[j - first]
            acc[j - first] += diff * diff
    for j in range(width):
        out[first + j] = acc[j]
