"""Numba kernels of the classic MNN correction.

These functions speak plain arrays only: no AnnData, no validation (that happens in the
callers, before any kernel runs). Log-space sums follow batchelor's sequential rule
``a <- max(a, b) + log1p(exp(-|a - b|))`` in the stated element order, so that the rounding of
near-degenerate quantiles matches the reference implementation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mnnkit._config import NUMBA_FASTMATH, SOFTMAX_COLUMN_TILE
from mnnkit._sort import sort_pairs
from mnnkit._threads import run_in_ranges


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


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _row_max(logits: np.ndarray, i: int) -> float:
    """Largest entry of row ``i`` (-inf for an empty row): the shift of the stable log-sum-exp and softmax."""
    peak = -np.inf
    for j in range(logits.shape[1]):
        if logits[i, j] > peak:
            peak = logits[i, j]
    return peak


def row_logsumexp(logits: np.ndarray, out: np.ndarray) -> None:
    """Stable log-sum-exp of each row of ``logits`` into ``out`` (max-shifted; ranges of rows in parallel)."""
    logits = _c_order(logits)
    run_in_ranges(_logsumexp_rows, logits.shape[0], 1, logits, out)


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _logsumexp_rows(logits: np.ndarray, out: np.ndarray, first: int, last: int) -> None:
    """Rows ``first:last`` of :func:`row_logsumexp`."""
    m = logits.shape[1]
    for i in range(first, last):
        peak = _row_max(logits, i)
        total = 0.0
        for j in range(m):
            total += np.exp(logits[i, j] - peak)
        out[i] = peak + np.log(total)


def softmax_rows_inplace(logits: np.ndarray) -> None:
    """Turn each row of ``logits`` into its softmax, in place (max-shifted; ranges of rows in parallel).

    A Fortran-ordered array is worked on as its (C-ordered) transpose, column by column, with the same
    operations in the same order: the result is the same bit for bit, without a copy.
    """
    if not logits.flags.c_contiguous and logits.flags.f_contiguous:
        run_in_ranges(_softmax_columns, logits.shape[0], SOFTMAX_COLUMN_TILE, logits.T)
        return
    work = _c_order(logits)
    run_in_ranges(_softmax_rows, work.shape[0], 1, work)
    if work is not logits:
        logits[...] = work


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _softmax_rows(logits: np.ndarray, first: int, last: int) -> None:
    """Rows ``first:last`` of :func:`softmax_rows_inplace`."""
    m = logits.shape[1]
    for i in range(first, last):
        peak = _row_max(logits, i)
        total = 0.0
        for j in range(m):
            w = np.exp(logits[i, j] - peak)
            logits[i, j] = w
            total += w
        for j in range(m):
            logits[i, j] /= total


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _softmax_columns(logits_t: np.ndarray, first: int, last: int) -> None:
    """Columns ``first:last`` of ``logits_t`` (rows of the caller's array) turned into their softmax.

    Each column is summed down its rows in order, as :func:`_softmax_rows` sums a row: the same result.
    """
    n = logits_t.shape[0]
    width = last - first
    peak = np.empty(width)
    total = np.empty(width)
    for c in range(width):
        peak[c] = -np.inf
        total[c] = 0.0
    for i in range(n):
        for c in range(width):
            if logits_t[i, first + c] > peak[c]:
                peak[c] = logits_t[i, first + c]
    for i in range(n):
        for c in range(width):
            w = np.exp(logits_t[i, first + c] - peak[c])
            logits_t[i, first + c] = w
            total[c] += w
    for i in range(n):
        for c in range(width):
            logits_t[i, first + c] /= total[c]


def kernel_logits(sq_dist: np.ndarray, log_density: np.ndarray, sigma: float) -> None:
    """In place: ``sq_dist[j, u] <- -max(sq_dist[j, u], 0) / sigma - log_density[u]``.

    One compiled kernel for C- and Fortran-ordered input (the latter as its C-ordered transpose).
    """
    if not sq_dist.flags.c_contiguous and sq_dist.flags.f_contiguous:
        run_in_ranges(_kernel_logits_rows, sq_dist.shape[1], 1, sq_dist.T, log_density, float(sigma), True)
        return
    work = _c_order(sq_dist)
    run_in_ranges(_kernel_logits_rows, work.shape[0], 1, work, log_density, float(sigma), False)
    if work is not sq_dist:
        sq_dist[...] = work


@njit(cache=True, nogil=True)
def _kernel_logits_rows(
    sq_dist: np.ndarray, log_density: np.ndarray, sigma: float, density_by_row: bool, first: int, last: int
) -> None:
    """Rows ``first:last`` of :func:`kernel_logits`; ``density_by_row``: ``log_density`` indexed by row (transpose)."""
    m = sq_dist.shape[1]
    for i in range(first, last):
        for u in range(m):
            d2 = sq_dist[i, u]
            if d2 < 0.0:
                d2 = 0.0
            sq_dist[i, u] = -d2 / sigma - (log_density[i] if density_by_row else log_density[u])


def _c_order(array: np.ndarray) -> np.ndarray:
    """``array`` itself when C-contiguous, else a C-ordered copy (one layout, one compiled kernel)."""
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


#: Position buckets of :func:`_bucketed_crossing` per round, and its rounds at most before it sorts
N_BUCKETS = 256
BUCKET_LEVELS = 8


@njit(cache=True)
def _bucketed_crossing(pos: np.ndarray, weight: np.ndarray, target: float) -> tuple[float, float, float]:
    """Smallest ``pos[i]`` at which the weight of all cells with ``pos <= pos[i]`` reaches ``target``.

    By buckets: positions go to ``N_BUCKETS`` equal-width buckets (the bucket index is monotone in the
    position, so a bucket holds a contiguous range of the sorted positions), the bucket where the
    cumulative weight reaches ``target`` is found from the bucket totals, and the search goes on among
    its cells alone, in finer buckets, until at most ``N_BUCKETS`` cells are left (or
    ``BUCKET_LEVELS`` rounds have passed); those are sorted (with the kernels' shared small sort,
    :func:`mnnkit._sort.sort_pairs`) and summed in order, tied positions as one step. Linear passes without
    data-dependent branches instead of the ``O(n log n)`` sort of the reference implementation; the
    answer does not depend on the order of tied positions. If ``target`` is never reached (rounding),
    the largest position of the cells searched last.

    Returns ``(answer, below, through)``: the answer, and the weight of the cells strictly below it and
    up to it inclusive (``below < target <= through``; both ``inf`` if the target was never reached),
    which say how far ``target`` may move before the answer changes.
    """
    n = pos.size
    members = np.empty(n, dtype=np.int64)  # the cells still searched (without np.arange's generic code)
    for i in range(n):
        members[i] = i
    m = n
    below = 0.0  # weight of the cells known to lie below those still searched
    bucket = np.empty(n, dtype=np.int64)
    totals = np.empty(N_BUCKETS)
    for _ in range(BUCKET_LEVELS):
        lo = pos[members[0]]
        hi = lo
        for t in range(m):
            v = pos[members[t]]
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        if hi == lo:  # one position left: one step
            step = 0.0
            for t in range(m):
                step += weight[members[t]]
            if below + step >= target:
                return lo, below, below + step
            return lo, np.inf, np.inf
        scale = N_BUCKETS / (hi - lo)
        if m <= N_BUCKETS or not np.isfinite(scale):
            break
        for b in range(N_BUCKETS):  # zeroed here: np.zeros would compile an implementation of its own
            totals[b] = 0.0
        for t in range(m):
            b = int((pos[members[t]] - lo) * scale)
            b = b if b < N_BUCKETS - 1 else N_BUCKETS - 1
            bucket[t] = b
            totals[b] += weight[members[t]]
        chosen = -1
        for b in range(N_BUCKETS):
            if below + totals[b] >= target:
                chosen = b
                break
            below += totals[b]
        if chosen < 0:
            return hi, np.inf, np.inf
        kept = 0
        for t in range(m):
            if bucket[t] == chosen:
                members[kept] = members[t]
                kept += 1
        m = kept
    sub_pos = np.empty(m)
    for t in range(m):
        sub_pos[t] = pos[members[t]]
    sort_pairs(sub_pos, members, m)
    a = 0
    while a < m:
        value = sub_pos[a]
        step = 0.0
        b = a
        while b < m and sub_pos[b] == value:  # tied positions form one step of the cumulative weight
            step += weight[members[b]]
            b += 1
        if below + step >= target:
            return value, below, below + step
        below += step
        a = b
    return sub_pos[m - 1], np.inf, np.inf  # rounding: the cells' own sum fell short of their bucket's total


#: A quantile whose target weight lies closer than this (relative to the total) to a step of the left
#: cumulative weight is recomputed with batchelor's sequential log-space sums, whose rounding then decides.
DEGENERATE_MARGIN = 1e-8


@njit(cache=True)
def _line_sq_dist(prod_pos: float, prod_dot: float, own_sq: float, other_sq: float, p: float) -> float:
    """Squared distance of a cell to the line through cell ``j`` along its unit direction ``g``.

    ``prod_pos = y . g`` and ``prod_dot = y . x_j``; the squared distance to ``x_j`` is formed as
    ``(-2 prod_dot + |x_j|^2) + |y|^2``, minus the squared offset along ``g``, clipped at 0.
    """
    d2 = prod_dot * -2.0
    d2 += own_sq
    d2 += other_sq
    off = prod_pos - p
    d2 = d2 - off * off
    return d2 if d2 > 0.0 else 0.0


def variance_scales(
    left_proj: np.ndarray,
    left_dot: np.ndarray,
    left_sq: np.ndarray,
    right_proj: np.ndarray,
    right_dot: np.ndarray,
    right_sq: np.ndarray,
    own_sq: np.ndarray,
    own_slot: np.ndarray,
    own_pos: np.ndarray,
    own_log_weight: float,
    empty_numerator_is_one: bool,
    correction_norm: np.ndarray,
    sigma: float,
    scales: np.ndarray,
) -> int:
    """Variance-adjustment scale factors for a chunk of ``b`` right cells (batchelor's ``var.adj``).

    For chunk row ``c`` (right cell ``j`` with unit correction direction ``g``), ``left_proj[c, i]`` is
    left cell ``i``'s projection on ``g`` and ``left_dot[c, i]`` its dot product with ``x_j`` (``(b, n)``
    arrays; ``right_proj`` / ``right_dot`` likewise for the right population); ``left_sq`` /
    ``right_sq`` / ``own_sq`` are squared norms. ``own_pos[c]`` is ``j``'s own projection and
    ``own_slot[c]`` its column in the right population, or -1 if the population (a sample) does not
    contain it: then ``j`` enters the own-batch sums with log-weight ``own_log_weight`` (``-inf``: not at
    all, as for an unrestricted cell with batchelor's ``restrict``). ``empty_numerator_is_one``
    reproduces batchelor's ``restrict`` quirk: when no cell of the population lies at or below ``j``,
    R keeps its initial log-numerator 0, a numerator weight of 1 (not 0).

    The weight of a cell ``y`` is ``exp(-delta^2 / sigma)`` with ``delta`` its distance to the line
    through ``j`` along ``g``. The quantile ``F`` of ``j`` among its own batch is matched with the
    weighted quantile of the left cells (found by weighted quickselect), and
    ``scales[c] = max((q* - p_j) / |c_j|, 1)``. ``F`` is a ratio of max-shifted sums; where the matched
    left quantile sits within ``DEGENERATE_MARGIN`` of a step, ``F`` is recomputed with batchelor's
    sequential log-space sums (in population order) so that rounding decides as in the reference.
    Returns the number of such recomputed cells. Ranges of chunk rows go to the numba threads.
    """
    counts = run_in_ranges(
        _variance_scales_rows, own_pos.size, 1,
        left_proj, left_dot, left_sq, right_proj, right_dot, right_sq, own_sq, own_slot, own_pos,
        float(own_log_weight), bool(empty_numerator_is_one), correction_norm, float(sigma), scales,
    )  # fmt: skip
    return int(sum(counts))


@njit(cache=True, nogil=True)
def _variance_scales_rows(
    left_proj, left_dot, left_sq, right_proj, right_dot, right_sq, own_sq, own_slot, own_pos, own_log_weight,
    empty_numerator_is_one, correction_norm, sigma, scales, first, last,
):  # fmt: skip
    """Chunk rows ``first:last`` of :func:`variance_scales`; returns their number of recomputed cells."""
    n_left = left_proj.shape[1]
    n_right = right_proj.shape[1]
    n_slow = 0
    for c in range(first, last):
        j = own_slot[c]
        p = own_pos[c]
        x_sq = own_sq[c]
        # own batch: log-weights, their peak, then max-shifted sums
        right_lw = np.empty(n_right)
        peak = own_log_weight if j < 0 else -np.inf
        for s in range(n_right):
            if s == j:
                lw = 0.0
            else:
                lw = -_line_sq_dist(right_proj[c, s], right_dot[c, s], x_sq, right_sq[s], p) / sigma
            right_lw[s] = lw
            if lw > peak:
                peak = lw
        den = 0.0
        num = 0.0
        if j < 0:
            den = np.exp(own_log_weight - peak)
            num = den
        below = 0
        for s in range(n_right):
            w = np.exp(right_lw[s] - peak)
            den += w
            at_or_below = s == j or right_proj[c, s] <= p
            num += w if at_or_below else 0.0  # a select, not a branch
            below += 1 if at_or_below else 0
        if empty_numerator_is_one and below == 0:
            num = np.exp(-peak)
        # left batch: weights relative to their peak
        weight = np.empty(n_left)
        left_peak = -np.inf
        for i in range(n_left):
            lw = -_line_sq_dist(left_proj[c, i], left_dot[c, i], x_sq, left_sq[i], p) / sigma
            weight[i] = lw
            if lw > left_peak:
                left_peak = lw
        total = 0.0
        for i in range(n_left):
            weight[i] = np.exp(weight[i] - left_peak)
            total += weight[i]
        target = num / den * total
        quantile, below, through = _bucketed_crossing(left_proj[c], weight, target)
        margin = DEGENERATE_MARGIN * total
        if not (target - below > margin and through - target > margin):
            n_slow += 1
            log_num = -np.inf
            log_den = -np.inf
            if j < 0:
                log_num = own_log_weight
                log_den = own_log_weight
            for s in range(n_right):
                log_den = _log_add(log_den, right_lw[s])
                if s == j or right_proj[c, s] <= p:
                    log_num = _log_add(log_num, right_lw[s])
            if empty_numerator_is_one and log_num == -np.inf:
                log_num = 0.0
            quantile = _bucketed_crossing(left_proj[c], weight, np.exp(log_num - log_den) * total)[0]
        scale = (quantile - p) / correction_norm[c]
        scales[c] = scale if scale > 1.0 else 1.0
    return n_slow


def weighted_gather(weights: np.ndarray, index: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = sum_t weights[j, t] * rows[index[j, t]]`` for every j (ranges of j in parallel)."""
    run_in_ranges(_weighted_gather_rows, index.shape[0], 1, _c_order(weights), index, rows, out)


@njit(cache=True, nogil=True)
def _weighted_gather_rows(weights, index, rows, out, first, last):  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`weighted_gather`."""
    m = index.shape[1]
    n_cols = rows.shape[1]
    for j in range(first, last):
        for c in range(n_cols):
            out[j, c] = 0.0
        for t in range(m):
            w = weights[j, t]
            src = index[j, t]
            for c in range(n_cols):
                out[j, c] += w * rows[src, c]
