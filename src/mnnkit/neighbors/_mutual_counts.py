"""Mutual-nearest-neighbour pair counts of one set against many small sets, in one exact search.

The MNN corrections' ``"auto"`` merge order counts the pairs of every node against every earlier one:
with many small batches that is thousands of tiny searches, each costing mostly its call overhead.
Searching a left set against a stack of right sets at once gives the same counts for a fraction of
the calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnnkit._config import GROUP_BLOCK_BYTES
from mnnkit.neighbors._exact import _error_scale
from mnnkit.neighbors._knn import knn
from mnnkit.neighbors._segment_kernels import segment_mutual_counts


def mutual_pair_counts(
    left: np.ndarray, right: np.ndarray, sizes: Sequence[int], k_left: int, k_rights: Sequence[int]
) -> np.ndarray:
    """MNN pair counts of ``left`` against each of several right sets stacked in ``right``, searched together.

    Parameters
    ----------
    left
        ``(n_left, d)`` data of the left side.
    right
        ``(sum(sizes), d)``: the right sets, one after the other (set ``g`` has ``sizes[g]`` rows).
    sizes
        Rows of each right set (each at least 1).
    k_left
        Nearest left cells sought for each right cell (``<= n_left``).
    k_rights
        Nearest cells of set ``g`` sought for each left cell (``1 <= k_rights[g] <= sizes[g]``).

    Returns
    -------
    ``(len(sizes),)`` int64: for each set, the row count of
    ``find_mutual_pairs(left, set, k_left=k_left, k_right=k_rights[g])`` (:mod:`mnnkit.correction._pairs`,
    exact search), ties included.

    Notes
    -----
    Each right cell's nearest left cells do not depend on the other right cells, so they come from one
    :func:`mnnkit.neighbors.knn` call for all sets; each left cell's nearest cells in every set come from
    one BLAS product per chunk of left cells, selected set by set with the exact search's error bound,
    re-measure and tie rule (:func:`segment_mutual_counts`). A count needs no search when every left
    cell is among the nearest of every right cell (``k_left >= n_left``), or, set by set, when every
    cell of the set is among the nearest of every left cell (``k_rights[g] >= sizes[g]``).

    Memory: the right cells searched (a float64 copy), their nearest left cells (``n_right x k_left``
    int64), the exact search's block (see :func:`mnnkit.neighbors.knn`), and one block of dot products of a
    chunk of left cells with the right cells, at most ``GROUP_BLOCK_BYTES`` (or one row).
    """
    n_left = left.shape[0]
    sizes = np.asarray(sizes, dtype=np.int64)
    seg_k = np.asarray(k_rights, dtype=np.int64)
    # Two cases need no search. Every left cell is among the nearest of every right cell: a set's
    # count is the number of (left cell, one of its k nearest in the set) pairs. Every cell of a set
    # is among the nearest of every left cell: its count is the number of (right cell, one of its
    # k_left nearest) pairs.
    if k_left >= n_left:
        return n_left * seg_k
    counts = sizes * k_left
    searched = np.flatnonzero(seg_k < sizes)
    if searched.size == 0:
        return counts
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = np.concatenate([np.arange(starts[s], starts[s] + sizes[s]) for s in searched])
    seg_start = np.concatenate([[0], np.cumsum(sizes[searched])]).astype(np.int64)
    seg_k = np.ascontiguousarray(seg_k[searched])
    left = np.ascontiguousarray(left, dtype=np.float64)
    right = np.ascontiguousarray(right[rows], dtype=np.float64)
    right_nn = np.ascontiguousarray(knn(right, left, k_left, method="exact").indices, dtype=np.int64)
    left_sqnorm = np.einsum("ij,ij->i", left, left)
    right_sqnorm = np.einsum("ij,ij->i", right, right)
    err_scale = _error_scale(left.shape[1])
    step = max(1, GROUP_BLOCK_BYTES // (8 * right.shape[0]))
    block = np.empty((min(step, n_left), right.shape[0]))
    found = np.zeros(seg_k.size, dtype=np.int64)
    for start in range(0, n_left, step):
        stop = min(start + step, n_left)
        gram = block[: stop - start]
        np.matmul(left[start:stop], right.T, out=gram)
        found += segment_mutual_counts(
            gram, start, left, left_sqnorm, right, right_sqnorm, seg_start, seg_k, right_nn, err_scale
        )
    counts[searched] = found
    return counts
