"""Dual-softmax soft pairing between two sets of cells: a weighted alternative to mutual nearest neighbours.

The mutual pairing (:mod:`mnnkit.correction._pairs`) keeps a pair ``(l, r)`` only when each cell is
among the other's ``k`` nearest, with weight 1. The dual softmax (as in CAMoE, Cheng et al. 2021, and
the dual-softmax matchers of image correspondence) keeps every pair that either search found and
weights it by how much both cells prefer each other (the product form of the dual softmax, restricted
to the kNN candidates; :func:`mnnkit.nn.dual_softmax` is CAMoE's prior-reweighted form for a dense
similarity matrix)::

    s(l, r)     = -d(l, r)^2 / tau
    P_row(l, r) = exp(s(l, r)) / sum over the candidates r' of l   of exp(s(l, r'))
    P_col(l, r) = exp(s(l, r)) / sum over the candidates l' of r   of exp(s(l', r))
    w(l, r)     = P_row(l, r) * P_col(l, r)

The candidates are the union of the two one-sided kNN lists, so the cost is linear in their number
(``n_left * k_right + n_right * k_left`` at most); no ``n_left x n_right`` matrix is formed. A right cell
that many left cells list (a hub) splits its column probability among them, so each of their weights
shrinks; a pair of cells that are each other's clear nearest neighbour gets a weight near 1.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from mnnkit._validation import check_real
from mnnkit.correction._soft_pair_kernels import candidate_pairs, dual_softmax_weights

__all__ = ["default_temperature", "dual_softmax_pairs"]

#: Floor of :func:`default_temperature`: the smallest positive normal float64. The weights are computed
#: from squared-distance differences, so any positive temperature is usable; this one makes the pairing
#: a hard one (see :func:`dual_softmax_pairs`) when most cells have an identical cell on the other side.
MIN_TEMPERATURE = float(np.finfo(np.float64).tiny)


def _as_indices(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        msg = f"{name} must be an integer array of neighbour indices, got dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.ndim != 2:
        msg = f"{name} must be 2-D (cells x neighbours), got shape {arr.shape}"
        raise ValueError(msg)
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_neighbours(arr: np.ndarray, name: str, n_other: int, other: str) -> None:
    if arr.size == 0:
        return
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= n_other:
        bad = low if low < 0 else high
        msg = f"{name} must hold indices in [0, {n_other}) ({other} has {n_other} rows), got {bad}"
        raise ValueError(msg)
    # a repeated neighbour would make a pair count twice in its row's softmax
    ordered = np.sort(arr, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if repeated.any():
        row = int(np.nonzero(repeated)[0][0])
        msg = f"{name} lists the same neighbour twice in a row (first in row {row})"
        raise ValueError(msg)


def _check_number(value: object, name: str, what: str) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        msg = f"{name} must be {what}, got {value!r}"
        raise TypeError(msg)


def _as_distances(x: Any, name: str, shape: tuple[int, ...] | None = None, like: str = "") -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        msg = f"{name} must be a real array of distances, got dtype {arr.dtype}"
        raise TypeError(msg)
    if shape is not None and arr.shape != shape:
        msg = f"{name} must have the shape of {like}, {shape}, got {arr.shape}"
        raise ValueError(msg)
    if arr.ndim != 2:
        msg = f"{name} must be 2-D (cells x neighbours), got shape {arr.shape}"
        raise ValueError(msg)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        msg = f"{name} must hold finite non-negative distances (first bad value in row {row})"
        raise ValueError(msg)
    return arr


def default_temperature(left_dist: np.ndarray, right_dist: np.ndarray) -> float:
    """A data-scaled temperature for :func:`dual_softmax_pairs`.

    The median, over every left and every right cell, of the squared distance to the nearest cell its
    own search found (``min(left_dist[l]) ** 2`` and ``min(right_dist[r]) ** 2``), floored at
    :data:`MIN_TEMPERATURE`. The similarities ``-d^2 / tau`` are then in units of a typical nearest-pair
    squared distance: for a typical cell, the nearest candidate has ``s = -1``, and a candidate twice as
    far has ``s = -4``, i.e. ``e^-3 ~ 0.05`` times the probability. Rescaling the data (all distances by
    a factor ``c``) rescales this temperature by ``c^2`` and leaves the weights unchanged. When more than
    half of the cells have an identical cell on the other side the median is 0 and the floor makes the
    pairing hard: a cell's weight goes to its nearest candidate(s) only.

    Parameters
    ----------
    left_dist
        ``(n_left, k_right)`` distances from each left cell to its nearest right cells.
    right_dist
        ``(n_right, k_left)`` distances from each right cell to its nearest left cells.

    Returns
    -------
    float
        A positive temperature.

    Raises
    ------
    ValueError
        If the distances are not finite and non-negative, or if no cell has a neighbour.
    """
    left = _as_distances(left_dist, "left_dist")
    right = _as_distances(right_dist, "right_dist")
    nearest = [side.min(axis=1) for side in (left, right) if side.shape[1] > 0]
    nearest_all = np.concatenate(nearest) if nearest else np.empty(0)
    if nearest_all.size == 0:
        msg = "left_dist and right_dist hold no distance: no cell has a neighbour to scale the temperature by"
        raise ValueError(msg)
    return max(float(np.median(nearest_all**2)), MIN_TEMPERATURE)


def dual_softmax_pairs(
    left_nn: np.ndarray,
    left_dist: np.ndarray,
    right_nn: np.ndarray,
    right_dist: np.ndarray,
    *,
    temperature: float,
    min_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted pairs between two sets of cells by a dual softmax over their kNN candidates.

    The candidates are the pairs ``(l, r)`` that either search found: ``r`` in ``left_nn[l]`` or ``l`` in
    ``right_nn[r]`` (a pair found both ways counts once). With ``s = -d^2 / temperature``, each pair's
    weight is ``P_row * P_col``: the softmax of ``s`` over the left cell's candidates times the softmax
    over the right cell's candidates (see the module docstring). Each is in ``[0, 1]``, so is the weight;
    the weights of a left cell sum to at most 1, as do those of a right cell.

    Parameters
    ----------
    left_nn
        ``(n_left, k_right)`` integer: for each left cell, the indices of its nearest right cells
        (no index twice in a row; any order, e.g. :attr:`mnnkit.neighbors.NeighborResult.indices`).
    left_dist
        ``(n_left, k_right)`` the matching Euclidean distances, finite and >= 0.
    right_nn
        ``(n_right, k_left)`` integer: for each right cell, the indices of its nearest left cells.
    right_dist
        ``(n_right, k_left)`` the matching distances. A pair found both ways should have the same
        distance both ways; where rounding makes them differ, the smaller is used (so swapping the
        two sides swaps the pairs and keeps their weights).
    temperature
        ``tau > 0``, in squared-distance units: small values make the weights nearly 0 or 1, large ones
        spread them evenly over the candidates. :func:`default_temperature` gives a data-scaled value.
    min_weight
        In ``[0, 1]``: drop the pairs whose weight is below it. The default 0 keeps every candidate.

    Returns
    -------
    pairs : numpy.ndarray
        ``(n_pairs, 2)`` int64 (left row, right row), ordered by left row, then by increasing distance,
        then by right row.
    weights : numpy.ndarray
        ``(n_pairs,)`` float64 in ``[0, 1]``.

    Raises
    ------
    TypeError
        If an index array is not of an integer dtype or a distance array not real, or a parameter is not
        a number.
    ValueError
        If the shapes disagree, an index is out of range or repeated in a row, a distance is negative or
        not finite, ``temperature <= 0`` or ``min_weight`` is outside ``[0, 1]``.

    Notes
    -----
    *Hard limit.* If ``r`` is not the unique nearest candidate of ``l`` (another candidate of ``l`` is
    at least as close), then ``P_row(l, r) <= 1/2``, so ``w(l, r) <= 1/2``; likewise for columns. So at
    any temperature, a pair with weight > 1/2 is a pair of cells that are each other's unique nearest
    candidate. Conversely, for such a pair ``w -> 1`` as ``temperature -> 0`` (the other terms of its row
    and column decay like ``exp(-gap / temperature)``). With exact searches, a cell's nearest candidate
    is its nearest cell on the other side, so for a small enough temperature the pairs with weight > 1/2
    are exactly the mutual nearest-neighbour pairs with ``k = 1`` (when there are no distance ties).

    The exponents are formed as ``-(d^2 - d_min^2) / temperature`` with the smallest squared distance of
    the row (column): the max-shifted log-sum-exp, and free of overflow for any positive temperature.

    Memory and time are ``O(n_left * k_right + n_right * k_left + n_left + n_right)``; each left cell's
    candidates are sorted, ``O(m log m)`` for ``m`` candidates.
    """
    left_idx = _as_indices(left_nn, "left_nn")
    right_idx = _as_indices(right_nn, "right_nn")
    _check_neighbours(left_idx, "left_nn", right_idx.shape[0], "right_nn")
    _check_neighbours(right_idx, "right_nn", left_idx.shape[0], "left_nn")
    left_d = _as_distances(left_dist, "left_dist", left_idx.shape, "left_nn")
    right_d = _as_distances(right_dist, "right_dist", right_idx.shape, "right_nn")
    _check_number(temperature, "temperature", "a positive finite number")
    temperature = check_real(temperature, "temperature", positive=True)
    _check_number(min_weight, "min_weight", "a number in [0, 1]")
    min_weight = check_real(min_weight, "min_weight", minimum=0.0, maximum=1.0)

    row_ptr, cols, dists = candidate_pairs(left_idx, left_d, right_idx, right_d)
    weights = dual_softmax_weights(row_ptr, cols, dists, right_idx.shape[0], temperature)
    rows = np.repeat(np.arange(left_idx.shape[0], dtype=np.int64), np.diff(row_ptr))
    pairs = np.stack([rows, cols], axis=1)
    if min_weight > 0.0:
        keep = weights >= min_weight
        pairs, weights = pairs[keep], weights[keep]
    return np.ascontiguousarray(pairs), weights
