"""Search graphs for the approximate path: one per batch, and their union over the batches of a side.

Each batch gets a kNN graph (pynndescent, seeded and on a fixed number of threads; brute force for
small batches) made undirected (each cell's neighbours, then up to as many cells that list it). Its
cells are renumbered in reverse Cuthill-McKee order, so that cells close in the graph are close in
memory: a search then touches far fewer cache lines. A side made of several batches is searched on the union
of their graphs plus "cross" edges from earlier merges (MNN partners, and each merged cell's nearest
cells on the other side). Everything here works in the renumbered positions; :class:`SideView` maps
them to the side's rows and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, reverse_cuthill_mckee

from mnnkit._config import GRAPH_DEGREE, GRAPH_THREADS, MAX_PIVOTS, SMALL_GRAPH
from mnnkit._threads import thread_limits
from mnnkit.correction.fast import _graph_kernels
from mnnkit.neighbors import knn


@dataclass(frozen=True)
class BatchGraph:
    """The search graph of one batch, in renumbered positions.

    ``order[p]`` is the batch-local row at position ``p`` (``rank`` the inverse); ``indptr``/``indices``
    the CSR graph over positions; ``pivots`` a seeded sample of positions plus ``components``, the first
    position of each connected component.
    """

    order: np.ndarray
    rank: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    pivots: np.ndarray
    components: np.ndarray


@dataclass(frozen=True)
class SideView:
    """A side (batches in node order, each a block of rows ``start:stop``) as one renumbered graph.

    ``perm[p]`` is the side row at position ``p`` and ``inv`` its inverse; the graph (``indptr``,
    ``indices``), the cross edges (``cross_ptr``, ``cross_idx``) and ``pivots`` are over positions.
    """

    perm: np.ndarray
    inv: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    cross_ptr: np.ndarray
    cross_idx: np.ndarray
    pivots: np.ndarray


def _knn_graph(points: np.ndarray, seed: int) -> np.ndarray:
    """``(m, GRAPH_DEGREE)`` neighbours, nearest first: pynndescent, or exact when small (self excluded)."""
    m = points.shape[0]
    degree = min(GRAPH_DEGREE, m - 1)
    if m < SMALL_GRAPH:
        return knn(points, points, degree, method="exact", exclude_self=True).indices
    from pynndescent import NNDescent

    # pynndescent sets numba's thread count to its n_jobs; thread_limits restores the caller's afterwards
    with thread_limits():
        index = NNDescent(
            points,
            metric="euclidean",
            n_neighbors=degree + 1,
            random_state=seed,
            n_jobs=min(GRAPH_THREADS, numba.config.NUMBA_NUM_THREADS),
            low_memory=True,
            verbose=False,
        )
        return index.neighbor_graph[0]


def build_batch_graph(points: np.ndarray, seed: int) -> BatchGraph:
    """Search graph of one batch (``points``: its cells, ``(m, d)``).

    Memory ``O(m * GRAPH_DEGREE)``; time: one pynndescent graph, then linear passes over its edges.
    """
    m = points.shape[0]
    if m < 2:
        empty = np.zeros(0, dtype=np.int64)
        order = np.arange(m, dtype=np.int64)
        return BatchGraph(order, order, np.zeros(m + 1, dtype=np.int64), empty.astype(np.int32), order, order)
    neighbours = _knn_graph(points, seed)
    indptr, indices = _graph_kernels.symmetric_graph(np.ascontiguousarray(neighbours, dtype=np.int64), GRAPH_DEGREE)
    graph = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(m, m))
    # renumber: reverse Cuthill-McKee order puts graph neighbours next to each other in memory
    new_order = reverse_cuthill_mckee(graph, symmetric_mode=True).astype(np.int64)  # near enough: a heuristic
    rank = np.empty(m, dtype=np.int64)
    rank[new_order] = np.arange(m)
    indptr, indices = _graph_kernels.renumber_graph(indptr, indices, new_order, rank)
    renumbered = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(m, m))
    _, labels = connected_components(renumbered, directed=False)
    components = np.unique(labels, return_index=True)[1].astype(np.int64)
    rng = np.random.default_rng(seed)
    n_pivots = min(m, max(64, int(2 * np.sqrt(m))))
    pivots = np.union1d(rng.choice(m, size=n_pivots, replace=False), components).astype(np.int64)
    return BatchGraph(new_order, rank, indptr, indices, pivots, components)


def side_view(
    graphs: Sequence[BatchGraph], parts, members: Sequence[np.ndarray], cross: Sequence[np.ndarray], seed: int
) -> SideView:
    """The union graph of a side's batches, with the cross edges among its cells (global rows in ``cross``).

    Memory: the side's edges (``O(side size * 2 * GRAPH_DEGREE)`` int32) plus its cross edges.
    """
    size = parts[-1].stop
    perm = np.concatenate([g.order + q.start for g, q in zip((graphs[q.batch] for q in parts), parts, strict=True)])
    inv = np.empty(size, dtype=np.int64)
    inv[perm] = np.arange(size)
    if len(parts) == 1:
        graph = graphs[parts[0].batch]
        indptr, indices, pivots = graph.indptr, graph.indices, graph.pivots
    else:
        ptrs, idxs, pivs, firsts, edges = [np.zeros(1, dtype=np.int64)], [], [], [], 0
        for q in parts:
            graph = graphs[q.batch]
            ptrs.append(graph.indptr[1:] + edges)
            idxs.append(graph.indices + np.int32(q.start))
            pivs.append(graph.pivots + q.start)
            firsts.append(graph.components + q.start)
            edges += graph.indices.size
        indptr, indices, pivots = np.concatenate(ptrs), np.concatenate(idxs), np.concatenate(pivs)
        if pivots.size > MAX_PIVOTS:
            keep = np.random.default_rng(seed).choice(pivots.size, MAX_PIVOTS, replace=False)
            pivots = np.union1d(pivots[keep], np.concatenate(firsts))
    cross_ptr, cross_idx = _cross_edges(parts, members, cross, inv, size)
    return SideView(perm, inv, indptr, indices, cross_ptr, cross_idx, np.ascontiguousarray(pivots, dtype=np.int64))


def _cross_edges(parts, members, cross, inv, size) -> tuple[np.ndarray, np.ndarray]:
    """CSR (over positions) of the cross edges whose two ends are both in the side (in stored order)."""
    if len(parts) == 1 or not cross:
        return np.zeros(size + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    position_of = np.full(sum(m.size for m in members), -1, dtype=np.int64)
    for q in parts:
        position_of[members[q.batch]] = inv[q.start : q.stop]
    return _graph_kernels.edges_within(np.concatenate(cross), position_of, size)


def cross_edges_of(pairs: np.ndarray) -> np.ndarray:
    """Cross edges (both directions, global rows) from a merge's MNN pairs: each cell to its first partner."""
    if pairs.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int64)
    _, first_left = np.unique(pairs[:, 0], return_index=True)
    _, first_right = np.unique(pairs[:, 1], return_index=True)
    edges = pairs[np.union1d(first_left, first_right)]
    return np.concatenate([edges, edges[:, ::-1]])


def nearest_cross_edges(
    left_rows: np.ndarray, right_rows: np.ndarray, right_nn: np.ndarray, n_forward: int, max_reverse: int
) -> np.ndarray:
    """Cross edges (global rows) from each right cell to its ``n_forward`` nearest left cells, and back.

    ``right_nn`` lists each right cell's nearest left cells (side rows, nearest first). A left cell
    keeps the reverse edges of at most ``max_reverse`` right cells: those that rank it nearest (then
    the lower right row), so that no cell becomes a hub that every search through it must expand.
    """
    n_forward = min(n_forward, right_nn.shape[1])
    if n_forward <= 0 or right_nn.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int64)
    src = np.repeat(np.asarray(right_rows, dtype=np.int64), n_forward)
    dst = np.asarray(left_rows, dtype=np.int64)[right_nn[:, :n_forward].ravel()]
    # by left cell, then rank, then right row: the edges taken rank by rank, grouped stably by left cell
    by_rank = np.ascontiguousarray(right_nn[:, :n_forward].T).ravel()
    order, ptr = _graph_kernels.group_by_key(by_rank, int(by_rank.max()) + 1)
    within = np.arange(order.size) - np.repeat(ptr[:-1], np.diff(ptr))
    kept = order[within < max_reverse]  # positions in the rank-major listing
    back = (kept % right_nn.shape[0]) * n_forward + kept // right_nn.shape[0]
    return np.concatenate([np.column_stack([src, dst]), np.column_stack([dst[back], src[back]])])
