"""Integration metrics: batch mixing and conservation of biology, on arrays and on AnnData.

Functions on arrays take an embedding (dense cells x dims array) and, for the neighbour-based metrics
(:func:`lisi`, :func:`ilisi`, :func:`clisi`, :func:`graph_connectivity`, :func:`kbet_acceptance`), also a
:class:`mnnkit.neighbors.NeighborResult` (self excluded) or a sparse kNN graph, so one neighbour search can
serve all of them. :func:`evaluate` computes the whole panel from an AnnData and returns a table.

LISI matches harmonypy's ``compute_lisi``; silhouettes match scikit-learn; the scIB scalings are documented
on each function.
"""

from mnnkit.metrics._clustering import adjusted_rand_index, ari_nmi, normalized_mutual_info
from mnnkit.metrics._connectivity import graph_connectivity
from mnnkit.metrics._evaluate import evaluate
from mnnkit.metrics._kbet import kbet_acceptance, kbet_pvalues
from mnnkit.metrics._lisi import clisi, ilisi, lisi
from mnnkit.metrics._silhouette import silhouette_batch, silhouette_label, silhouette_samples
from mnnkit.neighbors import NeighborResult

__all__ = [
    "NeighborResult",
    "adjusted_rand_index",
    "ari_nmi",
    "clisi",
    "evaluate",
    "graph_connectivity",
    "ilisi",
    "kbet_acceptance",
    "kbet_pvalues",
    "lisi",
    "normalized_mutual_info",
    "silhouette_batch",
    "silhouette_label",
    "silhouette_samples",
]
