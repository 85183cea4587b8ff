"""Integration metrics: batch mixing and conservation of biology, on arrays and on AnnData.

Functions on arrays take an embedding (dense cells x dims array) and, for the neighbour-based metrics
(:func:`lisi`, :func:`ilisi`, :func:`clisi`, :func:`graph_connectivity`, :func:`kbet_global_acceptance`,
:func:`kbet_per_label`), also a :class:`mnnkit.neighbors.NeighborResult` (self excluded) or a sparse kNN
graph, so one neighbour search can serve all of them. :func:`evaluate` computes the whole panel from an
AnnData and returns a table; :func:`benchmark` runs scib-metrics' ``Benchmarker`` when it is installed.

Every metric named like one of scib-metrics (Luecken et al. 2022) computes what scib-metrics computes,
and equals it within 1e-6 on the same neighbours (tested): ``ilisi``/``clisi`` (``ilisi_knn``/``clisi_knn``;
LISI itself matches harmonypy's ``compute_lisi``), ``silhouette_label``, ``silhouette_batch``,
``graph_connectivity`` (strongly connected components of the directed kNN graph), ``kbet_per_label``, and
the KMeans ``ari``/``nmi`` (``nmi_ari_cluster_labels_kmeans``, one initialisation; equal when the clustering
does not depend on the random start). :func:`kbet_global_acceptance` is scib-metrics' ``kbet``, one test over
all cells, which scIB does not report. One convention differs: scib-metrics' neighbour lists include the
cell itself, mnnkit's do not, so its 15-, 50- and 90-neighbour results are mnnkit's 14, 49 and 89.
"""

from mnnkit.metrics._benchmark import benchmark
from mnnkit.metrics._clustering import adjusted_rand_index, ari_nmi, normalized_mutual_info
from mnnkit.metrics._connectivity import graph_connectivity
from mnnkit.metrics._evaluate import evaluate
from mnnkit.metrics._kbet import kbet_global_acceptance, kbet_per_label, kbet_pvalues
from mnnkit.metrics._lisi import clisi, ilisi, lisi
from mnnkit.metrics._silhouette import silhouette_batch, silhouette_label, silhouette_samples
from mnnkit.neighbors import NeighborResult

__all__ = [
    "NeighborResult",
    "adjusted_rand_index",
    "ari_nmi",
    "benchmark",
    "clisi",
    "evaluate",
    "graph_connectivity",
    "ilisi",
    "kbet_global_acceptance",
    "kbet_per_label",
    "kbet_pvalues",
    "lisi",
    "normalized_mutual_info",
    "silhouette_batch",
    "silhouette_label",
    "silhouette_samples",
]
