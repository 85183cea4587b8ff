"""Numba kernels of the classic MNN correction.

These functions speak plain arrays only: no AnnData, no validation (that happens in the
callers, before any kernel runs). Log-space sums follow batchelor's sequential rule
``a <- max(a, b) + log1p(exp(-|a - b|))`` in the stated element order, so that the rounding of
near-degenerate quantiles matches the reference implementation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mnnkit._config import NUMBA_FASTMATH


@njit(cache=True, fastmath=NUMBA_FASTMATH)
def _log_add(a: float, b: float) -> float:
    """Return log(exp(a) + exp(b)), accumulated as batchelor does (``a`` is the running total)."""
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a >= b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@njit(cache=True)
def mutual_pairs(left_nn: np.ndarray, right_nn: np.ndarray) -> np.ndarray:
    """Mutual nearest-neighbour pairs from the two one-sided neighbour lists.

    Parameters
    ----------
    left_nn
        ``(n_left, k_right)`` int64: for each left cell, its nearest right cells by increasing distance.
    right_nn
        ``(n_right, k_left)`` int64: for each right cell, its nearest left cells.

    Returns
    -------
    ``(n_pairs, 2)`` int64 pairs (left, right), ordered by left cell, then by the right cell's rank
    among that left cell's neighbours.
    """
    n_left, k_right = left_nn.shape
    k_left = right_nn.shape[1]
    count = 0
    keep = np.zeros(left_nn.shape, dtype=np.bool_)
    for i in range(n_left):
        for a in range(k_right):
            r = left_nn[i, a]
            for b in range(k_left):
                if right_nn[r, b] == i:
                    keep[i, a] = True
                    count += 1
                    break
    pairs = np.empty((count, 2), dtype=np.int64)
    pos = 0
    for i in range(n_left):
        for a in range(k_right):
            if keep[i, a]:
                pairs[pos, 0] = i
                pairs[pos, 1] = left_nn[i, a]
                pos += 1
    return pairs


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def row_logsumexp(logits: np.ndarray, out: np.ndarray) -> None:
    """Stable log-sum-exp of each row of ``logits`` into ``out`` (max-shifted, parallel over rows)."""
    n, m = logits.shape
    for i in prange(n):
        peak = -np.inf
        for j in range(m):
            if logits[i, j] > peak:
                peak = logits[i, j]
        total = 0.0
        for j in range(m):
            total += np.exp(logits[i, j] - peak)
        out[i] = peak + np.log(total)


@njit(cache=True, parallel=True, fastmath=NUMBA_FASTMATH)
def softmax_rows_inplace(logits: np.ndarray) -> None:
    """Turn each row of ``logits`` into its softmax, in place (max-shifted, parallel over rows)."""
    n, m = logits.shape
    for i in prange(n):
        peak = -np.inf
        for j in range(m):
            if logits[i, j] > peak:
                peak = logits[i, j]
        total = 0.0
        for j in range(m):
            w = np.exp(logits[i, j] - peak)
            logits[i, j] = w
            total += w
        for j in range(m):
            logits[i, j] /= total


@njit(cache=True, parallel=True)
def kernel_logits(sq_dist: np.ndarray, log_density: np.ndarray, sigma: float) -> None:
    """In place: ``sq_dist[j, u] <- -max(sq_dist[j, u], 0) / sigma - log_density[u]``."""
    n, m = sq_dist.shape
    for i in prange(n):
        for u in range(m):
            d2 = sq_dist[i, u]
            if d2 < 0.0:
                d2 = 0.0
            sq_dist[i, u] = -d2 / sigma - log_density[u]


@njit(cache=True)
def _weighted_crossing(pos: np.ndarray, weight: np.ndarray, target: float) -> float:
    """Smallest ``pos[i]`` at which the weight of all cells with ``pos <= pos[i]`` reaches ``target``.

    A weighted quickselect (three-way partitions around a median-of-three pivot), ``O(n)`` expected
    instead of the ``O(n log n)`` sort of the reference implementation; the answer does not depend on
    the order of tied positions. If ``target`` is never reached (rounding), the largest position.
    """
    n = pos.size
    idx = np.arange(n)
    lo = 0
    hi = n
    below = 0.0  # weight of the cells already known to lie below the current range
    while hi - lo > 24:
        a, b, c = pos[idx[lo]], pos[idx[(lo + hi) // 2]], pos[idx[hi - 1]]
        pivot = max(min(a, b), min(max(a, b), c))
        lt = lo  # idx[lo:lt] < pivot, idx[lt:k] == pivot, idx[gt:hi] > pivot
        k = lo
        gt = hi
        w_less = 0.0
        w_equal = 0.0
        while k < gt:
            v = pos[idx[k]]
            if v < pivot:
                w_less += weight[idx[k]]
                idx[lt], idx[k] = idx[k], idx[lt]
                lt += 1
                k += 1
            elif v > pivot:
                gt -= 1
                idx[gt], idx[k] = idx[k], idx[gt]
            else:
                w_equal += weight[idx[k]]
                k += 1
        if below + w_less >= target:
            hi = lt
        elif below + w_less + w_equal >= target:
            return pivot
        else:
            below += w_less + w_equal
            lo = gt
    for a in range(lo + 1, hi):  # insertion sort of the small remaining range
        item = idx[a]
        b = a - 1
        while b >= lo and pos[idx[b]] > pos[item]:
            idx[b + 1] = idx[b]
            b -= 1
        idx[b + 1] = item
    for a in range(lo, hi):
        below += weight[idx[a]]
        if below >= target:
            return pos[idx[a]]
    best = pos[0]
    for i in range(1, n):
        if pos[i] > best:
            best = pos[i]
    return best


@njit(cache=True, parallel=True)
def variance_scales(
    left_pos: np.ndarray,
    left_sq_dist: np.ndarray,
    right_pos: np.ndarray,
    right_sq_dist: np.ndarray,
    own_slot: np.ndarray,
    own_pos: np.ndarray,
    own_log_weight: float,
    correction_norm: np.ndarray,
    sigma: float,
    scales: np.ndarray,
) -> None:
    """Variance-adjustment scale factors for a chunk of right cells (batchelor's ``var.adj``).

    For chunk row ``c`` (right cell ``j`` with unit correction direction ``g``): ``left_pos[c]`` /
    ``right_pos[c]`` hold the projections on ``g`` of every left / right cell of the populations
    compared against, and ``left_sq_dist[c]`` / ``right_sq_dist[c]`` their squared distances to cell
    ``j`` (all four are ``(n_chunk, n_cells)`` arrays, so each right cell reads contiguous rows).
    ``own_pos[c]`` is ``j``'s own projection and ``own_slot[c]`` its column in the right population,
    or -1 if the population (a sample) does not contain it: then ``j`` enters the own-batch sums with
    log-weight ``own_log_weight``.

    The weight of a cell ``y`` is ``exp(-delta^2 / sigma)`` with ``delta`` its distance to the line
    through cell ``j`` along ``g``. The quantile ``F`` of ``j`` among its own batch is matched with the
    weighted quantile of the left cells (found by weighted quickselect), and
    ``scales[c] = max((q* - p_j) / |c_j|, 1)``. The own-batch log sums run sequentially in population
    order, as batchelor's do.
    """
    n_left = left_pos.shape[1]
    n_right = right_pos.shape[1]
    n_chunk = own_pos.size
    for c in prange(n_chunk):
        j = own_slot[c]
        p = own_pos[c]
        num = -np.inf
        den = -np.inf
        if j < 0:
            num = own_log_weight
            den = own_log_weight
        for s in range(n_right):
            if s == j:
                lw = 0.0
            else:
                off = right_pos[c, s] - p
                d2 = right_sq_dist[c, s] - off * off
                if d2 < 0.0:
                    d2 = 0.0
                lw = -d2 / sigma
            den = _log_add(den, lw)
            if s == j or right_pos[c, s] <= p:
                num = _log_add(num, lw)
        log_target = num - den

        logw = np.empty(n_left)
        peak = -np.inf
        for i in range(n_left):
            off = left_pos[c, i] - p
            d2 = left_sq_dist[c, i] - off * off
            if d2 < 0.0:
                d2 = 0.0
            logw[i] = -d2 / sigma
            if logw[i] > peak:
                peak = logw[i]
        weight = np.empty(n_left)
        total = 0.0
        for i in range(n_left):
            weight[i] = np.exp(logw[i] - peak)
            total += weight[i]
        quantile = _weighted_crossing(left_pos[c], weight, np.exp(log_target) * total)
        scale = (quantile - p) / correction_norm[c]
        scales[c] = scale if scale > 1.0 else 1.0


@njit(cache=True, parallel=True)
def weighted_gather(weights: np.ndarray, index: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = sum_t weights[j, t] * rows[index[j, t]]`` for every j (parallel over j)."""
    n, m = index.shape
    n_cols = rows.shape[1]
    for j in prange(n):
        for c in range(n_cols):
            out[j, c] = 0.0
        for t in range(m):
            w = weights[j, t]
            src = index[j, t]
            for c in range(n_cols):
                out[j, c] += w * rows[src, c]
