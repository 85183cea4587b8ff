"""Numba kernels: products of a compressed sparse matrix (CSR or CSC) with small dense blocks.

The kernels see only the three compressed arrays ``data``, ``indptr`` and ``indices``: a CSR matrix
has rows as its *major* axis and columns as its *minor* axis, a CSC matrix the other way round.
Callers in :mod:`mnnkit.linalg._operator` validate everything first; the kernels do no checking.

Threads: :func:`gather`, :func:`scatter` and :func:`major_moments` split their output rows into ranges
and run a serial ``nogil`` range kernel on each (:func:`mnnkit._threads.run_in_ranges`); no
``parallel=True``, which would add seconds of compile time to a fresh install (docs/compile_cache.md).
Every output element is accumulated by exactly one range in a fixed order, so results are bit-for-bit
reproducible whatever the number of threads. None of the kernels allocates more than O(length of one
axis) memory.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from mnnkit._config import NUMBA_FASTMATH
from mnnkit._threads import run_in_ranges

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


def gather(
    data: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    is_sorted: bool,
    major_lo: int,
    major_hi: int,
    minor_lo: int,
    minor_hi: int,
    dense: np.ndarray,
    out: np.ndarray,
    accumulate: bool,
) -> None:
    """Major-axis products: ``out[m - major_lo] (+)= sum_p data[p] * dense[indices[p] - minor_lo]``.

    Only entries of majors ``major_lo <= m < major_hi`` whose minor index lies in
    ``[minor_lo, minor_hi)`` are used. For CSR this is ``X[rows] @ dense``; for CSC it is
    ``X[minor range, :].T @ dense``. Parallel over majors (each output row is one range's).
    """
    n_rows = int(major_hi) - int(major_lo)
    run_in_ranges(
        _gather_range, n_rows, 1, data, indptr, indices, is_sorted, major_lo, minor_lo, minor_hi, dense, out, accumulate
    )


@nb.njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _gather_range(
    data, indptr, indices, is_sorted, major_lo, minor_lo, minor_hi, dense, out, accumulate, first, last
):  # pragma: no cover - traced by numba
    """Output rows ``first:last`` (majors ``major_lo + first`` to ``major_lo + last``) of :func:`gather`."""
    n_cols = dense.shape[1]
    for i in range(first, last):
        row = out[i]
        if not accumulate:
            for c in range(n_cols):
                row[c] = 0.0
        _major_axpy(data, indptr, indices, is_sorted, major_lo + i, minor_lo, minor_hi, dense, minor_lo, row, False)


def scatter(
    data: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    is_sorted: bool,
    major_lo: int,
    major_hi: int,
    bounds: np.ndarray,
    dense: np.ndarray,
    out: np.ndarray,
) -> None:
    """Minor-axis products: ``out[indices[p] - bounds[0]] += data[p] * dense[m - major_lo]``.

    Uses the entries of majors ``major_lo <= m < major_hi`` whose minor index lies in
    ``[bounds[0], bounds[-1])``. Task ``t`` owns the output rows ``bounds[t] - bounds[0]`` to
    ``bounds[t + 1] - bounds[0]`` and walks all majors in order, so there are no write conflicts and
    no per-thread buffers, and each output element sums its entries in the order of the majors
    whatever thread runs its task. For CSR this is ``X[rows].T @ dense``; for CSC it
    is ``X[:, cols] @ dense`` restricted to a row range.
    """
    run_in_ranges(
        _scatter_range, bounds.shape[0] - 1, 1, data, indptr, indices, is_sorted, major_lo, major_hi, bounds, dense, out
    )


@nb.njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _scatter_range(
    data, indptr, indices, is_sorted, major_lo, major_hi, bounds, dense, out, first, last
):  # pragma: no cover - traced by numba
    """Tasks ``first:last`` of :func:`scatter`: output rows ``bounds[first]:bounds[last]`` (less ``bounds[0]``)."""
    base = bounds[0]
    # One pass over the majors per task, not one for the whole range: a task's output rows stay in
    # cache while it walks the majors (one pass over all rows is about twice as slow on wide matrices).
    for t in range(first, last):
        lo = bounds[t]
        hi = bounds[t + 1]
        if lo >= hi:
            continue
        for m in range(major_lo, major_hi):
            _major_axpy(data, indptr, indices, is_sorted, m, lo, hi, out, base, dense[m - major_lo], True)


@nb.njit(cache=True)
def minor_counts(indices, nnz, n_minor):
    """Number of stored entries per minor index (column counts of a CSR matrix)."""
    counts = np.empty(n_minor, dtype=np.int64)  # zeroed here: np.zeros would compile an implementation of its own
    for j in range(n_minor):
        counts[j] = 0
    for p in range(nnz):
        counts[indices[p]] += 1
    return counts


@nb.njit(cache=True)
def minor_moments(data, indices, nnz, n_minor, n_major, ddof):
    """Mean and variance of every minor line (columns of CSR), implicit zeros included; two passes."""
    sums = np.empty(n_minor)  # zeroed here, as counts and sq: np.zeros would compile implementations of its own
    counts = np.empty(n_minor, dtype=np.int64)
    sq = np.empty(n_minor)
    for j in range(n_minor):
        sums[j] = 0.0
        counts[j] = 0
        sq[j] = 0.0
    for p in range(nnz):
        j = indices[p]
        sums[j] += data[p]
        counts[j] += 1
    mean = sums / n_major
    for p in range(nnz):
        j = indices[p]
        d = data[p] - mean[j]
        sq[j] += d * d
    var = np.empty(n_minor)
    for j in range(n_minor):
        var[j] = (sq[j] + (n_major - counts[j]) * mean[j] * mean[j]) / (n_major - ddof)
    return mean, var


def major_moments(
    data: np.ndarray, indptr: np.ndarray, n_major: int, n_minor: int, ddof: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of every major line (rows of CSR), implicit zeros included; two passes."""
    mean = np.empty(n_major)
    var = np.empty(n_major)
    run_in_ranges(_major_moments_range, int(n_major), 1, data, indptr, n_minor, ddof, mean, var)
    return mean, var


@nb.njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _major_moments_range(data, indptr, n_minor, ddof, mean, var, first, last):  # pragma: no cover
    """Majors ``first:last`` of :func:`major_moments`, into ``mean`` and ``var``."""
    for m in range(first, last):
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
