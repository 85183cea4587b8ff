"""Neighbour searches of the PC-space merge: exact, or on per-batch pynndescent graphs.

A merge step needs three searches between the two sides (each a list of batches, "parts"): the
nearest left cells of every right cell, the nearest right cells of (some) left cells, and the
nearest right MNN cells of every right cell. :class:`ExactSearch` does them by brute force with
:func:`mnnkit.neighbors.knn` and the classic method's pairing (:func:`find_mutual_pairs`).

:class:`GraphSearch` is the path for a million cells. Before the first merge it builds one
pynndescent kNN graph per batch (single-threaded and seeded, so reproducible), on the data as they
are then. Every later search runs a best-first search (:func:`_kernels.graph_knn`) on those graphs
but measures distances on the *current* data: merges only move cells by a projection along a few
batch vectors and by a smooth correction, so a batch's graph stays a good map of its cells. A side
made of several batches is searched batch by batch and the results merged. Only the left cells that
some right cell lists among its nearest are searched in the other direction (no other left cell can
be in an MNN pair), which is what keeps a step's cost near ``O(n_right)`` rather than ``O(n_left)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from mnnkit.fastmnn import _kernels
from mnnkit.mnn._kernels import mutual_pairs
from mnnkit.mnn._pairs import find_mutual_pairs
from mnnkit.neighbors import knn

logger = logging.getLogger("mnnkit")

#: Neighbours per cell in each batch's graph (pynndescent); reverse edges are added up to twice this.
GRAPH_DEGREE = 15
#: Result pool of a search from pivots, as a multiple of the neighbours asked for (and its minimum).
EF_FACTOR = 2
EF_MIN = 48
#: Result pool of a search from known nearby cells: the neighbours asked for plus this many.
SEEDED_MARGIN = 12
#: A query without seeds starts from its nearest pivots: this many of them.
N_ENTRIES = 4
#: At most this many random pivots for a side of several batches (plus each component's first row).
MAX_PIVOTS = 512
#: Sides (and batch graphs) smaller than this are searched by brute force.
SMALL_SIDE = 1000


@dataclass(frozen=True)
class Part:
    """A batch inside one side of a merge: its position and its row range in the side's data."""

    batch: int
    start: int
    stop: int


def side_parts(node: Sequence[int], sizes: Sequence[int]) -> list[Part]:
    """The parts of a node (batches in node order, each a contiguous block of the side's rows)."""
    parts, start = [], 0
    for b in node:
        parts.append(Part(b, start, start + sizes[b]))
        start += sizes[b]
    return parts


class ExactSearch:
    """Exact Euclidean searches (ties to the lower row), as batchelor's default KMKNN."""

    name = "exact"

    def prepare(self, data: np.ndarray, members: Sequence[np.ndarray]) -> None:
        """Nothing to build."""

    def mnn_pairs(
        self, left: np.ndarray, right: np.ndarray, left_parts, right_parts, k_left: int, k_right: int
    ) -> np.ndarray:
        """MNN pairs ``(left row, right row)`` ordered by left row, then distance."""
        return find_mutual_pairs(left, right, k_left, k_right, neighbors="exact")

    def nearest_of(self, data: np.ndarray, parts, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For every row of ``data``, its ``k`` nearest rows among ``data[subset]`` (positions in ``subset``)."""
        found = knn(data, data[subset], k, method="exact")
        return found.indices, found.distances


class GraphSearch:
    """Approximate searches on per-batch pynndescent graphs, with distances on the current data.

    Parameters
    ----------
    seed
        Seed of pynndescent and of the pivot choice.

    Notes
    -----
    A side made of several batches is searched once, on the union of its batches' graphs plus
    "cross" edges between batches: after every merge, each cell in an MNN pair is linked to its
    first partner (partners lie close after the correction), so a search can move from batch to
    batch where they overlap. Queries without a good starting point (the cells of the batch being
    merged, searched in the reference) start from their nearest pivots; the other searches start
    from known nearby cells (a left cell from the right cells that listed it; a right cell from
    itself), which makes them cheap.

    Memory: the graphs, ``O(n * 2 * GRAPH_DEGREE)`` int32, the cross edges (``O(n)`` per merge a
    cell took part in), plus per search the union graph of a side, the query and target blocks and
    ``O(n_query * k)`` results; each search thread holds ``O(side size)`` scratch. Reproducible:
    pynndescent runs single-threaded with a fixed seed, and every query of the numba search is
    answered by one thread in a fixed order.
    """

    name = "pynndescent"

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.members: list[np.ndarray] = []
        self.graphs: list[_Graph] = []
        self.cross: list[np.ndarray] = []

    def prepare(self, data: np.ndarray, members: Sequence[np.ndarray]) -> None:
        """Build the graph of every batch (from the rows of ``data`` listed in ``members``)."""
        self.members = [np.asarray(m) for m in members]
        self.graphs = [_build_graph(data[rows], self.seed + b) for b, rows in enumerate(self.members)]
        self.cross = []

    def after_merge(self, pairs: np.ndarray) -> None:
        """Remember cross edges from a merge's MNN pairs (global rows): each cell to its first partner."""
        if pairs.shape[0] == 0:
            return
        _, first_left = np.unique(pairs[:, 0], return_index=True)
        _, first_right = np.unique(pairs[:, 1], return_index=True)
        chosen = np.union1d(first_left, first_right)
        edges = pairs[chosen]
        self.cross.append(np.concatenate([edges, edges[:, ::-1]]))

    # ------------------------------------------------------------------------------------------ graphs
    def _side_graph(self, parts: Sequence[Part]) -> tuple[np.ndarray, ...]:
        """Union graph of a side (its batches' graphs with row offsets, cross edges, pivots)."""
        size = parts[-1].stop
        indptr = [np.zeros(1, dtype=np.int64)]
        indices, pivots, offset_edges = [], [], 0
        for part in parts:
            graph = self.graphs[part.batch]
            indptr.append(graph.indptr[1:] + offset_edges)
            indices.append(graph.indices + np.int32(part.start))
            pivots.append(graph.pivots + part.start)
            offset_edges += graph.indices.size
        indptr = np.concatenate(indptr) if len(parts) > 1 else self.graphs[parts[0].batch].indptr
        indices = np.concatenate(indices) if len(parts) > 1 else self.graphs[parts[0].batch].indices
        pivots = np.concatenate(pivots)
        if pivots.size > MAX_PIVOTS:
            keep = np.random.default_rng(self.seed).choice(pivots.size, MAX_PIVOTS, replace=False)
            firsts = np.concatenate([self.graphs[q.batch].components + q.start for q in parts])
            pivots = np.union1d(pivots[keep], firsts)
        cross_ptr, cross_idx = self._cross_edges(parts, size)
        return indptr, indices, cross_ptr, cross_idx, np.ascontiguousarray(pivots, dtype=np.int64)

    def _cross_edges(self, parts: Sequence[Part], size: int) -> tuple[np.ndarray, np.ndarray]:
        if len(parts) == 1 or not self.cross:
            return np.zeros(size + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
        position = np.full(sum(m.size for m in self.members), -1, dtype=np.int64)
        for part in parts:
            position[self.members[part.batch]] = np.arange(part.start, part.stop)
        edges = np.concatenate(self.cross)
        src, dst = position[edges[:, 0]], position[edges[:, 1]]
        keep = (src >= 0) & (dst >= 0)
        src, dst = src[keep], dst[keep]
        order = np.argsort(src, kind="stable")
        cross_ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=size))]).astype(np.int64)
        return cross_ptr, dst[order].astype(np.int32)

    # ------------------------------------------------------------------------------------------ searches
    def _search(
        self,
        side: np.ndarray,
        parts: Sequence[Part],
        queries: np.ndarray,
        k: int,
        *,
        seeds: tuple[np.ndarray, np.ndarray] | None = None,
        allowed: np.ndarray | None = None,
        ef: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` nearest rows of ``side`` (restricted to ``allowed``) for every query row."""
        n_allowed = side.shape[0] if allowed is None else int(allowed.sum())
        k = min(k, n_allowed)
        if side.shape[0] < SMALL_SIDE:
            rows = np.arange(side.shape[0]) if allowed is None else np.flatnonzero(allowed)
            found = knn(queries, side[rows], k, method="exact")
            return rows[found.indices], found.distances
        indptr, indices, cross_ptr, cross_idx, pivots = self._side_graph(parts)
        mask = np.ones(side.shape[0], dtype=np.bool_) if allowed is None else allowed
        if seeds is None:
            seeds = (np.zeros(queries.shape[0] + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
        out_idx = np.empty((queries.shape[0], k), dtype=np.int64)
        out_dist = np.empty((queries.shape[0], k))
        _kernels.graph_knn(
            np.ascontiguousarray(side), indptr, indices, cross_ptr, cross_idx, pivots, seeds[0], seeds[1],
            np.ascontiguousarray(queries), k, min(max(ef, k), n_allowed), N_ENTRIES, mask, out_idx, out_dist,
        )  # fmt: skip
        return out_idx, out_dist

    def mnn_pairs(
        self, left: np.ndarray, right: np.ndarray, left_parts, right_parts, k_left: int, k_right: int
    ) -> np.ndarray:
        """MNN pairs ``(left row, right row)`` ordered by left row, then distance."""
        right_nn, _ = self._search(left, left_parts, right, k_left, ef=max(EF_FACTOR * k_left, EF_MIN))
        right_nn = np.ascontiguousarray(right_nn)
        # only left cells that some right cell lists can be in a pair; search from those right cells
        flat = right_nn.ravel()
        order = np.argsort(flat, kind="stable")
        candidates, starts = np.unique(flat[order], return_index=True)
        seed_ptr = np.append(starts, flat.size).astype(np.int64)
        seed_idx = (order // k_left).astype(np.int64)
        found, _ = self._search(
            right, right_parts, left[candidates], k_right, seeds=(seed_ptr, seed_idx), ef=k_right + SEEDED_MARGIN
        )
        # left cells that no right cell lists are never read as matches: their rows can hold anything
        left_nn = np.zeros((left.shape[0], k_right), dtype=np.int64)
        left_nn[candidates] = found
        return mutual_pairs(left_nn, right_nn)

    def nearest_of(self, data: np.ndarray, parts, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For every row of ``data``, its ``k`` nearest rows among ``data[subset]`` (positions in ``subset``)."""
        allowed = np.zeros(data.shape[0], dtype=np.bool_)
        allowed[subset] = True
        n = data.shape[0]
        seeds = (np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64))  # each cell starts from itself
        idx, dist = self._search(data, parts, data, k, seeds=seeds, allowed=allowed, ef=k + SEEDED_MARGIN)
        return np.searchsorted(subset, idx), dist


@dataclass(frozen=True)
class _Graph:
    """Search graph of one batch (CSR, local rows), its pivots, and the first row of each component."""

    indptr: np.ndarray
    indices: np.ndarray
    pivots: np.ndarray
    components: np.ndarray


def _knn_graph(points: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(m, GRAPH_DEGREE)`` neighbours (self excluded) and distances: pynndescent, or exact when small."""
    m = points.shape[0]
    degree = min(GRAPH_DEGREE, m - 1)
    if m < SMALL_SIDE:
        found = knn(points, points, degree, method="exact", exclude_self=True)
        return found.indices, found.distances
    from pynndescent import NNDescent

    threads = numba.get_num_threads()
    try:
        index = NNDescent(
            points,
            metric="euclidean",
            n_neighbors=degree + 1,
            random_state=seed,
            n_jobs=1,
            low_memory=True,
            verbose=False,
        )
        neighbours, distances = index.neighbor_graph
    finally:
        numba.set_num_threads(threads)
    return neighbours.astype(np.int64), distances.astype(np.float64)


def _build_graph(points: np.ndarray, seed: int) -> _Graph:
    """Search graph of one batch: kNN graph plus reverse edges (up to twice the degree, nearest first).

    Pivots: a seeded sample of about ``2 sqrt(m)`` rows plus the first row of every connected component.
    """
    m = points.shape[0]
    if m < 2:
        zero = np.zeros(1, dtype=np.int64)
        return _Graph(np.zeros(m + 1, dtype=np.int64), np.zeros(0, dtype=np.int32), zero[:m], zero[:m])
    neighbours, distances = _knn_graph(points, seed)
    source = np.repeat(np.arange(m, dtype=np.int64), neighbours.shape[1])
    target = neighbours.ravel()
    weight = distances.ravel()
    keep = (target >= 0) & (target != source)
    source, target, weight = source[keep], target[keep], weight[keep]
    # forward and reverse edges; one copy of each; per node the nearest 2 * GRAPH_DEGREE
    src = np.concatenate([source, target])
    dst = np.concatenate([target, source])
    dist = np.concatenate([weight, weight])
    order = np.lexsort((dst, dist, src))
    src, dst = src[order], dst[order]
    key = src * m + dst
    _, first = np.unique(key, return_index=True)
    first = np.sort(first)
    src, dst = src[first], dst[first]
    counts = np.bincount(src, minlength=m)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keep = (np.arange(src.size) - np.repeat(starts, counts)) < 2 * GRAPH_DEGREE
    src, dst = src[keep], dst[keep]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=m))]).astype(np.int64)
    indices = dst.astype(np.int32)
    graph = sp.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    components = np.unique(labels, return_index=True)[1].astype(np.int64)
    rng = np.random.default_rng(seed)
    n_pivots = min(m, max(64, int(2 * np.sqrt(m))))
    pivots = np.union1d(rng.choice(m, size=n_pivots, replace=False), components).astype(np.int64)
    return _Graph(indptr, indices, pivots, components)
