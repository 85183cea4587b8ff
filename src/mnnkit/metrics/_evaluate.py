"""AnnData front of the metrics: :func:`evaluate` computes them all from one embedding and one neighbour search."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mnnkit._random import RngLike, as_seed
from mnnkit._threads import job_threads
from mnnkit._validation import check_adata
from mnnkit.metrics._clustering import ari_nmi
from mnnkit.metrics._connectivity import graph_connectivity
from mnnkit.metrics._inputs import as_embedding, as_labels, check_count, obs_column
from mnnkit.metrics._kbet import kbet_global_acceptance, kbet_per_label
from mnnkit.metrics._lisi import _check_perplexity, lisi
from mnnkit.metrics._silhouette import silhouette_batch, silhouette_label
from mnnkit.neighbors import KNeighborsLike, knn

__all__ = ["evaluate"]

logger = logging.getLogger("mnnkit")

# name -> (higher is better, description); the row order of evaluate's table
_METRICS = {
    "ilisi": (True, "median iLISI of batch (1 .. n_batches)"),
    "ilisi_scaled": (True, "scIB iLISI, (median - 1) / (n_batches - 1)"),
    "kbet_global_acceptance": (True, "kBET acceptance rate over all cells at once, alpha 0.05 (scib-metrics kbet)"),
    "kbet_per_label": (True, "scIB kBET: acceptance rate per label on diffusion-map neighbourhoods, averaged"),
    "clisi": (False, "median cLISI of labels (1 .. n_labels)"),
    "clisi_scaled": (True, "scIB cLISI, (n_labels - median) / (n_labels - 1)"),
    "silhouette_label": (True, "scIB label ASW, (mean silhouette of labels + 1) / 2"),
    "silhouette_batch": (True, "scIB batch ASW, per label mean of 1 - |silhouette of batch|, averaged"),
    "ari": (True, "adjusted Rand index, KMeans (k = n_labels, n_init = 1) vs labels"),
    "nmi": (True, "normalised mutual information, KMeans (k = n_labels, n_init = 1) vs labels"),
    "graph_connectivity": (True, "per label, share in the largest strong component of the directed kNN graph"),
}


def _representation(adata: Any, rep: str, n_pcs: int, seed: int) -> tuple[np.ndarray, str]:
    """The embedding ``rep`` names, and where it came from (``obsm``, or a PCA of ``layers``/``X``)."""
    if not isinstance(rep, str):
        msg = f"rep must be a string key, got {type(rep).__name__}."
        raise TypeError(msg)
    if rep in adata.obsm:
        return as_embedding(np.asarray(adata.obsm[rep]), f"adata.obsm[{rep!r}]"), f"obsm[{rep!r}]"
    if rep == "X":
        matrix, where = adata.X, "adata.X"
    elif rep in adata.layers:
        matrix, where = adata.layers[rep], f"adata.layers[{rep!r}]"
    else:
        msg = (
            f"rep={rep!r} is neither an .obsm key, a .layers key nor 'X'; available: obsm "
            f"{sorted(adata.obsm.keys())}, layers {sorted(adata.layers.keys())}, and 'X'."
        )
        raise ValueError(msg)
    if matrix is None:
        msg = f"rep={rep!r}: {where} is empty (None)."
        raise ValueError(msg)
    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix)
    if values.dtype.kind not in "fiub":
        msg = f"rep={rep!r}: {where} must be numeric, got dtype {values.dtype}."
        raise TypeError(msg)
    if not np.isfinite(values).all():
        msg = f"rep={rep!r}: {where} contains NaN or infinite values."
        raise ValueError(msg)
    import scanpy as sc

    n_comps = min(n_pcs, min(matrix.shape) - 1)
    if n_comps < 1:
        msg = f"rep={rep!r}: {where} of shape {matrix.shape} is too small for a PCA."
        raise ValueError(msg)
    logger.info("evaluate: PCA of %s with %d components", where, n_comps)
    embedding = sc.pp.pca(matrix, n_comps=n_comps, random_state=seed, dtype="float64")
    return as_embedding(embedding, f"PCA of {where}"), f"PCA({n_comps}) of {where}"


def evaluate(
    adata: Any,
    *,
    batch_key: str = "batch",
    label_key: str | None = None,
    rep: str = "X_pca",
    n_neighbors: int = 15,
    kbet_neighbors: int = 50,
    perplexity: float = 30,
    n_pcs: int = 50,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Integration metrics of an AnnData's embedding, as a table with one row per metric.

    Batch mixing (always): ``ilisi``, ``ilisi_scaled`` (:func:`ilisi`), ``kbet_global_acceptance``
    (:func:`kbet_global_acceptance`). With ``label_key``, also label-aware mixing and biological
    conservation: ``kbet_per_label`` (:func:`kbet_per_label`, scIB's kBET), ``clisi``, ``clisi_scaled``
    (:func:`clisi`), ``silhouette_label``, ``silhouette_batch``, ``ari``, ``nmi`` (:func:`ari_nmi`, KMeans
    with one initialisation) and ``graph_connectivity``. Each metric whose name scib-metrics also uses
    computes what scib-metrics computes on the same neighbours. One exact (or ``neighbors_method``) kNN
    search of ``max(int(3 * perplexity), n_neighbors, kbet_neighbors)`` neighbours (self excluded) is
    shared by LISI (first ``int(3 * perplexity)``), graph connectivity (first ``n_neighbors``) and both
    kBETs (first ``kbet_neighbors``).

    Parameters
    ----------
    adata
        AnnData; not modified.
    batch_key
        ``adata.obs`` column with the batch of each cell (at least two batches).
    label_key
        ``adata.obs`` column with cell types, or ``None`` for the batch-only metrics.
    rep
        The representation to score: an ``.obsm`` key (used as is, e.g. ``"X_mnn"``, ``"X_pca"``), else a
        ``.layers`` key or ``"X"``. Gene-level matrices (layers, ``X``) are first reduced with scanpy's
        ``sc.pp.pca`` (``n_pcs`` components, seeded by ``rng``, float64 output).
    n_neighbors
        Neighbours per cell of the kNN graph for graph connectivity.
    kbet_neighbors
        Neighbourhood size of the global kBET test, and the kNN graph from which :func:`kbet_per_label`
        computes its connectivities.
    perplexity
        LISI perplexity (uses ``int(3 * perplexity)`` neighbours).
    n_pcs
        Principal components for a gene-level ``rep``.
    neighbors_method
        ``"exact"``, ``"pynndescent"`` or a fitted estimator; see :func:`mnnkit.neighbors.knn`.
    rng
        Randomness of the PCA, pynndescent, KMeans and the per-label kBET's eigensolver (one seed drawn for
        all): an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as given: its
        stream advances) or None (fresh entropy from the operating system: a different result on every call).

    n_jobs
        Threads for numba and BLAS during the call, as in :func:`mnnkit.correct`.

    Returns
    -------
    pandas.DataFrame
        Indexed by metric name (``index.name == "metric"``), rows in the order listed above, with
        columns ``value`` (float), ``higher_is_better`` (bool) and ``description`` (str).
        ``df.attrs`` records the inputs (``rep``, ``source``, ``batch_key``, ``label_key``, ``n_obs``,
        ``n_dims``, ``n_batches``, ``n_labels``, ``perplexity``, ``n_neighbors``, ``kbet_neighbors``,
        ``neighbors_method``), all JSON-serialisable, so ``df["value"].to_dict()`` and ``df.attrs`` are
        what a JSON report needs.

    Notes
    -----
    Time is dominated by the silhouettes, ``O(n_cells^2 * n_dims)`` (quadratic, as in scIB), and the exact
    kNN search, ``O(n_cells^2 * n_dims)`` (use ``neighbors_method="pynndescent"`` for large data); the
    per-label kBET adds one eigen-decomposition per label. Memory:
    the embedding, the ``16 * n_cells * k`` byte neighbour result and the 64 MiB distance blocks of the
    kNN search and silhouettes; for a gene-level ``rep``, scanpy's PCA.
    """
    check_adata(adata, "evaluate")
    batch = obs_column(adata, batch_key, "batch_key")
    labels = None if label_key is None else obs_column(adata, label_key, "label_key")
    perplexity = _check_perplexity(perplexity)
    n_neighbors = check_count(n_neighbors, "n_neighbors")
    kbet_neighbors = check_count(kbet_neighbors, "kbet_neighbors")
    n_pcs = check_count(n_pcs, "n_pcs")
    batch_codes, batch_names = as_labels(batch, adata.n_obs, f"adata.obs[{batch_key!r}]")
    if batch_names.size < 2:
        msg = f"adata.obs[{batch_key!r}] has {batch_names.size} batch; evaluate needs at least 2."
        raise ValueError(msg)
    if labels is not None:
        label_codes, label_names = as_labels(labels, adata.n_obs, f"adata.obs[{label_key!r}]")
        if label_names.size < 2:
            msg = f"adata.obs[{label_key!r}] has {label_names.size} label; the label metrics need at least 2."
            raise ValueError(msg)
    seed = as_seed(rng)
    threads = job_threads(n_jobs)  # checked before any work
    with threads:
        embedding, source = _representation(adata, rep, n_pcs, seed)
        k_lisi = int(3 * perplexity)
        k_max = max(k_lisi, n_neighbors, kbet_neighbors)
        if k_max > embedding.shape[0] - 1:
            msg = (
                f"evaluate needs more than {k_max} cells for {k_max} neighbours (perplexity={perplexity:g}, "
                f"n_neighbors={n_neighbors}, kbet_neighbors={kbet_neighbors}); adata has {embedding.shape[0]}."
            )
            raise ValueError(msg)
        logger.info("evaluate: %d neighbours of %d cells in %s", k_max, embedding.shape[0], source)
        nn = knn(embedding, embedding, k_max, method=neighbors_method, rng=seed, exclude_self=True)

        values: dict[str, float] = {}
        batch_lisi = float(np.median(lisi(nn, batch_codes, perplexity=perplexity)))
        values["ilisi"] = batch_lisi
        values["ilisi_scaled"] = (batch_lisi - 1.0) / (batch_names.size - 1)
        values["kbet_global_acceptance"] = kbet_global_acceptance(nn, batch_codes, n_neighbors=kbet_neighbors)
        if labels is not None:
            logger.info("evaluate: kBET per label")
            values["kbet_per_label"] = kbet_per_label(
                nn, batch_codes, label_codes, n_neighbors=kbet_neighbors, neighbors_method=neighbors_method, rng=seed
            )
            label_lisi = float(np.median(lisi(nn, label_codes, perplexity=perplexity)))
            values["clisi"] = label_lisi
            values["clisi_scaled"] = (label_names.size - label_lisi) / (label_names.size - 1)
            logger.info("evaluate: silhouettes")
            values["silhouette_label"] = silhouette_label(embedding, label_codes)
            values["silhouette_batch"] = silhouette_batch(embedding, label_codes, batch_codes)
            values.update(ari_nmi(embedding, label_codes, rng=seed))
            values["graph_connectivity"] = graph_connectivity(nn, label_codes, n_neighbors=n_neighbors)

    table = pd.DataFrame(
        {
            "value": [float(values[name]) for name in values],
            "higher_is_better": [_METRICS[name][0] for name in values],
            "description": [_METRICS[name][1] for name in values],
        },
        index=pd.Index(list(values), name="metric"),
    )
    table.attrs.update(
        {
            "rep": rep,
            "source": source,
            "batch_key": batch_key,
            "label_key": label_key,
            "n_obs": int(embedding.shape[0]),
            "n_dims": int(embedding.shape[1]),
            "n_batches": int(batch_names.size),
            "n_labels": None if labels is None else int(label_names.size),
            "perplexity": perplexity,
            "n_neighbors": n_neighbors,
            "kbet_neighbors": kbet_neighbors,
            "neighbors_method": neighbors_method
            if isinstance(neighbors_method, str)
            else type(neighbors_method).__name__,
        }
    )
    return table
