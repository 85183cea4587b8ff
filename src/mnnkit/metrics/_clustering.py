"""Agreement of a clustering with labels: adjusted Rand index, normalised mutual information, KMeans ARI/NMI."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_seed
from mnnkit._validation import check_int
from mnnkit.metrics._inputs import as_embedding, as_labels, check_count

__all__ = ["adjusted_rand_index", "ari_nmi", "normalized_mutual_info"]


def _contingency(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sparse contingency table of two labelings (all float64).

    Returns the counts of its non-zero cells, the row and column marginal of each such cell, and both
    full marginals.
    """
    n_obs = len(a)
    codes_a, names_a = as_labels(a, n_obs, "labels_true")
    codes_b, names_b = as_labels(b, n_obs, "labels_pred")
    keys, cells = np.unique(codes_a * names_b.size + codes_b, return_counts=True)
    rows = np.bincount(codes_a, minlength=names_a.size).astype(np.float64)
    cols = np.bincount(codes_b, minlength=names_b.size).astype(np.float64)
    return cells.astype(np.float64), rows[keys // names_b.size], cols[keys % names_b.size], rows, cols


def _pairs(counts: np.ndarray) -> float:
    return float(np.sum(counts * (counts - 1.0)) / 2.0)


def adjusted_rand_index(labels_true: Any, labels_pred: Any) -> float:
    """Adjusted Rand index of two labelings of the same cells (Hubert & Arabie 1985).

    The Rand index (fraction of cell pairs on which the labelings agree) corrected for chance: 1 for
    identical partitions (up to renaming), about 0 for independent ones. Equals scikit-learn's
    ``adjusted_rand_score``.

    Parameters
    ----------
    labels_true, labels_pred
        One label per cell each (array-like, same length, no missing values).

    Returns
    -------
    float
        The ARI, at most 1.

    Notes
    -----
    Memory ``O(n_cells)``: only the non-zero cells of the contingency table are formed.
    """
    cells, _, _, rows, cols = _contingency(labels_true, labels_pred)
    n_obs = rows.sum()
    both = _pairs(cells)
    pairs_true = _pairs(rows)
    pairs_pred = _pairs(cols)
    total = n_obs * (n_obs - 1) / 2.0
    if total == 0:
        return 1.0
    expected = pairs_true * pairs_pred / total
    best = (pairs_true + pairs_pred) / 2.0
    if best == expected:  # both trivial partitions (one cluster, or all singletons): identical
        return 1.0
    return float((both - expected) / (best - expected))


def _entropy(counts: np.ndarray, n_obs: float) -> float:
    p = counts[counts > 0] / n_obs
    return float(-np.sum(p * np.log(p)))


def normalized_mutual_info(labels_true: Any, labels_pred: Any) -> float:
    """Normalised mutual information of two labelings, arithmetic-mean normalisation.

    ``NMI = I(true; pred) / ((H(true) + H(pred)) / 2)`` with natural logarithms: 1 for identical
    partitions, 0 for independent ones. Equals scikit-learn's ``normalized_mutual_info_score`` (default
    ``average_method="arithmetic"``), including its conventions: 1 when both labelings have a single
    label, and the denominator floored at machine epsilon.

    Parameters
    ----------
    labels_true, labels_pred
        As in :func:`adjusted_rand_index`.

    Returns
    -------
    float
        The NMI in ``[0, 1]``. Memory ``O(n_cells)``.
    """
    cells, cell_rows, cell_cols, rows, cols = _contingency(labels_true, labels_pred)
    n_obs = rows.sum()
    if rows.size == cols.size == 1 or n_obs == 0:
        return 1.0
    mutual = max(float(np.sum(cells / n_obs * np.log(cells * n_obs / (cell_rows * cell_cols)))), 0.0)
    norm = (_entropy(rows, n_obs) + _entropy(cols, n_obs)) / 2.0
    return mutual / max(norm, float(np.finfo(np.float64).eps))


def ari_nmi(
    X: Any,
    labels: Any,
    *,
    n_clusters: int | None = None,
    n_init: int = 1,
    rng: RngLike = 0,
) -> dict[str, float]:
    """Cluster an embedding with KMeans and score the clusters against ``labels`` with ARI and NMI.

    The computation of scib-metrics' ``nmi_ari_cluster_labels_kmeans``: KMeans (Euclidean, greedy
    k-means++ initialisation, at most 300 Lloyd iterations) with as many clusters as there are labels and
    a single initialisation (``n_init=1``), then :func:`adjusted_rand_index` and
    :func:`normalized_mutual_info` (arithmetic normalisation) of the clusters against the labels.
    KMeans here is scikit-learn's; scib-metrics runs its own JAX KMeans with the same algorithm but other
    random draws, so the two give the same numbers when the clustering does not depend on the start
    (well-separated labels; tested) and can differ otherwise, as two seeds can. Raise ``n_init`` for a
    steadier clustering (the best of ``n_init`` runs by inertia). scib-metrics' Leiden variant
    (``nmi_ari_cluster_labels_leiden``, best NMI over 10 resolutions) is not reproduced here: for another
    clustering, call :func:`adjusted_rand_index` and :func:`normalized_mutual_info` on it directly.

    Parameters
    ----------
    X
        Embedding, dense ``(n_cells, n_dims)`` real array.
    labels
        Cell type of each cell: the partition the KMeans clusters are scored against.
    n_clusters
        Number of KMeans clusters; default the number of distinct labels.
    n_init
        KMeans initialisations; the run with the lowest inertia is kept. 1 (default) as scib-metrics.
    rng
        Randomness of the KMeans initialisations: an int seed >= 0 (same seed, same result), a
        :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from the
        operating system: a different result on every call).

    Returns
    -------
    dict
        ``{"ari": float, "nmi": float}``.

    Notes
    -----
    Memory: KMeans' ``O(n_cells * (n_dims + n_clusters))``.
    """
    from sklearn.cluster import KMeans

    x = as_embedding(X)
    codes, names = as_labels(labels, x.shape[0], "labels")
    n_clusters = names.size if n_clusters is None else check_int(n_clusters, "n_clusters")
    if not 1 <= n_clusters <= x.shape[0]:
        msg = f"n_clusters must be between 1 and n_cells = {x.shape[0]}, got {n_clusters}."
        raise ValueError(msg)
    n_init = check_count(n_init, "n_init")
    # scib-metrics' settings, spelled out so a change of scikit-learn's defaults cannot move them
    seed = as_seed(rng)
    kmeans = KMeans(int(n_clusters), init="k-means++", n_init=n_init, max_iter=300, tol=1e-4, random_state=seed)
    clusters = kmeans.fit_predict(x)
    return {"ari": adjusted_rand_index(codes, clusters), "nmi": normalized_mutual_info(codes, clusters)}
