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

from mnnkit._config import GROUP_MAX_CELLS
from mnnkit.correction._plan import Node
from mnnkit.correction.fast._orthogonalize import orthogonalize, orthogonalize_groups
from mnnkit.neighbors import mutual_pair_counts

if TYPE_CHECKING:
    from mnnkit.correction.fast._engine import FastMergeState


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
    """:func:`mutual_pair_counts` of a group of right nodes with the merge's ``k`` per side.

    Node ``g`` is the rows ``stops[g-1]:stops[g]`` of ``right_data`` (``stops[-1]`` taken as 0).
    """
    n_left = left_data.shape[0]
    sizes = np.diff(np.concatenate([[0], np.asarray(stops, dtype=np.int64)]))
    k_left = state.side_ks(n_left, 1)[0]  # the left side's k does not depend on the right node
    k_rights = [state.side_ks(n_left, int(n))[1] for n in sizes]
    return mutual_pair_counts(left_data, right_data, sizes, k_left, k_rights)
