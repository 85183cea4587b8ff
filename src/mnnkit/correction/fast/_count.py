"""MNN pair counts between nodes for the ``"auto"`` merge order of the PC-space merge (batchelor's ``auto.merge``).

The auto merge counts the pairs of every node against every earlier one: with many small batches that
is thousands of tiny searches, each costing mostly its call overhead. A left node's data change from
one right candidate to the next only by the candidates' batch vectors, and a node without any (an
unmerged batch, or a node whose merges were all skipped) changes nothing, so consecutive candidates
without vectors are searched together (:func:`_grouped_counts`), with the same counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mnnkit.correction._plan import Node
from mnnkit.correction.fast._count_kernels import error_scale, segment_mutual_counts
from mnnkit.correction.fast._orthogonalize import orthogonalize, orthogonalize_groups
from mnnkit.neighbors import knn

if TYPE_CHECKING:
    from mnnkit.correction.fast._engine import FastMergeState

#: Right nodes up to this many cells are searched in groups of at most this many cells (a larger node
#: is searched on its own: its call overhead is small next to its search).
GROUP_MAX_CELLS = 4096
#: Bytes of the block of dot products of a chunk of left cells with one group's right cells.
GROUP_BLOCK_BYTES = 32 * 2**20


def count_row(state: FastMergeState, left: Node, rights: Sequence[Node]) -> list[int]:
    """MNN pair counts of ``left`` against each of ``rights``, as batchelor's fastMNN auto-merge counts them.

    Each right node is orthogonalised against the left node's batch vectors; the left data are
    orthogonalised against each right node's vectors *cumulatively* across the candidates (a copy
    carried from one candidate to the next), as in batchelor. The stored data are not changed.

    With the exact search and no ``restrict``, consecutive right nodes that have no batch vectors (so
    leave the left data as they are) and at most ``GROUP_MAX_CELLS`` cells are counted together by
    :func:`_grouped_counts`: the counts are exactly those of one search per node, ties included. Other
    nodes (and every node with the graph search or ``restrict``) get one search each.

    Memory: the left node's and the right nodes' data (copies), plus per group of right nodes (at most
    ``GROUP_MAX_CELLS`` cells) the exact search's block, a ``GROUP_BLOCK_BYTES`` block of dot products
    with a chunk of left cells, and the right cells' nearest left cells.
    """
    left_rows = state.rows(left)
    left_data = state.data[left_rows]
    left_pos = state.restricted_positions(left_rows)
    # every right node is orthogonalised against the same vectors: all of them in one pass
    right_rows = [state.rows(right) for right in rights]
    right_pos = [state.restricted_positions(rows) for rows in right_rows]
    stops = np.cumsum([rows.size for rows in right_rows])
    bounds = list(zip(np.concatenate([[0], stops[:-1]]), stops, strict=True))
    all_right = state.data[np.concatenate(right_rows)]
    orthogonalize_groups(all_right, state.extras[left], bounds, right_pos)
    groupable = state.restricted is None and getattr(state.search, "name", None) == "exact"
    counts = [0] * len(rights)
    group: list[int] = []  # consecutive right nodes searched together, in order

    def flush() -> None:
        if group:
            first, last = bounds[group[0]][0], bounds[group[-1]][1]
            found = _grouped_counts(state, left_data, all_right[first:last], [bounds[i][1] - first for i in group])
            for i, count in zip(group, found, strict=True):
                counts[i] = int(count)
            group.clear()

    for i, (right, (start, stop)) in enumerate(zip(rights, bounds, strict=True)):
        size = int(stop - start)
        if groupable and not state.extras[right] and size <= GROUP_MAX_CELLS:
            if group and stop - bounds[group[0]][0] > GROUP_MAX_CELLS:
                flush()
            group.append(i)
            continue
        flush()  # with the left data as they were before this node's vectors
        orthogonalize(left_data, state.extras[right], left_pos)
        pairs = state.pairs(left, right, left_data, all_right[start:stop], (left_pos, right_pos[i]))
        counts[i] = int(pairs.shape[0])
    flush()
    return counts


def _grouped_counts(
    state: FastMergeState, left_data: np.ndarray, right_data: np.ndarray, stops: Sequence[int]
) -> np.ndarray:
    """:func:`grouped_mnn_counts` of a group of right nodes with the merge's ``k`` per side.

    Node ``g`` is the rows ``stops[g-1]:stops[g]`` of ``right_data`` (``stops[-1]`` taken as 0).
    """
    n_left = left_data.shape[0]
    sizes = np.diff(np.concatenate([[0], np.asarray(stops, dtype=np.int64)]))
    k_left = state.side_ks(n_left, 1)[0]  # the left side's k does not depend on the right node
    k_rights = [state.side_ks(n_left, int(n))[1] for n in sizes]
    return grouped_mnn_counts(left_data, right_data, sizes, k_left, k_rights)


def grouped_mnn_counts(
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
    err_scale = error_scale(left.shape[1])
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
