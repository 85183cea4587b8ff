"""Numba kernel of the grouped mutual-pair counts (:func:`mnnkit.neighbors.mutual_pair_counts`).

One left node is searched against several right nodes at once: BLAS gives the dot products of a chunk
of left cells with the cells of all those nodes (the nodes' cells are contiguous column segments), and
this kernel finds, per left cell and segment, the segment's ``k`` nearest cells exactly as
:func:`mnnkit.neighbors.knn` (``method="exact"``) finds them in that segment alone, then counts the mutual
pairs against the right cells' nearest left cells. Plain arrays only; the caller checks them.

Exactness: the same rigorous rounding-error bound as the exact kNN search selects a candidate set that
holds every cell of the true top ``k`` (ties at the ``k``-th distance included); the candidates are
re-measured by a sequential sum of squared differences (the exact search's re-measure, written the same
way, so the same bits) and ranked by (squared distance, cell), ties to the lower cell. Only the set of
the ``k`` nearest matters for a count, so the rank order inside it is not kept.

Determinism: every left row is handled by one call of the serial range kernel
(:func:`mnnkit._threads.run_in_ranges`) and nothing is reduced across threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mnnkit._config import KNN_PARALLEL_MIN_WORK, NUMBA_FASTMATH, SELECT_BLOCK_ROWS
from mnnkit._sort import sort_pairs
from mnnkit._threads import run_in_ranges
from mnnkit.neighbors._kernels import _squared_distance, nearest_candidates


def segment_mutual_counts(
    gram: np.ndarray,
    row_offset: int,
    left: np.ndarray,
    left_sqnorm: np.ndarray,
    right: np.ndarray,
    right_sqnorm: np.ndarray,
    seg_start: np.ndarray,
    seg_k: np.ndarray,
    right_nn: np.ndarray,
    err_scale: float,
) -> np.ndarray:
    """MNN pair counts of a chunk of left cells against each segment of right cells.

    Parameters
    ----------
    gram
        ``(n_rows, n_right)`` float64, ``left[row_offset + i] . right[j]`` (any rounding: BLAS).
    row_offset
        Row of the whole left side that ``gram``'s first row is.
    left, left_sqnorm
        The whole left side ``(n_left, d)`` (C-contiguous float64) and its squared row norms.
    right, right_sqnorm
        The right cells ``(n_right, d)`` of all segments and their squared row norms.
    seg_start
        ``(n_seg + 1,)`` int64: segment ``s`` is the right cells ``seg_start[s]:seg_start[s + 1]``.
    seg_k
        ``(n_seg,)`` int64: nearest cells of segment ``s`` sought for each left cell (1 to its size).
    right_nn
        ``(n_right, k_left)`` int64: each right cell's nearest left cells (rows of the whole left side).
    err_scale
        The exact search's error scale for ``d`` dimensions (``_exact._error_scale``).

    Returns
    -------
    ``(n_seg,)`` int64: for each segment, the number of (left cell of the chunk, right cell of the
    segment) pairs in which each is among the other's nearest.

    Notes
    -----
    Memory: an ``(n_rows, n_seg)`` uint8 mask and int64 counts, and per thread ``O(n_right)`` scratch.
    """
    n_rows = gram.shape[0]
    n_seg = seg_k.shape[0]
    right_norm = np.sqrt(right_sqnorm)
    seg_max_norm = np.zeros(n_seg)
    for s in range(n_seg):
        if seg_start[s + 1] > seg_start[s]:
            seg_max_norm[s] = right_norm[seg_start[s] : seg_start[s + 1]].max()
    # a left cell no right cell of a segment lists cannot be in a pair there: its search is skipped
    listed = _listed_rows(right_nn, seg_start, int(row_offset), n_rows)
    counts = np.zeros((n_rows, n_seg), dtype=np.int64)
    args = (
        gram, int(row_offset), left, left_sqnorm, right, right_sqnorm, right_norm, seg_max_norm,
        seg_start, seg_k, right_nn, listed, float(err_scale), counts,
    )  # fmt: skip
    if n_rows * gram.shape[1] * max(left.shape[1], 1) < KNN_PARALLEL_MIN_WORK:
        _count_rows(*args, 0, n_rows)  # small: waking the threads costs more than it saves
    else:
        run_in_ranges(_count_rows, n_rows, SELECT_BLOCK_ROWS, *args)
    return counts.sum(axis=0)


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _listed_rows(right_nn, seg_start, row_offset, n_rows):  # pragma: no cover - traced by numba
    """``out[i, s]`` is 1 when some right cell of segment ``s`` lists left row ``row_offset + i``."""
    n_seg = seg_start.shape[0] - 1
    out = np.zeros((n_rows, n_seg), dtype=np.uint8)
    for s in range(n_seg):
        for j in range(seg_start[s], seg_start[s + 1]):
            for t in range(right_nn.shape[1]):
                i = right_nn[j, t] - row_offset
                if 0 <= i < n_rows:
                    out[i, s] = 1
    return out


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _count_rows(
    gram, row_offset, left, left_sqnorm, right, right_sqnorm, right_norm, seg_max_norm, seg_start, seg_k,
    right_nn, listed, err_scale, counts, first, last,
):  # fmt: skip  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`segment_mutual_counts` (one set of scratch arrays for them all)."""
    n_seg = seg_k.shape[0]
    k_left = right_nn.shape[1]
    longest = 0
    for s in range(n_seg):
        longest = max(longest, seg_start[s + 1] - seg_start[s])
    seen = np.empty(longest, dtype=np.int64)
    seen_approx = np.empty(longest)
    scratch = np.empty(longest)
    cand = np.empty(longest, dtype=np.int64)
    cand_d2 = np.empty(longest)
    for i in range(first, last):
        me = row_offset + i
        q_sq = left_sqnorm[me]
        q_norm = np.sqrt(q_sq)
        for s in range(n_seg):
            if listed[i, s] == 0:
                continue
            a = seg_start[s]
            b = seg_start[s + 1]
            k = seg_k[s]
            # record every cell within the error slack of the k-th smallest approximate distance
            widest = q_norm + seg_max_norm[s]
            slack = 2.0 * err_scale * widest * widest
            n_seen, kth = nearest_candidates(
                gram[i], q_sq, right_sqnorm, a, b, -1, slack, k, seen, seen_approx, scratch
            )
            upper = kth + 0.5 * slack
            # the candidates that can be in the true top k, re-measured: their k smallest by (distance, cell)
            n_cand = np.int64(0)
            for c in range(n_seen):
                j = seen[c]
                w = q_norm + right_norm[j]
                if seen_approx[c] - err_scale * w * w <= upper:
                    cand[n_cand] = j
                    cand_d2[n_cand] = _squared_distance(left[me], right[j])
                    n_cand += 1
            sort_pairs(cand_d2, cand, n_cand)
            found = 0
            for t in range(k):
                j = cand[t]
                for u in range(k_left):
                    if right_nn[j, u] == me:
                        found += 1
                        break
            counts[i, s] = found
