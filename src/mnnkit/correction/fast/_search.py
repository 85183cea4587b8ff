"""Neighbour searches of the PC-space merge: exact, or on per-batch pynndescent graphs.

A merge step needs three searches between the two sides (each a list of batches, "parts"): the
nearest left cells of every right cell, the nearest right cells of (some) left cells, and the
nearest right MNN cells of every right cell. :class:`ExactSearch` does them by brute force with
:func:`mnnkit.neighbors.knn` and the classic method's pairing (:func:`find_mutual_pairs`).

:class:`GraphSearch` is the path for a million cells. Before the first merge it builds one
pynndescent kNN graph per batch (seeded, on a fixed number of threads: reproducible), on the data
as they are then. Every later search runs a best-first search (:func:`_search_kernels.graph_knn`) on those
graphs but measures distances on the *current* data: merges only move cells by a projection along a
few batch vectors and by a smooth correction, so a batch's graph stays a good map of its cells. A side
made of several batches is searched once, on the union of its batches' graphs plus cross edges
from earlier merges: between MNN partners, and from each merged cell to its nearest cells on the
other side (see :mod:`mnnkit.correction.fast._graph`). Without the latter, a query whose nearest cells are
spread over several merged batches would have to find each batch's region through few edges.

Three things keep a step's cost near ``O(n_right)`` rather than ``O(n_left)``. Only a few percent of
the right cells (landmarks: cells two hops apart in the right side's graph) are searched from scratch
in the left side, and hand on long lists of their nearest left cells; every other right cell starts
from the lists of the landmarks near it, which already hold nearly all its nearest left cells. Only
the left cells that some right cell lists can be in an MNN pair, so only they are searched in the
right side, each starting from the right cells that listed it. And the nearest MNN cells of each
right cell are found the same way as its nearest left cells, landmarks first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mnnkit._config import (
    AUTO_EXACT_MAX_WORK,
    AUTO_PARTITION_MIN_WORK,
    CROSS_NEIGHBOURS,
    CROSS_REVERSE,
    LEFT_MARGIN,
    N_ENTRIES,
    PARTITION_PROBES,
    SMALL_SIDE,
    SOFT_PAIR_MIN_WEIGHT,
)
from mnnkit.correction._pair_kernels import mutual_pairs, mutual_pairs_among
from mnnkit.correction._pairs import find_mutual_pairs
from mnnkit.correction._soft_pairs import default_temperature, dual_softmax_pairs
from mnnkit.correction.fast import _graph_kernels, _search_kernels
from mnnkit.correction.fast._graph import (
    BatchGraph,
    SideView,
    build_batch_graph,
    cross_edges_of,
    nearest_cross_edges,
    side_view,
)
from mnnkit.neighbors import Partition, knn, knn_both_ways, partition_knn, partition_sides, restrict_partition

logger = logging.getLogger("mnnkit")


@dataclass(frozen=True)
class LandmarkPlan:
    """How a search from landmarks runs (:meth:`GraphSearch._from_landmarks`).

    Landmarks are searched from scratch with a pool of ``max(ef, ef_factor * k, listed)`` (and at most
    ``landmark_visits`` distance evaluations; negative: no limit) and hand on their ``max(k, listed)``
    nearest targets. Every other query starts from the lists of up to ``near_landmarks`` landmarks
    near it and searches with a pool of ``k + margin`` and at most ``visits`` evaluations beyond its
    seeds (0: the nearest of the seeds).
    """

    ef: int
    ef_factor: int
    listed: int
    landmark_visits: int
    near_landmarks: int
    margin: int
    visits: int


#: Nearest left cells of each right cell. Long landmark lists (100 of a pool of 300) make the seeds of
#: the other cells nearly complete: on a 300k-cell benchmark step (270k left cells from 9 batches),
#: MNN pair recall 0.97 against an exact search (precision 0.96). Fewer, longer lists cost fewer
#: distance evaluations than many short ones for the same recall.
#: The 100 evaluations beyond the seeds matter on small batches (1,000 cells: recall 0.95 -> 0.99).
CROSS_PLAN = LandmarkPlan(ef=300, ef_factor=4, listed=100, landmark_visits=-1, near_landmarks=6, margin=10, visits=100)
#: Nearest MNN cells of each right cell (the cells searched are a subset of the queries). A landmark
#: starts from itself and its nearest allowed pivots, with a pool that is full from the start; one far
#: from every MNN cell stops after ``landmark_visits`` evaluations (the exact set matters little
#: there: the tricube weights of far neighbours are alike). The other cells take the nearest of their
#: landmarks' lists, polished by 30 more evaluations (that matters on small batches: recall 0.92 ->
#: 0.98 at 2,000 cells): recall 0.96 on the 300k-cell step, and tricube corrections that differ from
#: exact ones by 0.1 of their spread over the cells (mean).
NEAREST_PLAN = LandmarkPlan(ef=0, ef_factor=1, listed=60, landmark_visits=2000, near_landmarks=4, margin=0, visits=30)


def exact_search_work(sizes: Sequence[int], n_dims: int) -> float:
    """Multiply-adds of exact searches over every merge: ``n_dims`` times the cross-batch cell pairs.

    Each pair of cells from different batches meets in exactly one merge step, whatever the merge order,
    so the sum over steps of ``n_left * n_right`` is ``(n**2 - sum(n_b**2)) / 2``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    return float(n_dims) * (sizes.sum() ** 2 - np.sum(sizes**2)) / 2.0


def resolve_neighbors(requested: str, sizes: Sequence[int], n_dims: int, *, exact_only: bool) -> str:
    """The search a merge runs: ``requested``, or for ``"auto"`` the fastest one for this size.

    ``"auto"`` is ``"exact"`` while :func:`exact_search_work` is at most ``AUTO_PARTITION_MIN_WORK``
    (and always with ``exact_only``: ``restrict`` or the dual-softmax pairing, which only the exact
    search supports), ``"partition"`` up to ``AUTO_EXACT_MAX_WORK``, else ``"pynndescent"``.
    """
    if requested != "auto":
        return requested
    work = exact_search_work(sizes, n_dims)
    if exact_only or work <= AUTO_PARTITION_MIN_WORK:
        return "exact"
    return "partition" if work <= AUTO_EXACT_MAX_WORK else "pynndescent"


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
        return find_mutual_pairs(left, right, k_left=k_left, k_right=k_right, neighbors="exact")

    def soft_pairs(
        self, left: np.ndarray, right: np.ndarray, left_parts, right_parts, k_left: int, k_right: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Dual-softmax pairs and weights over the kNN candidates both ways, at :func:`default_temperature`."""
        left_nn, right_nn = knn_both_ways(left, right, k_right=k_right, k_left=k_left, method="exact")
        temperature = default_temperature(left_nn.distances, right_nn.distances)
        return dual_softmax_pairs(
            left_nn.indices, left_nn.distances, right_nn.indices, right_nn.distances,
            temperature=temperature, min_weight=SOFT_PAIR_MIN_WEIGHT,
        )  # fmt: skip

    def nearest_of(self, data: np.ndarray, parts, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For every row of ``data``, its ``k`` nearest rows among ``data[subset]`` (positions in ``subset``)."""
        found = knn(data, data[subset], k, method="exact")
        return found.indices, found.distances

    def nearest_within(self, data: np.ndarray, parts, cells: np.ndarray, k: int, among: np.ndarray | None = None):
        """The ``k`` nearest rows of ``data`` (or of ``data[among]``, as rows of ``data``) of each row in ``cells``.

        A cell is its own nearest row when it is in ``among``. Rows ``(len(cells), min(k, n))`` int64.
        """
        if among is None:
            return knn(data[cells], data, min(k, data.shape[0]), method="exact").indices
        return among[knn(data[cells], data[among], min(k, among.size), method="exact").indices]


class PartitionSearch(ExactSearch):
    """The MNN pair search on k-means partitions of each side; the other searches exact.

    Each step partitions both sides anew (:func:`mnnkit.neighbors._partition.partition_points`, seeded)
    and finds each side's nearest cells on the other among the ``PARTITION_PROBES`` partitions nearest
    its own partition (:func:`~mnnkit.neighbors._partition.partition_knn`); the pairs are the mutual
    ones among those lists. The searches for the correction vectors (a right cell's nearest MNN cells,
    the robust flavour's centres) stay exact. Memory: the exact search's, plus a sorted copy of a side.
    """

    name = "partition"

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        #: the right side's partition of the current step (made by :meth:`mnn_pairs`, reused by :meth:`nearest_of`)
        self._right: Partition | None = None
        self._right_size = -1

    def mnn_pairs(
        self, left: np.ndarray, right: np.ndarray, left_parts, right_parts, k_left: int, k_right: int
    ) -> np.ndarray:
        """MNN pairs ``(left row, right row)`` ordered by left row, then distance."""
        left_partition, right_partition = partition_sides([left, right], [self.seed, self.seed + 1])
        left_nn, _ = partition_knn(left, right, k_right, left_partition, right_partition, PARTITION_PROBES)
        right_nn, _ = partition_knn(right, left, k_left, right_partition, left_partition, PARTITION_PROBES)
        self._right, self._right_size = right_partition, right.shape[0]
        return mutual_pairs(left_nn, right_nn)

    def nearest_of(self, data: np.ndarray, parts, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For every row of ``data``, its ``k`` nearest rows among ``data[subset]``, on the step's partition.

        ``data`` is the right side of the step whose pairs were just found (moved since only along the
        step's batch vector, so its partition still steers the search well).
        """
        if self._right is None or self._right_size != data.shape[0]:
            (self._right,) = partition_sides([data], [self.seed + 1])
            self._right_size = data.shape[0]
        among = restrict_partition(self._right, subset, data.shape[0])
        return partition_knn(data, np.ascontiguousarray(data[subset]), k, self._right, among, PARTITION_PROBES)


class GraphSearch:
    """Approximate searches on per-batch pynndescent graphs, with distances on the current data.

    Parameters
    ----------
    seed
        Seed of pynndescent and of the pivot choices.

    Notes
    -----
    Memory: the graphs, ``O(n * 2 * GRAPH_DEGREE)`` int32, the cross edges (int32 pairs, at most
    ``2 * (CROSS_NEIGHBOURS + 1)`` per merged cell on average), plus per search the union graph of a
    side, a renumbered copy of the side's data and ``O(n_query * k)`` results; each search thread
    holds ``O(side size)`` scratch.
    Reproducible: pynndescent runs seeded on a fixed number of threads (``GRAPH_THREADS``), and every
    query of the numba search is answered by one thread in a fixed order.
    """

    name = "pynndescent"

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.members: list[np.ndarray] = []
        self.graphs: list[BatchGraph] = []
        self.cross: list[np.ndarray] = []
        self._cache: tuple[tuple, SideView] | None = None
        self._right_nn: np.ndarray | None = None  # of the last pair search (side rows)

    def prepare(self, data: np.ndarray, members: Sequence[np.ndarray]) -> None:
        """Build the graph of every batch (from the rows of ``data`` listed in ``members``)."""
        self.members = [np.asarray(m) for m in members]
        self.graphs = [build_batch_graph(data[rows], self.seed + b) for b, rows in enumerate(self.members)]
        self.cross = []

    def after_merge(self, pairs: np.ndarray, left_rows: np.ndarray, right_rows: np.ndarray) -> None:
        """Remember the cross edges of a merge (global rows of the two sides given).

        Edges join each MNN cell to its first partner, and each right cell to its ``CROSS_NEIGHBOURS``
        nearest left cells found by the pair search (with at most ``CROSS_REVERSE`` reverse edges per
        left cell): the merged side's union graph then links its batches where their cells mix.
        """
        edges = [cross_edges_of(pairs)]
        right_nn, self._right_nn = self._right_nn, None
        if right_nn is not None:
            edges.append(nearest_cross_edges(left_rows, right_rows, right_nn, CROSS_NEIGHBOURS, CROSS_REVERSE))
        edges = np.concatenate(edges).astype(np.int32)  # row numbers: int32 halves their memory
        if edges.size:
            self.cross.append(edges)

    def _view(self, parts: Sequence[Part]) -> SideView:
        key = (tuple(parts), len(self.cross))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, side_view(self.graphs, parts, self.members, self.cross, self.seed))
        return self._cache[1]

    # ------------------------------------------------------------------------------------------ searches
    def _search(
        self,
        targets: Points,
        view: SideView,
        queries: Points,
        k: int,
        *,
        ef: int,
        rows: np.ndarray | None = None,
        seeds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        allowed: np.ndarray | None = None,
        pivots: np.ndarray | None = None,
        n_entries: int | None = None,
        max_visits: int = -1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` nearest positions of ``targets`` (a side's data in ``view`` order) for each query row.

        The queries are the rows ``rows`` of ``queries`` (default: all), in that order, searched in
        place (no copy). ``seeds`` (``seed_ptr, seed_idx, seed_lists`` of
        :func:`_search_kernels.graph_knn`), ``allowed`` and ``pivots`` are in positions too. Queries
        start from their seeds and their ``n_entries`` nearest pivots (default: the side's pivots,
        ``N_ENTRIES`` of them for queries without seeds, none otherwise).
        """
        n_allowed = targets.exact.shape[0] if allowed is None else int(allowed.sum())
        k = min(k, n_allowed)
        if n_entries is None:
            n_entries = N_ENTRIES if seeds is None else 0
        rows = np.arange(queries.exact.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
        if seeds is None:
            seeds = _plain_seeds(np.zeros(rows.size + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
        mask = np.ones(targets.exact.shape[0], dtype=np.bool_) if allowed is None else allowed
        out_idx = np.empty((rows.size, k), dtype=np.int64)
        out_dist = np.empty((rows.size, k))
        _search_kernels.graph_knn(
            targets.exact, targets.nav, view.indptr, view.indices, view.cross_ptr, view.cross_idx,
            view.pivots if pivots is None else pivots, *seeds, queries.exact, queries.nav, rows,
            k, min(max(ef, k), n_allowed), n_entries, max_visits, mask, out_idx, out_dist,
        )  # fmt: skip
        return out_idx, out_dist

    def _from_landmarks(
        self,
        targets: Points,
        view: SideView,
        queries: Points,
        query_view: SideView,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        same: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` nearest positions of ``targets`` for each query position (``queries`` in ``query_view`` order).

        Only landmarks, queries two hops apart in the queries' graph (a few percent of them), are
        searched from scratch: from pivots, or, when ``same`` (the queries are the targets), from the
        query itself and its nearest allowed pivots. Every other query starts from the neighbours found
        for the landmarks near it (see ``plan``). Results are in query-position order.
        """
        plan = NEAREST_PLAN if same else CROSS_PLAN
        n_queries = queries.exact.shape[0]
        if n_queries < SMALL_SIDE:  # few queries: every one is a landmark
            landmark, cover = np.ones(n_queries, dtype=np.bool_), np.arange(n_queries)
        else:
            landmark, cover = _search_kernels.spaced_landmarks(
                query_view.indptr, query_view.indices, query_view.cross_ptr, query_view.cross_idx
            )
        marks = np.flatnonzero(landmark)
        n_allowed = targets.exact.shape[0] if allowed is None else int(allowed.sum())
        listed = min(max(k, plan.listed), n_allowed)
        extra = {}
        if same:
            extra = {
                "seeds": _plain_seeds(np.arange(marks.size + 1, dtype=np.int64), marks.astype(np.int64)),
                "pivots": _allowed_pivots(allowed, self.seed),
                "n_entries": listed,
            }
        lists, list_dist = self._search(
            targets, view, queries, listed, rows=marks, ef=max(plan.ef, plan.ef_factor * k, listed), allowed=allowed,
            max_visits=plan.landmark_visits, **extra,
        )  # fmt: skip
        k = min(k, listed)
        slot = np.full(n_queries, -1, dtype=np.int64)
        slot[marks] = np.arange(marks.size)
        rows, seed_ptr, seed_idx = _search_kernels.landmark_seeds(
            query_view.indptr, query_view.indices, query_view.cross_ptr, query_view.cross_idx, landmark, cover, slot,
            plan.near_landmarks,
        )  # fmt: skip
        found_rows, dist_rows = self._search(
            targets, view, queries, k, rows=rows, ef=k + plan.margin, seeds=(seed_ptr, seed_idx, lists),
            allowed=allowed, max_visits=plan.visits,
        )  # fmt: skip
        indices = np.empty((n_queries, k), dtype=np.int64)
        distances = np.empty(indices.shape)
        indices[marks], distances[marks] = lists[:, :k], list_dist[:, :k]
        indices[rows], distances[rows] = found_rows, dist_rows
        return indices, distances

    def mnn_pairs(
        self, left: np.ndarray, right: np.ndarray, left_parts, right_parts, k_left: int, k_right: int
    ) -> np.ndarray:
        """MNN pairs ``(left row, right row)`` ordered by left row, then distance."""
        self._right_nn = None
        if left.shape[0] < SMALL_SIDE:
            return find_mutual_pairs(left, right, k_left=k_left, k_right=k_right, neighbors="exact")
        lview, rview = self._view(left_parts), self._view(right_parts)
        left_targets, right_targets = points(left, lview.perm), points(right, rview.perm)
        # nearest left positions of each right position, then as rows
        found, _ = self._from_landmarks(left_targets, lview, right_targets, rview, k_left)
        right_nn = np.empty_like(found)
        right_nn[rview.perm] = lview.perm[found]
        self._right_nn = right_nn
        # only left cells that some right cell lists can be in a pair; each starts from those right cells
        flat = lview.inv[right_nn.ravel()]
        order, ptr = _graph_kernels.group_by_key(flat, left.shape[0])
        candidates = np.flatnonzero(np.diff(ptr))  # left positions, ascending
        seed_ptr = np.append(ptr[candidates], flat.size).astype(np.int64)
        seed_idx = rview.inv[order // k_left]
        if right.shape[0] < SMALL_SIDE:
            found = knn(left_targets.exact[candidates], right_targets.exact, k_right, method="exact").indices
        else:
            found, _ = self._search(
                right_targets, rview, left_targets, k_right, rows=candidates, ef=k_right + LEFT_MARGIN,
                seeds=_plain_seeds(seed_ptr, seed_idx),
            )  # fmt: skip
        rows = lview.perm[candidates]
        by_row = np.argsort(rows, kind="stable")
        return mutual_pairs_among(
            rows[by_row], np.ascontiguousarray(rview.perm[found][by_row]), np.ascontiguousarray(right_nn)
        )

    def nearest_within(self, data: np.ndarray, parts, cells: np.ndarray, k: int, among: None = None) -> np.ndarray:
        """The ``k`` nearest rows of ``data`` of each row in ``cells`` (approximate; ``among`` is not supported).

        Each cell's search starts from the cell itself in its side's graph, so it stays local and cheap.
        On a side of several batches it also starts from ``N_ENTRIES`` pivots: the batches are joined
        only by the cross edges of earlier merges, and without the pivots a cell would not reach the
        other batches' cells near it (a single batch's own graph needs none: same recall, 40% less time
        at a million cells).
        """
        k = min(k, data.shape[0])
        if data.shape[0] < SMALL_SIDE:
            return knn(data[cells], data, k, method="exact").indices
        view = self._view(parts)
        targets = points(data, view.perm)
        starts = view.inv[np.asarray(cells, dtype=np.int64)]
        seeds = _plain_seeds(np.arange(starts.size + 1, dtype=np.int64), starts)
        found, _ = self._search(
            targets, view, targets, k, rows=starts, ef=k + LEFT_MARGIN, seeds=seeds,
            n_entries=N_ENTRIES if len(parts) > 1 else 0,
        )  # fmt: skip
        return view.perm[found]

    def nearest_of(self, data: np.ndarray, parts, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """For every row of ``data``, its ``k`` nearest rows among ``data[subset]`` (positions in ``subset``)."""
        if data.shape[0] < SMALL_SIDE:
            found = knn(data, data[subset], k, method="exact")
            return found.indices, found.distances
        view = self._view(parts)
        targets = points(data, view.perm)
        allowed = np.zeros(data.shape[0], dtype=np.bool_)
        allowed[view.inv[subset]] = True
        found, dist = self._from_landmarks(targets, view, targets, view, k, allowed=allowed, same=True)
        indices = np.empty_like(found)
        distances = np.empty_like(dist)
        in_subset = np.full(data.shape[0], -1, dtype=np.int64)
        in_subset[subset] = np.arange(subset.size)
        indices[view.perm] = in_subset[view.perm[found]]
        distances[view.perm] = dist
        return indices, distances


class Points(NamedTuple):
    """Rows searched or searching: float64 (the distances returned) and a float32 copy (to navigate)."""

    exact: np.ndarray
    nav: np.ndarray


def points(data: np.ndarray, order: np.ndarray) -> Points:
    """:class:`Points` of the rows ``data[order]`` (float64 ``data``), gathered and cast in one parallel pass."""
    exact = np.empty((order.size, data.shape[1]))
    nav = np.empty(exact.shape, dtype=np.float32)
    _search_kernels.gather_rows(
        np.ascontiguousarray(data, dtype=np.float64), np.asarray(order, dtype=np.int64), exact, nav
    )
    return Points(exact, nav)


def _plain_seeds(seed_ptr: np.ndarray, seed_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query seeds in CSR form as :func:`_search_kernels.graph_knn` takes them (lists of one target each)."""
    lists = np.ascontiguousarray(seed_idx, dtype=np.int64).reshape(-1, 1)
    return seed_ptr, np.arange(seed_idx.size, dtype=np.int64), lists


def _allowed_pivots(allowed: np.ndarray, seed: int) -> np.ndarray:
    """A seeded sample of about ``2 sqrt(m)`` of the ``m`` allowed positions (all if few)."""
    rows = np.flatnonzero(allowed)
    n_pivots = min(rows.size, max(64, int(2 * np.sqrt(rows.size))))
    return np.sort(np.random.default_rng(seed).choice(rows, size=n_pivots, replace=False)).astype(np.int64)
