"""Local centres of mass of MNN cells: the ``robust`` flavour's endpoints of a correction vector (both methods).

batchelor's correction vector of an MNN pair joins the two cells. The robust flavour joins their local
centres of mass instead, after libscran's ``mnncorrect``: each paired cell's ``ROBUST_CENTRE_K``
nearest cells on its own side (itself included), less the ones farthest from their mean
(``ROBUST_CENTRE_KEEP`` are kept), averaged. A pair of cells at the edges of two matching populations
then gives the shift between the populations rather than the two cells' own offsets, and a stray
neighbour cannot pull a centre far.

The members of each centre are chosen once per merge step, on the space the neighbours were searched
in; the centres are then means of those members in any space (the classic method's output genes, or
the fast method's PCs after a centring step).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mnnkit._config import NUMBA_FASTMATH
from mnnkit._threads import run_in_ranges


def trimmed_members(data: np.ndarray, neighbours: np.ndarray, keep: int) -> np.ndarray:
    """For each row of ``neighbours``, the ``keep`` of its listed rows nearest to their plain mean.

    Parameters
    ----------
    data
        ``(n, d)`` C-contiguous float64 data the neighbours index.
    neighbours
        ``(m, k)`` int64 rows of ``data`` per centre (each a cell's nearest cells).
    keep
        Members kept per centre, ``1 <= keep``; all ``k`` when ``keep >= k``.

    Returns
    -------
    ``(m, min(keep, k))`` int64 rows of ``data``, in list order (ties in distance go to the earlier
    listed row). Memory ``O(m * k)``; time ``O(m * k * d)``.
    """
    neighbours = np.ascontiguousarray(neighbours, dtype=np.int64)
    keep = min(int(keep), neighbours.shape[1])
    if keep == neighbours.shape[1]:
        return neighbours.copy()
    out = np.empty((neighbours.shape[0], keep), dtype=np.int64)
    run_in_ranges(_trimmed_members, neighbours.shape[0], 1, data, neighbours, out)
    return out


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _trimmed_members(data, neighbours, out, first, last):  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`trimmed_members`."""
    d = data.shape[1]
    k = neighbours.shape[1]
    keep = out.shape[1]
    mean = np.empty(d)
    dist = np.empty(k)
    chosen = np.empty(k, dtype=np.bool_)
    for i in range(first, last):
        mean[:] = 0.0
        for a in range(k):
            row = neighbours[i, a]
            for j in range(d):
                mean[j] += data[row, j]
        for j in range(d):
            mean[j] /= k
        for a in range(k):
            row = neighbours[i, a]
            acc = 0.0
            for j in range(d):
                diff = data[row, j] - mean[j]
                acc += diff * diff
            dist[a] = acc
            chosen[a] = False
        for _ in range(keep):  # k is small (tens): repeated minimum search, ties to the earlier row
            best = -1
            for a in range(k):
                if not chosen[a] and (best < 0 or dist[a] < dist[best]):
                    best = a
            chosen[best] = True
        slot = 0
        for a in range(k):
            if chosen[a]:
                out[i, slot] = neighbours[i, a]
                slot += 1


def member_means(data: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``(m, d)``: the mean of ``data[members[i]]`` for each row ``i`` (summed in member order).

    ``data`` is any ``(n, d)`` C-contiguous float64 array (PCs or genes); memory ``O(m * d)``.
    """
    out = np.zeros((members.shape[0], data.shape[1]))
    run_in_ranges(_member_means, members.shape[0], 1, data, np.ascontiguousarray(members, dtype=np.int64), out)
    return out


@njit(cache=True, nogil=True, fastmath=NUMBA_FASTMATH)
def _member_means(data, members, out, first, last):  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`member_means`, into ``out`` (zeros)."""
    d = data.shape[1]
    k = members.shape[1]
    for i in range(first, last):
        for a in range(k):
            row = members[i, a]
            for j in range(d):
                out[i, j] += data[row, j]
        for j in range(d):
            out[i, j] /= k


def paired_cells(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct left and right rows of ``pairs`` (ascending) and the pairs as positions in them."""
    left_cells, left_slot = np.unique(pairs[:, 0], return_inverse=True)
    right_cells, right_slot = np.unique(pairs[:, 1], return_inverse=True)
    return left_cells, right_cells, np.column_stack([left_slot, right_slot]).astype(np.int64)
