"""MNN correction in PC space for atlas-scale data (batchelor's ``fastMNN`` and ``clusterMNN``).

``_api`` is the AnnData front (:func:`mnnkit.fast_mnn`) and ``_params`` its checks; ``_prepare`` the
space to correct (a multi-batch PCA of the genes in ``_pca``, its dask version in ``_dask``, or an
``.obsm`` embedding); ``_engine`` the merge loop; ``_orthogonalize`` the removal of batch vectors;
``_tricube`` the MNN vectors and their tricube smoothing; ``_search`` the neighbour searches (exact,
or per-batch graphs built in ``_graph``); ``_results`` the output writer. ``_cluster`` runs the same
engine on the centroids of each batch's clusters (:func:`mnnkit.cluster_mnn`). Numba code sits in
``_pc_kernels`` (PC arithmetic), ``_search_kernels``, ``_graph_kernels`` and ``_dask_kernels``.
"""

from mnnkit.correction.fast._api import fast_mnn
from mnnkit.correction.fast._cluster import cluster_mnn

__all__ = ["cluster_mnn", "fast_mnn"]
