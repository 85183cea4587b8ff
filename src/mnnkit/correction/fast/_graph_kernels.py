"""Numba kernels that build and reshape the per-batch neighbour graphs.

Counting sorts, symmetrisation, renumbering and the cross edges within a node (plain arrays, checked
by the callers).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def group_by_key(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable counting sort of ``keys`` (integers in ``[0, n_keys)``): ``(order, ptr)``.

    ``order`` lists the positions of ``keys`` grouped by key (ascending), each group in position order;
    group ``g`` is ``order[ptr[g]:ptr[g + 1]]``. ``O(len(keys) + n_keys)`` time, no comparison sort.
    """
    ptr = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(keys.shape[0]):
        ptr[keys[i] + 1] += 1
    for g in range(n_keys):
        ptr[g + 1] += ptr[g]
    fill = ptr[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for i in range(keys.shape[0]):
        g = keys[i]
        order[fill[g]] = i
        fill[g] += 1
    return order, ptr


@njit(cache=True)
def edges_within(edges: np.ndarray, position_of: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR over positions of the ``edges`` (``(e, 2)`` global rows) whose two ends have a position.

    ``position_of[row]`` is a row's position, or -1 outside the side. Each position's edges keep their
    order in ``edges``. Returns ``(ptr, targets)``, targets as int32.
    """
    ptr = np.zeros(size + 1, dtype=np.int64)
    for e in range(edges.shape[0]):
        src = position_of[edges[e, 0]]
        if src >= 0 and position_of[edges[e, 1]] >= 0:
            ptr[src + 1] += 1
    for p in range(size):
        ptr[p + 1] += ptr[p]
    fill = ptr[:-1].copy()
    targets = np.empty(ptr[size], dtype=np.int32)
    for e in range(edges.shape[0]):
        src = position_of[edges[e, 0]]
        dst = position_of[edges[e, 1]]
        if src >= 0 and dst >= 0:
            targets[fill[src]] = dst
            fill[src] += 1
    return ptr, targets


@njit(cache=True, inline="always")
def _lists(neighbours: np.ndarray, row: int, target: int) -> bool:
    """Whether ``row`` lists ``target`` among its neighbours."""
    for b in range(neighbours.shape[1]):
        if neighbours[row, b] == target:
            return True
    return False


@njit(cache=True)
def symmetric_graph(neighbours: np.ndarray, max_reverse: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR graph of each row's listed neighbours followed by up to ``max_reverse`` rows that list it.

    ``neighbours`` is ``(m, K)`` (entries < 0 and a row's own index are ignored). A reverse edge
    ``j -> i`` (``i`` lists ``j``) is added unless ``j`` lists ``i`` already; they are taken in order of
    ``i``. Deterministic; ``O(m K^2)`` time.
    """
    m, n_nb = neighbours.shape
    reverse = np.zeros(m, dtype=np.int64)
    for i in range(m):
        for a in range(n_nb):
            j = neighbours[i, a]
            if j < 0 or j == i:
                continue
            if not _lists(neighbours, j, i) and reverse[j] < max_reverse:
                reverse[j] += 1
    indptr = np.zeros(m + 1, dtype=np.int64)
    for i in range(m):
        forward = 0
        for a in range(n_nb):
            j = neighbours[i, a]
            if j >= 0 and j != i:
                forward += 1
        indptr[i + 1] = indptr[i] + forward + reverse[i]
    indices = np.empty(indptr[m], dtype=np.int64)
    fill = indptr[:-1].copy()
    for i in range(m):
        for a in range(n_nb):
            j = neighbours[i, a]
            if j >= 0 and j != i:
                indices[fill[i]] = j
                fill[i] += 1
    for i in range(m):
        for a in range(n_nb):
            j = neighbours[i, a]
            if j < 0 or j == i or fill[j] >= indptr[j + 1]:
                continue
            if not _lists(neighbours, j, i):
                indices[fill[j]] = i
                fill[j] += 1
    return indptr, indices


@njit(cache=True)
def renumber_graph(
    indptr: np.ndarray, indices: np.ndarray, order: np.ndarray, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR graph with row ``order[p]`` moved to position ``p`` (``rank`` the inverse), as int32 indices."""
    m = order.shape[0]
    new_ptr = np.zeros(m + 1, dtype=np.int64)
    for p in range(m):
        v = order[p]
        new_ptr[p + 1] = new_ptr[p] + indptr[v + 1] - indptr[v]
    new_idx = np.empty(new_ptr[m], dtype=np.int32)
    for p in range(m):
        v = order[p]
        pos = new_ptr[p]
        for e in range(indptr[v], indptr[v + 1]):
            new_idx[pos] = rank[indices[e]]
            pos += 1
    return new_ptr, new_idx
