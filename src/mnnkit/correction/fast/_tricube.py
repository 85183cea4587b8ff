"""Correction vectors of the MNN cells and their tricube-weighted spread to every cell being merged."""

from __future__ import annotations

import numpy as np

from mnnkit.correction._centres import member_means, paired_cells
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
    left_members: np.ndarray,
    right_members: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Average correction vector of each distinct right MNN cell, between the pairs' local centres of mass.

    The ``robust`` flavour's correction vectors (:mod:`mnnkit.correction._centres`): a pair ``(l, r)``
    contributes ``centre(l) - centre(r)``, each centre the mean of the cell's members on its own side,
    rather than ``left[l] - right[r]``.

    Parameters
    ----------
    left, right
        ``(n_left, d)`` and ``(n_right, d)`` float64 data of the two sides.
    pairs
        ``(n_pairs, 2)`` pairs (left row, right row), at least one.
    left_members, right_members
        For each distinct left (right) row of ``pairs``, in ascending row order, the rows of its own
        side whose mean is its centre (:func:`mnnkit.correction._centres.trimmed_members`).
    weights
        Optional ``(n_pairs,)`` positive pair weights (the dual-softmax pairing): a weighted mean per cell.

    Returns
    -------
    ``(cells, averages)`` as :func:`pc_space_averages`. Memory ``O(n_pairs + (m_left + m_right) * d)``.
    """
    _, right_cells, compact = paired_cells(pairs)
    left_centres, right_centres = member_means(left, left_members), member_means(right, right_members)
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
