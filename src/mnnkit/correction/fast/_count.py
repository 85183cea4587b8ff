"""MNN pair counts between nodes for the ``"auto"`` merge order of the PC-space merge (batchelor's ``auto.merge``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mnnkit.correction._plan import Node
from mnnkit.correction.fast._orthogonalize import orthogonalize, orthogonalize_groups

if TYPE_CHECKING:
    from mnnkit.correction.fast._engine import FastMergeState


def count_row(state: FastMergeState, left: Node, rights: Sequence[Node]) -> list[int]:
    """MNN pair counts of ``left`` against each of ``rights``, as batchelor's fastMNN auto-merge counts them.

    Each right node is orthogonalised against the left node's batch vectors; the left data are
    orthogonalised against each right node's vectors *cumulatively* across the candidates (a copy
    carried from one candidate to the next), as in batchelor. The stored data are not changed.
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
    counts = []
    for right, (start, stop), restricted_right in zip(rights, bounds, right_pos, strict=True):
        orthogonalize(left_data, state.extras[right], left_pos)
        right_data = all_right[start:stop]
        pairs = state.pairs(left, right, left_data, right_data, (left_pos, restricted_right))
        counts.append(int(pairs.shape[0]))
    return counts
