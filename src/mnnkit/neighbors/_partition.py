"""Approximate kNN on k-means partitions (an inverted file): each query block searches exactly in a few cells.

Both point sets are split into k-means partitions of about ``PARTITION_CELLS`` points. The queries
of one partition are searched together, exactly (:func:`mnnkit.neighbors._exact.exact_knn`: one
BLAS block and the exact selection), among the data points of the ``n_probe`` data partitions whose
centres are nearest the query partition's centre. A query's true neighbours are missed only when they
lie in a data partition outside those few, so recall is high on data made of cell types (it is 1 when
every partition is probed, and then the result equals the exact search's, ties included).

The work is about ``n_query * n_probe * PARTITION_CELLS * d`` multiply-adds instead of ``n_query *
n_data * d``, plus the k-means fits (``n * n_partitions * d`` per iteration). Everything runs in
BLAS and the exact search's kernels: there is nothing extra to compile.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnnkit._config import KNN_CHUNK_BYTES, PARTITION_CELLS, PARTITION_ITERATIONS
from mnnkit._threads import numba_thread_count, run_in_ranges, thread_limits
from mnnkit.neighbors._exact import exact_knn

__all__ = [
    "Partition",
    "default_partitions",
    "partition_knn",
    "partition_points",
    "partition_sides",
    "restrict_partition",
]


@dataclass(frozen=True)
class Partition:
    """A k-means partition of a point set.

    ``centres`` are the partitions' means (``n_partitions x d``); the points of partition ``p`` are
    ``order[bounds[p]:bounds[p + 1]]`` (row numbers, increasing).
    """

    centres: np.ndarray
    order: np.ndarray
    bounds: np.ndarray

    @property
    def n_partitions(self) -> int:
        return int(self.centres.shape[0])

    def members(self, p: int) -> np.ndarray:
        return self.order[self.bounds[p] : self.bounds[p + 1]]


def _nearest_centre(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centre, a row block at a time (``KNN_CHUNK_BYTES`` of scores)."""
    centre_sqnorm = np.einsum("ij,ij->i", centres, centres)
    labels = np.empty(points.shape[0], dtype=np.int64)
    step = max(1, KNN_CHUNK_BYTES // (8 * centres.shape[0]))
    for start in range(0, points.shape[0], step):
        block = points[start : start + step] @ centres.T
        block *= -2.0
        block += centre_sqnorm
        labels[start : start + step] = np.argmin(block, axis=1)
    return labels


def partition_points(points: np.ndarray, n_partitions: int, seed: int) -> Partition:
    """k-means partition of ``points`` (float64, C order) into at most ``n_partitions`` non-empty parts.

    Starts from ``n_partitions`` distinct points drawn with ``seed`` and runs ``PARTITION_ITERATIONS``
    Lloyd iterations (a partition that loses every point keeps its centre and is dropped at the end).
    Deterministic for a given seed and BLAS (a near-tie between two centres can go either way with a
    different BLAS thread count; the partition then differs, the search stays valid). Memory: a row
    block of scores (``KNN_CHUNK_BYTES``) and one sorted copy of ``points``.
    """
    n_points = points.shape[0]
    n_partitions = max(1, min(int(n_partitions), n_points))
    rng = np.random.default_rng(seed)
    centres = points[np.sort(rng.choice(n_points, n_partitions, replace=False))].copy()
    for _ in range(PARTITION_ITERATIONS):
        labels = _nearest_centre(points, centres)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=n_partitions)
        filled = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[filled]
        centres[filled] = np.add.reduceat(points[order], starts, axis=0) / counts[filled, None]
    labels = _nearest_centre(points, centres)
    counts = np.bincount(labels, minlength=n_partitions)
    filled = np.flatnonzero(counts)
    # renumber the non-empty partitions 0..m-1, keeping their order
    relabel = np.full(n_partitions, -1, dtype=np.int64)
    relabel[filled] = np.arange(filled.size)
    labels = relabel[labels]
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts[filled])]).astype(np.int64)
    return Partition(centres=np.ascontiguousarray(centres[filled]), order=order, bounds=bounds)


def partition_sides(sides: Sequence[np.ndarray], seeds: Sequence[int]) -> list[Partition]:
    """:func:`partition_points` of each point set with its seed (``default_partitions`` parts), side by side.

    The fits share out to the kernel threads (:func:`mnnkit._threads.numba_thread_count`), each with
    single-threaded BLAS, so the partitions do not depend on the number of threads.
    """
    fitted: list[Partition | None] = [None] * len(sides)

    def worker(first: int, last: int) -> None:
        for i in range(first, last):
            fitted[i] = partition_points(sides[i], default_partitions(sides[i].shape[0]), seeds[i])

    with thread_limits(blas=1):
        run_in_ranges(worker, len(sides), 1)
    return fitted  # type: ignore[return-value]


def restrict_partition(partition: Partition, subset: np.ndarray, n_points: int) -> Partition:
    """The partition of ``points[subset]`` that ``partition`` (of all ``n_points`` points) induces.

    Rows are positions in ``subset``; the centres stay those of the whole partition (the subset's
    cells are still near them), partitions left empty are dropped.
    """
    labels = np.empty(n_points, dtype=np.int64)
    for p in range(partition.n_partitions):
        labels[partition.members(p)] = p
    sub_labels = labels[subset]
    counts = np.bincount(sub_labels, minlength=partition.n_partitions)
    filled = np.flatnonzero(counts)
    relabel = np.full(partition.n_partitions, -1, dtype=np.int64)
    relabel[filled] = np.arange(filled.size)
    order = np.argsort(relabel[sub_labels], kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts[filled])]).astype(np.int64)
    return Partition(centres=partition.centres[filled], order=order, bounds=bounds)


def default_partitions(n_points: int) -> int:
    """Partitions for ``n_points`` points: about ``PARTITION_CELLS`` points each."""
    return max(1, int(round(n_points / PARTITION_CELLS)))


def partition_knn(
    query: np.ndarray,
    data: np.ndarray,
    k: int,
    query_partition: Partition,
    data_partition: Partition,
    n_probe: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Approximate ``k`` nearest ``data`` rows of every ``query`` row (float64, C order) on partitions.

    The queries of each partition of ``query_partition`` are searched exactly among the points of the
    ``n_probe`` partitions of ``data_partition`` whose centres are nearest their own centre (more if
    those hold fewer than ``k`` points). Returns ``(indices, distances)`` as
    :func:`mnnkit.neighbors._exact.exact_knn` (``int64``/``float64``, ``n_query x k``, Euclidean
    distances in increasing order, equal ones by data row). With ``n_probe >=
    data_partition.n_partitions`` the result is the exact search's, except that where several points
    tie at the ``k``-th distance a different one of them may be kept. The query partitions are shared
    out to the kernel threads (:func:`mnnkit._threads.numba_thread_count`); the result does not
    depend on their number. Needs ``k <= len(data)``. Memory: the output, and per thread one query
    partition's candidate rows (copied) and the exact search's block.
    """
    n_query = query.shape[0]
    indices = np.empty((n_query, k), dtype=np.int64)
    distances = np.empty((n_query, k), dtype=np.float64)
    centres = data_partition.centres
    sizes = np.diff(data_partition.bounds)
    # squared distances between the centres, up to a per-row constant (enough to rank them per row)
    centre_scores = np.einsum("ij,ij->i", centres, centres)[None, :] - 2.0 * (query_partition.centres @ centres.T)

    def search_one(q: int) -> None:
        rows = query_partition.members(q)
        ranked = np.argsort(centre_scores[q], kind="stable")
        n_take = min(max(1, int(n_probe)), ranked.size)
        while n_take < ranked.size and sizes[ranked[:n_take]].sum() < k:
            n_take += 1
        # nearest partition first: the selection's running k-th distance is then tight early on
        candidates = np.concatenate([data_partition.members(p) for p in ranked[:n_take]])
        found, dist = exact_knn(query[rows], data[candidates], k, exclude_self=False)
        indices[rows] = candidates[found]
        distances[rows] = dist

    # Each kernel thread takes the next query partition until none is left (partitions differ in size,
    # so fixed ranges would leave a thread idle); each partition's rows are written by one search, so
    # the result does not depend on the scheduling. BLAS and numba run single-threaded inside.
    queue = iter(range(query_partition.n_partitions))
    lock = threading.Lock()

    def worker(first: int, last: int) -> None:
        with thread_limits(numba=1):
            while True:
                with lock:
                    q = next(queue, None)
                if q is None:
                    return
                search_one(q)

    with thread_limits(blas=1):
        run_in_ranges(worker, numba_thread_count(), 1)
    _ties_to_lower_row(indices, distances)
    return indices, distances


def _ties_to_lower_row(indices: np.ndarray, distances: np.ndarray) -> None:
    """Order equal distances within each row by data row, as the exact search does (in place)."""
    tied = np.flatnonzero(np.any(distances[:, 1:] == distances[:, :-1], axis=1))
    for i in tied:
        order = np.lexsort((indices[i], distances[i]))
        indices[i] = indices[i, order]
        distances[i] = distances[i, order]
