"""MNN correction between clusters (batchelor's ``clusterMNN``): the fast engine on centroids."""

from mnnkit.correction.cluster._api import cluster_mnn

__all__ = ["cluster_mnn"]
