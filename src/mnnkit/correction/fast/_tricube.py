"""Correction vectors of the MNN cells and their tricube-weighted spread to every cell being merged."""

from __future__ import annotations

import numpy as np

from mnnkit.correction.fast import _pc_kernels

#: batchelor's floor on the tricube bandwidth.
BANDWIDTH_FLOOR = 1e-8


def pc_space_averages(left: np.ndarray, right: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average correction vector of each distinct right MNN cell in PC space (batchelor's ``.average_correction``).

    Sums in pair order with a numba kernel, as batchelor's fastMNN does (the classic method's
    ``gene_space_averages`` uses BLAS for wide data instead; the roundings differ).

    Parameters
    ----------
    left, right
        ``(n_left, d)`` and ``(n_right, d)`` float64 data of the two sides.
    pairs
        ``(n_pairs, 2)`` MNN pairs (left row, right row), at least one.

    Returns
    -------
    ``(cells, averages)``: the distinct right rows in ascending order, and for each the mean of
    ``left[l] - right[r]`` over its pairs, ``(len(cells), d)``. Memory ``O(n_pairs + len(cells) * d)``:
    the per-pair vectors are never stored.
    """
    order = np.argsort(pairs[:, 1], kind="stable")
    pair_left = np.ascontiguousarray(pairs[order, 0])
    pair_right = np.ascontiguousarray(pairs[order, 1])
    cells, starts = np.unique(pair_right, return_index=True)
    starts = np.append(starts, pair_right.size).astype(np.int64)
    return cells, _pc_kernels.group_averages(left, right, pair_left, pair_right, starts)


def centre_averages(
    left: np.ndarray,
    right: np.ndarray,
    pairs: np.ndarray,
    left_neighbours: np.ndarray,
    right_neighbours: np.ndarray,
    keep: int,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average correction vector of each distinct right MNN cell, between the pairs' local centres of mass.

    The ``robust`` flavour's correction vectors (after libscran's ``mnncorrect``): a pair ``(l, r)``
    contributes ``c_left(l) - c_right(r)``, where ``c`` is the trimmed mean of the cell's nearest cells on
    its own side (:func:`_pc_kernels.trimmed_centres`), not ``left[l] - right[r]``. A pair of two cells
    at the edges of matching populations then gives the shift between the populations, not the two
    cells' own offsets, and one stray pair cannot pull a cell far.

    Parameters
    ----------
    left, right
        ``(n_left, d)`` and ``(n_right, d)`` float64 data of the two sides.
    pairs
        ``(n_pairs, 2)`` pairs (left row, right row), at least one.
    left_neighbours, right_neighbours
        For each distinct left (right) row of ``pairs``, in ascending row order, its nearest rows on its
        own side (``(m, k)`` int64; the cell itself among them).
    keep
        How many of the ``k`` neighbours the trimmed mean keeps.
    weights
        Optional ``(n_pairs,)`` positive pair weights (the dual-softmax pairing): a weighted mean per cell.

    Returns
    -------
    ``(cells, averages)`` as :func:`pc_space_averages`. Memory ``O(n_pairs + m * d)``.
    """
    left_cells = np.unique(pairs[:, 0])
    right_cells = np.unique(pairs[:, 1])
    left_centres = np.empty((left_cells.size, left.shape[1]))
    right_centres = np.empty((right_cells.size, right.shape[1]))
    _pc_kernels.trimmed_centres(left, np.ascontiguousarray(left_neighbours, dtype=np.int64), keep, left_centres)
    _pc_kernels.trimmed_centres(right, np.ascontiguousarray(right_neighbours, dtype=np.int64), keep, right_centres)
    compact = np.column_stack([np.searchsorted(left_cells, pairs[:, 0]), np.searchsorted(right_cells, pairs[:, 1])])
    if weights is None:
        _, averages = pc_space_averages(left_centres, right_centres, compact)
        return right_cells, averages
    order = np.argsort(compact[:, 1], kind="stable")
    pair_right = np.ascontiguousarray(compact[order, 1])
    starts = np.append(np.searchsorted(pair_right, np.arange(right_cells.size)), pair_right.size).astype(np.int64)
    averages = _pc_kernels.weighted_group_averages(
        left_centres, right_centres, np.ascontiguousarray(compact[order, 0]), pair_right,
        np.ascontiguousarray(weights[order], dtype=np.float64), starts,
    )  # fmt: skip
    return right_cells, averages


def batch_magnitude(averages: np.ndarray, overall: np.ndarray) -> float:
    """``||B|| / sqrt(mean_u ||a_u||^2)`` (batchelor's ``batch.size``), 0 when the denominator is 0."""
    mean_sq = float(np.sum(np.mean(averages**2, axis=0)))
    if mean_sq == 0.0:
        return 0.0
    return float(np.sqrt(np.sum(overall**2) / mean_sq))


def tricube_correct(
    data: np.ndarray, averages: np.ndarray, indices: np.ndarray, distances: np.ndarray, ndist: float
) -> None:
    """In place: add to every row of ``data`` the tricube-weighted average of its nearest MNN cells' vectors.

    Parameters
    ----------
    data
        ``(n, d)`` C-contiguous float64 rows being corrected.
    averages
        ``(n_mnn, d)`` correction vectors of the MNN cells.
    indices, distances
        ``(n, k)`` each row's nearest MNN cells (rows of ``averages``), nearest first, and distances.
    ndist
        The bandwidth is ``ndist`` times the distance to the ``ceil(k/2)``-th neighbour (floored at 1e-8).

    Notes
    -----
    Time ``O(n k d)``, parallel over rows; no memory beyond per-thread ``O(k + d)`` scratch.
    """
    _pc_kernels.tricube_correct(
        data,
        np.ascontiguousarray(averages, dtype=np.float64),
        np.ascontiguousarray(indices, dtype=np.int64),
        np.ascontiguousarray(distances, dtype=np.float64),
        float(ndist),
        BANDWIDTH_FLOOR,
    )
