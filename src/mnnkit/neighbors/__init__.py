"""Nearest-neighbour search shared by the MNN correction and the metrics.

:func:`knn` finds the ``k`` nearest neighbours (exactly, with memory bounded by a row chunk, or
approximately with pynndescent, or with a user's fitted scikit-learn estimator) and returns a
:class:`NeighborResult`, a small frozen record of ``indices`` and ``distances`` that the metrics accept
in place of an embedding. :meth:`NeighborResult.from_sparse` reads a precomputed kNN distance graph.
:func:`mutual_pair_counts` counts mutual nearest pairs of one set against many small ones at once.
:func:`partition_sides` and :func:`partition_knn` are the approximate search on k-means partitions
(:class:`Partition`; :func:`restrict_partition` narrows one to a subset of its points).
"""

from mnnkit.neighbors._knn import KNeighborsLike, knn, knn_both_ways
from mnnkit.neighbors._mutual_counts import mutual_pair_counts
from mnnkit.neighbors._partition import Partition, partition_knn, partition_sides, restrict_partition
from mnnkit.neighbors._result import NeighborResult

__all__ = [
    "KNeighborsLike",
    "NeighborResult",
    "Partition",
    "knn",
    "knn_both_ways",
    "mutual_pair_counts",
    "partition_knn",
    "partition_sides",
    "restrict_partition",
]
