"""kNN graph connectivity per label (scib-metrics' ``graph_connectivity``)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from mnnkit._random import RngLike
from mnnkit.metrics._inputs import NeighborsInput, as_labels, n_cells_of, resolve_neighbors
from mnnkit.neighbors import KNeighborsLike

__all__ = ["graph_connectivity"]


def graph_connectivity(
    X: NeighborsInput,
    labels: Any,
    *,
    n_neighbors: int = 15,
    connection: Literal["strong", "weak"] = "strong",
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> float:
    """Mean over labels of the share of a label's cells in the largest connected piece of its kNN subgraph.

    For each label, the kNN graph is restricted to that label's cells and its connected components are
    found; the label scores ``size of the largest component / number of cells``. The result, between 0
    and 1 (1 = every label forms one connected piece), is the unweighted mean over labels. By default this
    is scib-metrics' ``graph_connectivity``: strongly connected components of the *directed* kNN graph
    (equal to it on the same neighbour lists; tested).

    Parameters
    ----------
    X
        Embedding (a kNN graph with ``n_neighbors`` is built, self excluded), a
        :class:`~mnnkit.neighbors.NeighborResult` over the same cells (first ``n_neighbors`` columns), or a
        square sparse graph used as it is (every stored entry ``(i, j)`` is an edge from ``i`` to ``j``,
        e.g. scanpy's ``obsp["distances"]``; ``n_neighbors`` is then ignored).
    labels
        Cell type of each cell.
    n_neighbors
        Neighbours per cell (self excluded) of the graph built from an embedding or taken from a
        NeighborResult. scib-metrics' neighbour lists include the cell itself, which adds no edge between
        cells: its ``Benchmarker``'s 15-neighbour graph is ``n_neighbors=14`` here.
    connection
        ``"strong"`` (default, scib-metrics): strongly connected components of the directed kNN graph, a
        cell ``j`` among ``i``'s neighbours is an edge ``i -> j`` only. ``"weak"``: edges count both ways,
        i.e. connected components of the symmetrised graph; this is what the original ``scib`` package
        computes on scanpy's symmetric ``obsp["connectivities"]``, and gives values at least as high.
    neighbors_method, rng
        Neighbour search for an embedding; see :func:`mnnkit.neighbors.knn`.

    Returns
    -------
    float
        Graph connectivity in ``[0, 1]``.

    Notes
    -----
    Memory: the sparse graph, ``O(n_cells * n_neighbors)``.
    """
    if connection not in ("strong", "weak"):
        msg = f"connection must be 'strong' or 'weak', got {connection!r}."
        raise ValueError(msg)
    n_obs = n_cells_of(X)
    codes, names = as_labels(labels, n_obs, "labels")
    if sparse.issparse(X):
        if X.shape != (n_obs, n_obs):
            msg = f"X: a sparse graph must be square (cells x cells), got shape {X.shape}."
            raise ValueError(msg)
        graph = sparse.csr_matrix(X)
    else:
        graph = resolve_neighbors(X, n_neighbors, neighbors_method=neighbors_method, rng=rng).to_sparse()
    scores = []
    for code in range(names.size):
        members = np.nonzero(codes == code)[0]
        sub = graph[members][:, members]
        _, comp = connected_components(sub, directed=True, connection=connection)
        scores.append(np.bincount(comp).max() / members.size)
    return float(np.mean(scores))
