"""Mutual nearest-neighbour pairs between two sets of cells.

The neighbour search is pluggable: :func:`find_mutual_pairs` asks a neighbour backend (exact or
pynndescent, see :mod:`mnnkit.neighbors`) for the k nearest cells both ways, and the pairing
itself only consumes the resulting index arrays.
"""

from __future__ import annotations

import numpy as np

from mnnkit.correction._pair_kernels import mutual_pairs
from mnnkit.neighbors import knn_both_ways


def side_k(k: int, prop_k: float | None, n_cells: int) -> int:
    """Number of neighbours to seek in a side of ``n_cells`` cells (batchelor's ``k``/``prop.k`` rule).

    With ``prop_k``, ``min(n, max(k, round(prop_k * n)))`` with R's round-half-to-even; then capped
    at ``n_cells`` in any case.
    """
    if prop_k is not None:
        k = max(k, int(np.round(prop_k * n_cells)))
    return min(k, n_cells)


def find_mutual_pairs(
    left: np.ndarray,
    right: np.ndarray,
    *,
    k_left: int,
    k_right: int,
    neighbors: str = "exact",
    rng: int = 0,
    right_left: np.ndarray | None = None,
) -> np.ndarray:
    """MNN pairs between ``left`` and ``right`` (batchelor's ``findMutualNN(left, right, k1=k_left, k2=k_right)``).

    Parameters
    ----------
    left, right
        Dense ``(n, genes)`` data of each side.
    k_left
        Nearest left cells sought for each right cell (capped at ``len(left)`` by the caller).
    k_right
        Nearest right cells sought for each left cell (capped at ``len(right)``).
    neighbors
        ``"exact"`` or ``"pynndescent"``.
    rng
        Seed for an approximate search.
    right_left
        ``right @ left.T`` (float64, C order) if the caller keeps it: the exact search then reads it
        instead of computing it (same neighbours: the search is exact either way).

    Returns
    -------
    ``(n_pairs, 2)`` int64 (left row, right row), ordered by left row, then by increasing distance.
    """
    if right_left is not None and neighbors == "exact":
        # searched from the right side, whose products with the left side are at hand
        right_nn, left_nn = (
            result.indices for result in knn_both_ways(right, left, k_right=k_left, k_left=k_right, gram=right_left)
        )
    else:
        left_nn, right_nn = (
            result.indices
            for result in knn_both_ways(left, right, k_right=k_right, k_left=k_left, method=neighbors, rng=rng)
        )
    return mutual_pairs(np.ascontiguousarray(left_nn, dtype=np.int64), np.ascontiguousarray(right_nn, dtype=np.int64))
