"""Numba kernels of the dual-softmax soft pairing (:mod:`mnnkit.correction._soft_pairs`).

Plain, already validated arrays only: int64 indices in range, float64 finite non-negative distances, C
order. Serial and cached (no ``parallel=True``): the work is linear in the number of candidate pairs, so
compile time, not run time, is what a user notices.

Everything is stored per candidate pair in a CSR layout by left row (``row_ptr``, ``cols``, ``dists``);
the only per-cell scratch is ``O(n_left + n_right)``, never ``n_left x n_right``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _before(cols: np.ndarray, dists: np.ndarray, i: int, j: int) -> bool:
    """Entry ``i`` sorts before entry ``j``: smaller distance, then lower column (columns are distinct in a row)."""
    return dists[i] < dists[j] or (dists[i] == dists[j] and cols[i] < cols[j])


@njit(cache=True)
def _swap(cols: np.ndarray, dists: np.ndarray, i: int, j: int) -> None:
    cols[i], cols[j] = cols[j], cols[i]
    dists[i], dists[j] = dists[j], dists[i]


@njit(cache=True)
def _sift_down(cols: np.ndarray, dists: np.ndarray, start: int, root: int, size: int) -> None:
    """Restore the max-heap (by :func:`_before`) of ``size`` entries from ``start`` below ``root`` (0-based)."""
    while True:
        child = 2 * root + 1
        if child >= size:
            return
        if child + 1 < size and _before(cols, dists, start + child, start + child + 1):
            child += 1
        if not _before(cols, dists, start + root, start + child):
            return
        _swap(cols, dists, start + root, start + child)
        root = child


@njit(cache=True)
def _sort_segment(cols: np.ndarray, dists: np.ndarray, start: int, stop: int) -> None:
    """Sort ``cols[start:stop]``/``dists[start:stop]`` in place by (distance, column).

    Hand-written rather than ``np.argsort``: numba's library sorts cost seconds of compile time, and the
    key (distance, column) is unique within a row, so an unstable in-place heap sort gives the one order.
    """
    m = stop - start
    if m <= 16:
        # insertion sort: the usual row holds about k candidates, where it is the fastest
        for i in range(start + 1, stop):
            j = i
            while j > start and _before(cols, dists, j, j - 1):
                _swap(cols, dists, j, j - 1)
                j -= 1
        return
    # a left cell that many right cells list: heap sort, O(m log m) with no allocation
    for root in range(m // 2 - 1, -1, -1):
        _sift_down(cols, dists, start, root, m)
    for size in range(m - 1, 0, -1):
        _swap(cols, dists, start, start + size)
        _sift_down(cols, dists, start, 0, size)


@njit(cache=True)
def candidate_pairs(
    left_nn: np.ndarray, left_dist: np.ndarray, right_nn: np.ndarray, right_dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of the pairs found either way, as CSR by left row, each row sorted by (distance, right row).

    Returns ``(row_ptr, cols, dists)``: left row ``l`` has the right rows ``cols[row_ptr[l]:row_ptr[l + 1]]``
    at distances ``dists[...]``. A pair found both ways appears once, with the smaller of its two
    distances (they are equal for a consistent search; taking the minimum keeps the result symmetric
    in the two sides when rounding makes them differ).
    """
    n_left, k_right = left_nn.shape
    n_right, k_left = right_nn.shape

    # the right cells that list each left cell (the reverse search), as CSR by left row
    rev_ptr = np.zeros(n_left + 1, dtype=np.int64)
    for r in range(n_right):
        for b in range(k_left):
            rev_ptr[right_nn[r, b] + 1] += 1
    for i in range(n_left):
        rev_ptr[i + 1] += rev_ptr[i]
    rev_cols = np.empty(n_right * k_left, dtype=np.int64)
    rev_dists = np.empty(n_right * k_left, dtype=np.float64)
    cursor = rev_ptr[:-1].copy()
    for r in range(n_right):
        for b in range(k_left):
            left = right_nn[r, b]
            rev_cols[cursor[left]] = r
            rev_dists[cursor[left]] = right_dist[r, b]
            cursor[left] += 1

    # merge each left row's own list with its reverse list into a buffer sized for no overlap,
    # deduplicating through slot[r] = where r sits in the current row (earlier rows' slots are < start)
    total = n_left * k_right + n_right * k_left
    buf_cols = np.empty(total, dtype=np.int64)
    buf_dists = np.empty(total, dtype=np.float64)
    counts = np.zeros(n_left, dtype=np.int64)
    slot = np.full(n_right, -1, dtype=np.int64)
    start = 0
    for left in range(n_left):
        m = 0
        for a in range(k_right):
            r = left_nn[left, a]
            slot[r] = start + m
            buf_cols[start + m] = r
            buf_dists[start + m] = left_dist[left, a]
            m += 1
        for j in range(rev_ptr[left], rev_ptr[left + 1]):
            r = rev_cols[j]
            s = slot[r]
            if s >= start:
                if rev_dists[j] < buf_dists[s]:
                    buf_dists[s] = rev_dists[j]
            else:
                slot[r] = start + m
                buf_cols[start + m] = r
                buf_dists[start + m] = rev_dists[j]
                m += 1
        _sort_segment(buf_cols, buf_dists, start, start + m)
        counts[left] = m
        start += k_right + (rev_ptr[left + 1] - rev_ptr[left])

    # compact the rows (the buffer reserved room for pairs found twice)
    row_ptr = np.zeros(n_left + 1, dtype=np.int64)
    for left in range(n_left):
        row_ptr[left + 1] = row_ptr[left] + counts[left]
    cols = np.empty(row_ptr[n_left], dtype=np.int64)
    dists = np.empty(row_ptr[n_left], dtype=np.float64)
    start = 0
    for left in range(n_left):
        for i in range(counts[left]):
            cols[row_ptr[left] + i] = buf_cols[start + i]
            dists[row_ptr[left] + i] = buf_dists[start + i]
        start += k_right + (rev_ptr[left + 1] - rev_ptr[left])
    return row_ptr, cols, dists


@njit(cache=True)
def dual_softmax_weights(
    row_ptr: np.ndarray, cols: np.ndarray, dists: np.ndarray, n_right: int, temperature: float
) -> np.ndarray:
    """``P_row * P_col`` of every candidate pair, softmaxes of ``-d^2 / temperature`` over rows and columns.

    Each softmax is shifted by its largest similarity, i.e. by the smallest squared distance of its
    row (column), and the exponent is formed as ``-(d^2 - d_min^2) / temperature``: never ``-d^2 /
    temperature`` alone, which could overflow to ``-inf`` for a tiny temperature and turn every
    probability of a row into NaN. Every row and column with a candidate has one term equal to 1, so
    the sums are >= 1 and the division is safe.
    """
    n_left = row_ptr.shape[0] - 1
    n_pairs = cols.shape[0]
    sq = np.empty(n_pairs, dtype=np.float64)
    for i in range(n_pairs):
        sq[i] = dists[i] * dists[i]

    col_min = np.full(n_right, np.inf)
    for i in range(n_pairs):
        if sq[i] < col_min[cols[i]]:
            col_min[cols[i]] = sq[i]
    col_sum = np.zeros(n_right, dtype=np.float64)
    for i in range(n_pairs):
        col_sum[cols[i]] += np.exp(-(sq[i] - col_min[cols[i]]) / temperature)

    weights = np.empty(n_pairs, dtype=np.float64)
    for left in range(n_left):
        lo = row_ptr[left]
        hi = row_ptr[left + 1]
        if hi == lo:
            continue
        row_min = sq[lo]  # rows are sorted by distance
        row_sum = 0.0
        for i in range(lo, hi):
            row_sum += np.exp(-(sq[i] - row_min) / temperature)
        for i in range(lo, hi):
            r = cols[i]
            p_row = np.exp(-(sq[i] - row_min) / temperature) / row_sum
            p_col = np.exp(-(sq[i] - col_min[r]) / temperature) / col_sum[r]
            weights[i] = p_row * p_col
    return weights
