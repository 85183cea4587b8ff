"""Removing variation along batch vectors (batchelor's ``.center_along_batch_vector``).

Orthogonalising a set of cells against a vector ``v`` moves every cell to the same position along
``v / ||v||`` (the mean position of the set), which removes all of the set's variation along ``v``
while keeping the set's centre. fastMNN does it to both sides of a merge along the step's average
batch vector, and to each side along the batch vectors of the other side's earlier merges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mnnkit.correction.fast import _pc_kernels


def center_along(data: np.ndarray, vector: np.ndarray, mean_rows: np.ndarray | None = None) -> None:
    """In place: remove the variation of ``data``'s rows along ``vector``.

    Each row ``x`` becomes ``x + (mean_t - t) * u`` with ``u = vector / ||vector||``, ``t = <x, u>``
    and ``mean_t`` the mean of ``t`` over all rows, or over the rows ``mean_rows`` (batchelor's
    ``restrict``: the centre is taken over the restricted cells, every row is moved). A zero vector
    leaves the data unchanged.

    Parameters
    ----------
    data
        ``(n, d)`` C-contiguous float64 array (modified).
    vector
        ``(d,)`` direction.

    Notes
    -----
    Memory: ``O(n)`` for the positions; time ``O(n d)``, parallel over rows (deterministic).
    """
    norm = float(np.sqrt(np.sum(vector * vector)))
    if norm == 0.0 or data.shape[0] == 0:
        return
    unit = np.ascontiguousarray(vector / norm, dtype=np.float64)
    positions = np.empty(data.shape[0])
    _pc_kernels.project_rows(data, unit, positions)
    centre = positions.mean() if mean_rows is None else positions[mean_rows].mean()
    _pc_kernels.shift_along(data, unit, positions, float(centre))


def orthogonalize(data: np.ndarray, vectors: Sequence[np.ndarray], mean_rows: np.ndarray | None = None) -> None:
    """In place: :func:`center_along` each vector of ``vectors`` in turn (the order matters)."""
    for vector in vectors:
        center_along(data, vector, mean_rows)


def orthogonalize_groups(
    data: np.ndarray,
    vectors: Sequence[np.ndarray],
    bounds: Sequence[tuple[int, int]],
    mean_rows: Sequence[np.ndarray | None] | None = None,
) -> None:
    """In place: :func:`orthogonalize` each row range ``start:stop`` of ``data`` on its own, in one pass.

    The ranges must tile the rows of ``data`` in order (the first starts at 0, each starts where the
    previous stops, the last stops at ``len(data)``).

    The same as calling ``orthogonalize(data[start:stop], vectors, mean_rows[g])`` for every range ``g``
    (bit for bit: every row is projected and shifted by the same kernels, and each range's centre is
    the mean of its own positions), with one kernel call per vector for all ranges together instead of
    one per range: the auto merge orders many small nodes against the same vectors. ``mean_rows[g]``:
    positions inside range ``g`` (``restrict``), or None for all of its rows.

    Memory: ``O(n)`` for the positions.
    """
    if not bounds or data.shape[0] == 0:
        return
    lengths = np.array([stop - start for start, stop in bounds], dtype=np.int64)
    positions = np.empty(data.shape[0])
    centres = np.empty(len(bounds))
    for vector in vectors:
        norm = float(np.sqrt(np.sum(vector * vector)))
        if norm == 0.0:
            continue
        unit = np.ascontiguousarray(vector / norm, dtype=np.float64)
        _pc_kernels.project_rows(data, unit, positions)
        for g, (start, stop) in enumerate(bounds):
            own = positions[start:stop]
            rows = None if mean_rows is None else mean_rows[g]
            centres[g] = own.mean() if rows is None else own[rows].mean()
        # fl(p - c) is exactly -fl(c - p), so shifting to centre 0 by these offsets moves every row by
        # the same amount as shift_along(..., centre) of its own range would
        offsets = positions - np.repeat(centres, lengths)
        _pc_kernels.shift_along(data, unit, offsets, 0.0)


def perbatch_variance(data: np.ndarray, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
    """Total variance (sum over columns of the n-1 sample variance) of each row range ``start:stop``.

    Batches of a single cell have no sample variance: their value is NaN, as in R. ``data`` must be
    C-contiguous float64. Memory: ``O(d)``; no copy of the rows.
    """
    out = np.empty(len(bounds))
    per_column = np.empty(data.shape[1])
    for i, (start, stop) in enumerate(bounds):
        if stop - start < 2:
            out[i] = np.nan
            continue
        _pc_kernels.column_sq_deviations(data, int(start), int(stop), per_column)
        out[i] = float(per_column.sum() / (stop - start - 1))
    return out
