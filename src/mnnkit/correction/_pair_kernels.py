"""Numba kernel of the MNN pairing shared by both methods: keep the pairs found in both directions.

Plain arrays only; the callers (:mod:`mnnkit.correction._pairs` and the fast method's searches) check
their inputs. The output order is part of the contract: batchelor orders pairs by left cell, then by
the right cell's rank among that cell's neighbours, and the correction vectors are averaged in it.
"""

from __future__ import annotations

import numpy as np
from numba import njit


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
    among that left cell's neighbours. (Python over :func:`mutual_pairs_among`: one compiled kernel.)
    """
    return mutual_pairs_among(np.arange(left_nn.shape[0], dtype=np.int64), left_nn, right_nn)


@njit(cache=True)
def mutual_pairs_among(rows: np.ndarray, rows_nn: np.ndarray, right_nn: np.ndarray) -> np.ndarray:
    """Mutual pairs ``(left row, right row)`` between the left cells ``rows`` (ascending) and all right cells.

    ``rows_nn[i]`` lists the nearest right cells of left cell ``rows[i]``, nearest first. When ``rows``
    holds every left cell that some right cell lists (the others cannot be in a pair), the result equals
    :func:`mutual_pairs` of the full lists: ordered by left row, then by rank.
    """
    n_rows, k_right = rows_nn.shape
    k_left = right_nn.shape[1]
    keep = np.empty((n_rows, k_right), dtype=np.bool_)  # filled below (np.zeros would compile its own impl)
    count = 0
    for i in range(n_rows):
        left = rows[i]
        for a in range(k_right):
            keep[i, a] = False
            r = rows_nn[i, a]
            for b in range(k_left):
                if right_nn[r, b] == left:
                    keep[i, a] = True
                    count += 1
                    break
    pairs = np.empty((count, 2), dtype=np.int64)
    pos = 0
    for i in range(n_rows):
        for a in range(k_right):
            if keep[i, a]:
                pairs[pos, 0] = rows[i]
                pairs[pos, 1] = rows_nn[i, a]
                pos += 1
    return pairs
