"""Numba kernels: products of a compressed sparse matrix (CSR or CSC) with small dense blocks.

The kernels see only the three compressed arrays ``data``, ``indptr`` and ``indices``: a CSR matrix
has rows as its *major* axis and columns as its *minor* axis, a CSC matrix the other way round.
Callers in :mod:`mnnkit.linalg._operator` validate everything first; the kernels do no checking.

Every output element is accumulated by exactly one thread in a fixed order, so results are
bit-for-bit reproducible whatever the number of threads. None of the kernels allocates more than
O(length of one axis) memory.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = [
    "balanced_bounds",
    "gather",
    "major_moments",
    "minor_counts",
    "minor_moments",
    "scatter",
]


@nb.njit(cache=True)
def _lower_bound(indices, start, stop, value):
    """First position p in ``indices[start:stop]`` (sorted) with ``indices[p] >= value``."""
    lo = start
    hi = stop
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@nb.njit(cache=True, inline="always")
def _major_axpy(data, indptr, indices, is_sorted, m, lo, hi, rows, offset, vec, into_rows):
    """Multiply-adds over the stored entries of major ``m`` whose minor index ``j`` lies in ``[lo, hi)``.

    With ``v = data[p]`` and ``r = rows[j - offset]``: ``r += v * vec`` (``into_rows``) or
    ``vec += v * r``. Sorted indices start at the first ``j >= lo`` and stop at the first ``j >= hi``;
    unsorted ones are all visited. Entries are taken in storage order.
    """
    n_cols = vec.shape[0]
    stop = indptr[m + 1]
    start = _lower_bound(indices, indptr[m], stop, lo) if is_sorted else indptr[m]
    for p in range(start, stop):
        j = indices[p]
        if j >= hi:
            if is_sorted:
                break
            continue
        if j < lo:
            continue
        v = np.float64(data[p])
        r = rows[j - offset]
        if into_rows:
            for c in range(n_cols):
                r[c] += v * vec[c]
        else:
            for c in range(n_cols):
                vec[c] += v * r[c]


@nb.njit(parallel=True, cache=True)
def gather(data, indptr, indices, is_sorted, major_lo, major_hi, minor_lo, minor_hi, dense, out, accumulate):
    """Major-axis products: ``out[m - major_lo] (+)= sum_p data[p] * dense[indices[p] - minor_lo]``.

    Only entries of majors ``major_lo <= m < major_hi`` whose minor index lies in
    ``[minor_lo, minor_hi)`` are used. For CSR this is ``X[rows] @ dense``; for CSC it is
    ``X[minor range, :].T @ dense``. Parallel over majors.
    """
    n_cols = dense.shape[1]
    for m in nb.prange(major_lo, major_hi):
        row = out[m - major_lo]
        if not accumulate:
            for c in range(n_cols):
                row[c] = 0.0
        _major_axpy(data, indptr, indices, is_sorted, m, minor_lo, minor_hi, dense, minor_lo, row, False)


@nb.njit(parallel=True, cache=True)
def scatter(data, indptr, indices, is_sorted, major_lo, major_hi, bounds, dense, out):
    """Minor-axis products: ``out[indices[p] - bounds[0]] += data[p] * dense[m - major_lo]``.

    Uses the entries of majors ``major_lo <= m < major_hi`` whose minor index lies in
    ``[bounds[0], bounds[-1])``. Task ``t`` owns the output rows ``bounds[t]:bounds[t + 1]`` and
    walks all majors in order, so there are no write conflicts and no per-thread buffers. For CSR
    this is ``X[rows].T @ dense``; for CSC it is ``X[:, cols] @ dense`` restricted to a row range.
    """
    base = bounds[0]
    for t in nb.prange(bounds.shape[0] - 1):
        lo = bounds[t]
        hi = bounds[t + 1]
        if lo >= hi:
            continue
        for m in range(major_lo, major_hi):
            _major_axpy(data, indptr, indices, is_sorted, m, lo, hi, out, base, dense[m - major_lo], True)


@nb.njit(cache=True)
def minor_counts(indices, nnz, n_minor):
    """Number of stored entries per minor index (column counts of a CSR matrix)."""
    counts = np.zeros(n_minor, dtype=np.int64)
    for p in range(nnz):
        counts[indices[p]] += 1
    return counts


@nb.njit(cache=True)
def minor_moments(data, indices, nnz, n_minor, n_major, ddof):
    """Mean and variance of every minor line (columns of CSR), implicit zeros included; two passes."""
    sums = np.zeros(n_minor)
    counts = np.zeros(n_minor, dtype=np.int64)
    for p in range(nnz):
        j = indices[p]
        sums[j] += data[p]
        counts[j] += 1
    mean = sums / n_major
    sq = np.zeros(n_minor)
    for p in range(nnz):
        j = indices[p]
        d = data[p] - mean[j]
        sq[j] += d * d
    var = np.empty(n_minor)
    for j in range(n_minor):
        var[j] = (sq[j] + (n_major - counts[j]) * mean[j] * mean[j]) / (n_major - ddof)
    return mean, var


@nb.njit(parallel=True, cache=True)
def major_moments(data, indptr, n_major, n_minor, ddof):
    """Mean and variance of every major line (rows of CSR), implicit zeros included; two passes."""
    mean = np.empty(n_major)
    var = np.empty(n_major)
    for m in nb.prange(n_major):
        s = 0.0
        for p in range(indptr[m], indptr[m + 1]):
            s += data[p]
        mu = s / n_minor
        sq = 0.0
        for p in range(indptr[m], indptr[m + 1]):
            d = data[p] - mu
            sq += d * d
        zeros = n_minor - (indptr[m + 1] - indptr[m])
        mean[m] = mu
        var[m] = (sq + zeros * mu * mu) / (n_minor - ddof)
    return mean, var


def balanced_bounds(counts: np.ndarray, n_tasks: int, offset: int = 0) -> np.ndarray:
    """Split ``range(len(counts))`` into at most ``n_tasks`` contiguous pieces of similar total count.

    Returns int64 boundaries ``b`` (shifted by ``offset``) with ``b[0] = offset`` and
    ``b[-1] = offset + len(counts)``; pure NumPy, O(len(counts)) memory.
    """
    n = counts.shape[0]
    n_tasks = max(1, min(int(n_tasks), n))
    cum = np.cumsum(counts, dtype=np.float64) + np.arange(1, n + 1)  # +1 per line: empty lines cost something
    targets = cum[-1] * np.arange(1, n_tasks) / n_tasks if n else np.empty(0)
    inner = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.concatenate(([0], np.minimum(inner, n), [n])).astype(np.int64)
    bounds = np.maximum.accumulate(bounds)
    return bounds + offset
