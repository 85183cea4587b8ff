"""``mnnkit.cluster_mnn``: MNN correction between clusters (batchelor's ``clusterMNN``).

The fast method's engine runs on the clusters' centroids instead of the cells: the centroids of each
batch's clusters get a multi-batch PCA and are merged with ``k=1`` (each centroid pairs with at most
its mutual nearest centroid of the other side); every cell then moves by a Gaussian-weighted average
of the moves of its own batch's centroids. On large data this costs one pass over the cells, and the
correction follows the clusters (cell types) rather than individual neighbours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from mnnkit._logging import finished
from mnnkit._random import RngLike, as_seed
from mnnkit._threads import job_threads
from mnnkit._validation import check_adata, check_bool, check_int, check_key_added, check_real
from mnnkit.correction._front import merge_uns, output_dtype, step_reporter, warn_batch_problems
from mnnkit.correction._inputs import Batches, get_matrix, label_sort_key, obs_column, resolve_batches, resolve_subset
from mnnkit.correction._plan import resolve_merge_plan
from mnnkit.correction.fast._engine import FastMergeState, FastParams, run_merges
from mnnkit.correction.fast._pca import cosine_columns, multi_batch_pca
from mnnkit.correction.fast._search import ExactSearch

logger = logging.getLogger("mnnkit")

#: batchelor's tricube bandwidth of the centroid merge (``ndist``); each centroid pairs with one partner.
CENTROID_NDIST = 3.0


def cluster_mnn(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    clusters: str | None,
    n_clusters: int = 10,
    subset: str | Sequence[str] | np.ndarray | None = None,
    layer: str | None = None,
    cos_norm: bool = True,
    merge_order: Sequence | Literal["auto"] | None = None,
    min_batch_skip: float = 0.0,
    key_added: str = "X_cluster_mnn",
    copy: bool = False,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    progress: bool = False,
) -> AnnData | None:
    """Correct batch effects by MNN between the batches' clusters (batchelor's ``clusterMNN``).

    Each batch's cells are cosine-normalised and grouped by ``clusters``; the clusters' centroids
    (mean normalised expression) get a multi-batch PCA with as many components as centroids minus one,
    and are merged batch by batch as in :func:`mnnkit.fast_mnn` with ``k=1``: a centroid pairs with
    its mutual nearest centroid of the other side, and the paired centroids move onto their partners.
    Each cell is projected on the same components and moves by the moves of its own batch's
    centroids, weighted by ``exp(-d^2 / s^2)`` with ``d`` its distance to each centroid and ``s`` the
    batch's median distance from a cell to its nearest centroid. Meta-clusters are the connected groups
    of paired centroids.

    Parameters
    ----------
    adata
        Cells x genes, log-normalised expression in ``.X`` or ``layer`` (dense or CSR/CSC).
    batch_key
        Column of ``.obs`` with the batch of each cell (R's factor order is the default merge order).
    clusters
        Column of ``.obs`` with each cell's cluster within its batch (labels may repeat across batches:
        a cluster is a (batch, label) pair). ``None``: mnnkit clusters each batch itself with k-means
        (scikit-learn, ``n_clusters`` clusters, seeded by ``rng``) on the cosine-normalised ``subset``
        genes, and stores the labels in ``.obs[f"{key_added}_cluster"]``.
    n_clusters
        Clusters per batch when ``clusters=None`` (at most the batch's cells).
    subset
        Genes for the PCA and the cosine norm, as in :func:`mnnkit.fast_mnn`.
    layer
        Layer to use instead of ``.X``.
    cos_norm
        Cosine-normalise the cells first (batchelor's default).
    merge_order
        As in :func:`mnnkit.fast_mnn` (default order, a list, a tree of nested lists, or ``"auto"``).
    min_batch_skip
        As in :func:`mnnkit.fast_mnn`.
    key_added
        The key every output is written under: ``.obsm[key_added]`` (cells x components),
        ``.varm[key_added]`` (the rotation; NaN outside ``subset``) and ``.uns[key_added]``.
    copy
        Return a corrected copy instead of writing into ``adata``.
    rng
        Randomness of the k-means when ``clusters=None`` (the centroid PCA is exact): an int seed >= 0,
        a :class:`numpy.random.Generator` (used as given) or None (fresh entropy).
    n_jobs, progress
        As in :func:`mnnkit.fast_mnn`.

    Returns
    -------
    ``None`` (or the corrected copy with ``copy=True``). ``.uns[key_added]`` holds the merge
    information of the centroid merge (steps with ``pairs`` as rows of the centroid table), the PCA's
    ``center``, and ``clusters``: the centroid table (``batch``, ``cluster``, ``meta``: the
    meta-cluster, numbered from 1 as batchelor does) with the centroids' PCs before (``pcs``) and after
    (``corrected``) the merge.

    Notes
    -----
    Memory: a float64 copy of the subset genes (sparse stays sparse), the cells' PCs (cells x
    components) and, per batch, its cells' distances to its centroids (cells x its clusters).
    """
    adata = check_adata(adata, "mnnkit.cluster_mnn")
    check_int(n_clusters, "n_clusters", minimum=1)
    check_bool(cos_norm, "cos_norm")
    check_real(min_batch_skip, "min_batch_skip", minimum=0.0)
    check_key_added(key_added)
    batches = resolve_batches(adata, batch_key)
    plan = resolve_merge_plan(merge_order, batches.names)
    labels = None if clusters is None else _cluster_labels(adata, clusters)
    seed = as_seed(rng)
    matrix = get_matrix(adata, layer)
    cols = resolve_subset(adata, subset)
    warn_batch_problems(batches, batch_key, 1, single_output="the cells' uncorrected PCs")

    started = time.perf_counter()
    logger.info("computing clusterMNN correction of %d batches: %s", len(batches.names), ", ".join(batches.names))
    with job_threads(n_jobs):
        x = cosine_columns(matrix, cols, cols, cos_norm)
        if labels is None:
            labels = _kmeans_labels(x, batches, n_clusters, seed)
        table, cell_centroid = _centroid_table(labels, batches)
        centroid_members = [np.flatnonzero(table["batch_code"].to_numpy() == b) for b in range(len(batches.names))]
        centroids = _centroids(x, cell_centroid, len(table))
        d = len(table) - 1
        if d < 1:
            msg = f"cluster_mnn needs at least two clusters in all, got {len(table)}"
            raise ValueError(msg)
        pca = multi_batch_pca(centroids, centroid_members, d, solver="exact", rng=0)
        uncorrected = np.ascontiguousarray(pca.scores)
        state = FastMergeState(
            data=uncorrected.copy(),
            members=centroid_members,
            params=FastParams(k=1, ndist=CENTROID_NDIST, min_batch_skip=float(min_batch_skip)),
            search=ExactSearch(),
        )
        centroid_batches = Batches(names=batches.names, members=centroid_members)
        with step_reporter(centroid_batches, "clusterMNN", progress) as report:
            run_merges(state, plan, progress=report)
        cell_pcs = np.asarray(x @ pca.rotation) - pca.center @ pca.rotation
        corrected = _move_cells(cell_pcs, uncorrected, state.data, batches, centroid_members, cell_centroid)

    target = adata.copy() if copy else adata
    if clusters is None:
        target.obs[f"{key_added}_cluster"] = pd.Categorical(labels.astype(str))
    dtype = output_dtype(matrix.dtype)
    target.obsm[key_added] = corrected.astype(dtype, copy=False)
    genes = np.arange(adata.n_vars) if cols is None else cols
    rotation = np.full((adata.n_vars, d), np.nan)
    rotation[genes] = pca.rotation
    target.varm[key_added] = rotation.astype(dtype, copy=False)
    centroid_names = [f"{name}:{cluster}" for name, cluster in zip(table["batch"], table["cluster"], strict=True)]
    uns = merge_uns(
        "cluster", plan, centroid_names, centroid_batches, state.records,
        params={
            "batch_key": batch_key, "clusters": clusters, "n_clusters": None if clusters else n_clusters,
            "layer": layer, "subset": subset if isinstance(subset, str) else (None if subset is None else "given"),
            "cos_norm": cos_norm, "min_batch_skip": float(min_batch_skip), "d": d, "seed": None if clusters else seed,
        },
    )  # fmt: skip
    center = np.full(adata.n_vars, np.nan)
    center[genes] = pca.center
    uns["center"] = center
    uns["clusters"] = {
        "batch": table["batch"].to_numpy(dtype=object),
        "cluster": table["cluster"].to_numpy(dtype=object),
        "meta": _meta_clusters(len(table), [r.pairs for r in state.records]),
        "pcs": uncorrected,
        "corrected": np.asarray(state.data),
    }
    target.uns[key_added] = uns
    logger.info(finished(started))
    return target if copy else None


def _cluster_labels(adata: AnnData, clusters: object) -> np.ndarray:
    return obs_column(adata, clusters, "clusters", "a cluster").to_numpy()


def _centroid_table(labels: np.ndarray, batches: Batches) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per (batch, cluster), batches in order and clusters sorted within each; each cell's row."""
    rows, cell_centroid = [], np.empty(labels.size, dtype=np.int64)
    for b, (name, members) in enumerate(zip(batches.names, batches.members, strict=True)):
        values = labels[members]
        ids = sorted(pd.unique(values), key=label_sort_key)
        for cluster in ids:
            cell_centroid[members[values == cluster]] = len(rows)
            rows.append((name, b, cluster))
    return pd.DataFrame(rows, columns=["batch", "batch_code", "cluster"]), cell_centroid


def _centroids(x, cell_centroid: np.ndarray, n_centroids: int) -> np.ndarray:
    """Mean (cosine-normalised) expression of each centroid's cells, ``(n_centroids, genes)``, dense."""
    indicator = sp.csr_matrix(
        (np.ones(cell_centroid.size), (cell_centroid, np.arange(cell_centroid.size))),
        shape=(n_centroids, cell_centroid.size),
    )
    sums = indicator @ x
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    return np.ascontiguousarray(sums / np.bincount(cell_centroid, minlength=n_centroids)[:, None])


def _kmeans_labels(x, batches: Batches, n_clusters: int, seed: int) -> np.ndarray:
    """Per-batch k-means labels (1-based, as batchelor's examples) on the cosine-normalised subset genes."""
    from sklearn.cluster import KMeans

    labels = np.empty(x.shape[0], dtype=np.int64)
    for members in batches.members:
        k = min(n_clusters, members.size)
        found = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(x[members])
        labels[members] = found + 1
    return labels


def _move_cells(
    cell_pcs: np.ndarray,
    uncorrected: np.ndarray,
    corrected: np.ndarray,
    batches: Batches,
    centroid_members: list[np.ndarray],
    cell_centroid: np.ndarray,
) -> np.ndarray:
    """Each cell plus the Gaussian-weighted moves of its batch's centroids (batchelor's clusterMNN)."""
    out = np.array(cell_pcs, dtype=np.float64, copy=True)
    for members, own in zip(batches.members, centroid_members, strict=True):
        centres = uncorrected[own]
        moves = corrected[own] - centres
        d2 = (
            np.einsum("ij,ij->i", out[members], out[members])[:, None]
            - 2.0 * out[members] @ centres.T
            + np.einsum("ij,ij->i", centres, centres)[None, :]
        )
        d2 = np.maximum(d2, 0.0)
        nearest = d2.min(axis=1)
        scale = float(np.median(np.sqrt(nearest))) ** 2
        if scale > 0:
            logits = -(d2 - nearest[:, None]) / scale  # shifted: the nearest centroid has weight 1
            weights = np.exp(logits)
        else:  # every cell sits on a centroid: it moves with it
            weights = (d2 == nearest[:, None]).astype(np.float64)
        weights /= weights.sum(axis=1, keepdims=True)
        out[members] += weights @ moves
    return out


def _meta_clusters(n_centroids: int, step_pairs: list[np.ndarray]) -> np.ndarray:
    """Connected components of the centroids linked by any MNN pair, numbered from 1 in order of first centroid."""
    parent = np.arange(n_centroids)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pairs in step_pairs:
        for a, b in np.asarray(pairs, dtype=np.int64):
            ra, rb = root(int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    numbers: dict[int, int] = {}
    return np.array([numbers.setdefault(root(i), len(numbers) + 1) for i in range(n_centroids)], dtype=np.int64)
