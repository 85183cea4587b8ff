"""kBET: chi-square tests of the batch composition of neighbourhoods, globally and per label as in scIB.

:func:`kbet_per_label` is scIB's kBET (the one scib-metrics' ``Benchmarker`` reports as "KBET");
:func:`kbet_global_acceptance` is the simpler test over all cells at once (scib-metrics' ``kbet``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh
from scipy.special import chdtrc

from mnnkit._random import RngLike, as_seed, keyed_generator
from mnnkit._threads import thread_limits
from mnnkit._validation import check_bool, check_int, is_real
from mnnkit.metrics import _kernels
from mnnkit.metrics._inputs import NeighborsInput, as_labels, n_cells_of, resolve_neighbors
from mnnkit.neighbors import KNeighborsLike, NeighborResult, knn

__all__ = ["kbet_global_acceptance", "kbet_per_label", "kbet_pvalues"]

logger = logging.getLogger("mnnkit")

#: scIB's kBET per label: labels with fewer cells are skipped (NaN).
_MIN_LABEL_CELLS = 10
#: scIB's neighbourhood size of a label: a quarter of its mean batch size, clipped to this range.
_K0_RANGE = (10, 70)
#: Cells in components smaller than this multiple of the neighbourhood size are left out of a label's test ...
_COMPONENT_FACTOR = 3
#: ... and if they are more than this share of the label's cells, the label scores 0 (every cell rejected).
_MIN_TESTED_SHARE = 0.75
#: scIB's bound on ``k0 * n_cells`` (the largest int32).
_SIZE_MAX = 2**31 - 1
#: umap-learn's bisection settings for the fuzzy-set bandwidths (``smooth_knn_dist``).
_UMAP_TOL = 1e-5
_UMAP_ITER = 64
_UMAP_MIN_SCALE = 1e-3
#: Added to the diffusion eigenvalues (float32) before the ``e / (1 - e)`` scaling, as scib-metrics does.
_EIGEN_EPS = np.float32(1e-8)


def _check_alpha(alpha: float) -> float:
    if not is_real(alpha) or not 0 < alpha < 1:
        msg = f"alpha must be a number in (0, 1), got {alpha!r}."
        raise ValueError(msg)
    return float(alpha)


def _pvalues(indices: np.ndarray, codes: np.ndarray, n_batches: int) -> np.ndarray:
    """Pearson chi-square p-value of each row's batch counts among ``indices`` against the global composition."""
    n_obs, k = indices.shape
    flat = np.repeat(np.arange(n_obs, dtype=np.int64) * n_batches, k) + codes[indices.ravel()]
    observed = np.bincount(flat, minlength=n_obs * n_batches).reshape(n_obs, n_batches).astype(np.float64)
    expected = k * np.bincount(codes, minlength=n_batches) / n_obs
    statistic = np.sum((observed - expected) ** 2 / expected, axis=1)
    return chdtrc(n_batches - 1, statistic)


def kbet_pvalues(
    X: NeighborsInput,
    batch: Any,
    *,
    n_neighbors: int = 50,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> np.ndarray:
    """Per-cell p-value of Pearson's chi-square test of the batch counts among its ``n_neighbors`` neighbours.

    Observed: how many of the cell's neighbours come from each batch. Expected: ``n_neighbors`` times each
    batch's share of all cells. Statistic ``sum (obs - exp)^2 / exp`` against a chi-square law with
    ``n_batches - 1`` degrees of freedom (Büttner et al. 2019).

    Parameters
    ----------
    X
        Embedding, :class:`~mnnkit.neighbors.NeighborResult` (self excluded; first ``n_neighbors``
        columns) or square sparse kNN distance graph; see :func:`graph_connectivity`.
    batch
        Batch of each cell; at least two batches.
    n_neighbors
        Neighbourhood size ``k`` (the cell itself is not counted).
    neighbors_method, rng
        Neighbour search for an embedding; see :func:`mnnkit.neighbors.knn`.

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` p-values. Memory ``O(n_cells * (n_neighbors + n_batches))``.
    """
    n_obs = n_cells_of(X)
    codes, names = as_labels(batch, n_obs, "batch")
    if names.size < 2:
        msg = "kbet needs at least 2 batches in batch."
        raise ValueError(msg)
    nn = resolve_neighbors(X, n_neighbors, neighbors_method=neighbors_method, rng=rng)
    return _pvalues(nn.indices, codes, int(names.size))


def kbet_global_acceptance(
    X: NeighborsInput,
    batch: Any,
    *,
    n_neighbors: int = 50,
    alpha: float = 0.05,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> float:
    """Global kBET acceptance rate: the fraction of all cells whose neighbourhood batch mix passes the test.

    A cell is accepted when :func:`kbet_pvalues` gives ``p >= alpha``. Well-mixed batches give about
    ``1 - alpha`` (the test's false-rejection rate), fully separated batches about 0; higher = better mixed.

    This is one test over all cells against the global batch composition, which is what scib-metrics'
    ``kbet`` computes (equal to its acceptance rate when given the same neighbour lists), **not** scIB's
    kBET, which tests each cell type separately: that one is :func:`kbet_per_label`. Unlike kBET's R
    package, every cell is tested (no subsample) with a fixed neighbourhood size, and the cell itself is
    not part of its neighbourhood (scib-metrics counts every column of its neighbour lists, which include
    the cell itself when they come from its own searches).

    Parameters
    ----------
    X, batch, n_neighbors, neighbors_method, rng
        See :func:`kbet_pvalues`.
    alpha
        Test level, in ``(0, 1)``.

    Returns
    -------
    float
        Acceptance rate in ``[0, 1]``.
    """
    alpha = _check_alpha(alpha)
    pvalues = kbet_pvalues(X, batch, n_neighbors=n_neighbors, neighbors_method=neighbors_method, rng=rng)
    return float(np.mean(pvalues >= alpha))


def _umap_connectivities(nn: NeighborResult) -> sparse.csr_matrix:
    """UMAP's symmetric fuzzy-set graph of a self-excluded kNN result (what scanpy calls connectivities).

    Each listed neighbour ``j`` of ``i`` gets ``w_ij = exp(-(d_ij - rho_i) / sigma_i)`` (1 within
    ``rho_i``), see :func:`mnnkit.metrics._kernels.umap_bandwidths`; the graph is the fuzzy union
    ``W + W^T - W * W^T``, float32 like umap-learn's ``fuzzy_simplicial_set`` with the cell itself as its
    first neighbour, i.e. ``n_neighbors + 1`` neighbours in umap's and scanpy's counting.
    """
    distances = np.ascontiguousarray(nn.distances, dtype=np.float32)
    n_obs, k = distances.shape
    rho = np.empty(n_obs, dtype=np.float32)
    sigma = np.empty(n_obs, dtype=np.float32)
    _kernels.umap_bandwidths(distances, np.log2(k + 1.0), _UMAP_TOL, _UMAP_ITER, _UMAP_MIN_SCALE, rho, sigma)
    weights = np.empty_like(distances)
    _kernels.umap_weights(distances, rho, sigma, weights)
    indptr = np.arange(0, n_obs * k + 1, k, dtype=np.int64)
    directed = sparse.csr_matrix((weights.ravel(), nn.indices.ravel(), indptr), shape=(n_obs, n_obs))
    directed.eliminate_zeros()  # weights that underflowed are no edges, as in umap
    transposed = directed.T.tocsr()
    union = sparse.csr_matrix((directed + transposed) - directed.multiply(transposed))
    union.eliminate_zeros()
    return union


def _diffusion_embedding(graph: sparse.csr_matrix, n_comps: int, seed: tuple[int, ...]) -> np.ndarray:
    """Multiscale diffusion map of a connectivity graph (scib-metrics' ``diffusion_nn`` embedding).

    Density-normalised kernel ``K = D^-1 G D^-1`` (``D`` the degrees), symmetric transition matrix
    ``T = Z^-1 K Z^-1`` (``Z^2`` the degrees of ``K``), its ``n_comps`` eigenpairs of largest magnitude
    (ARPACK, started from a seeded vector), rounded to float32 as scib-metrics does; each eigenvector is
    scaled by ``e / (1 - e)`` for its eigenvalue ``e`` (plus 1e-8), except an eigenvalue that is 1 in float32
    (the stationary direction of each connected component), which keeps weight 1. Euclidean distances in
    this embedding approximate diffusion distances summed over all time scales.
    """
    g = graph.astype(np.float64)
    degree = np.asarray(g.sum(axis=0)).ravel()
    inv = sparse.diags(1.0 / degree)
    kernel = inv @ g @ inv
    z = sparse.diags(1.0 / np.sqrt(np.asarray(kernel.sum(axis=0)).ravel()))
    transitions = (z @ kernel @ z).tocsr()
    start = keyed_generator(*seed).uniform(-1.0, 1.0, graph.shape[0])
    # ARPACK's dense steps are BLAS calls on vectors of one label's cells: too small to share among
    # threads, and OpenBLAS' waiting threads made them up to 50x slower on a busy 2-core machine. One
    # thread also makes the result independent of the BLAS thread count.
    with thread_limits(blas=1):
        values, vectors = eigsh(transitions, k=n_comps, which="LM", v0=start)
    values = values.astype(np.float32) + _EIGEN_EPS
    stationary = values == np.float32(1.0)
    scale = np.ones_like(values)
    scale[~stationary] = values[~stationary] / (np.float32(1.0) - values[~stationary])
    return vectors.astype(np.float32) * scale.astype(np.float32)


def _label_acceptance(
    graph: sparse.csr_matrix,
    codes: np.ndarray,
    k0: int,
    alpha: float,
    n_comps: int,
    neighbors_method: str | KNeighborsLike,
    seed: tuple[int, ...],
) -> float:
    """Acceptance rate of the kBET test within one label, on diffusion-map neighbourhoods (self + ``k0``)."""
    n_obs = graph.shape[0]
    embedding = _diffusion_embedding(graph, min(n_comps, n_obs - 1), seed)
    # scIB's neighbourhood is the cell and its k0 nearest others; a 10-cell label has only 9 others
    k = min(k0, n_obs - 1)
    nn = knn(embedding, embedding, k, method=neighbors_method, rng=seed[0], exclude_self=True)
    indices = np.hstack([np.arange(n_obs, dtype=np.int64)[:, None], nn.indices])
    present, local = np.unique(codes, return_inverse=True)
    return float(np.mean(_pvalues(indices, local.astype(np.int64), int(present.size)) >= alpha))


def kbet_per_label(
    X: NeighborsInput,
    batch: Any,
    labels: Any,
    *,
    n_neighbors: int = 50,
    alpha: float = 0.05,
    diffusion_n_comps: int = 100,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
    return_table: bool = False,
) -> float | tuple[float, pd.DataFrame]:
    """The kBET of scIB: the kBET acceptance rate of each cell type, averaged over cell types.

    The computation of scib-metrics' ``kbet_per_label`` (Luecken et al. 2022), which its ``Benchmarker``
    reports as "KBET"; higher = batches better mixed within cell types.

    1. The kNN graph (``n_neighbors`` others per cell) is turned into UMAP connectivities, the symmetric
       fuzzy-set graph that scanpy's ``sc.pp.neighbors`` also computes.
    2. For each label, on the connectivities among its cells: labels with fewer than 10 cells or one batch
       are skipped (NaN). The neighbourhood size is ``k0 = clip(floor(mean batch size in the label / 4),
       10, 70)``. If the label's graph falls into several connected components, only components of at
       least ``3 * k0`` cells are tested, and the label scores 0 when they hold less than 75% of its cells.
    3. The tested cells are embedded with a multiscale diffusion map of their graph
       (``diffusion_n_comps`` components); each cell's neighbourhood is itself and its ``k0`` nearest
       cells in that embedding; each neighbourhood's batch counts are tested against the batch
       composition of the tested cells (Pearson's chi-square, ``n_batches - 1`` degrees of freedom); the
       label's score is the share of cells with ``p >= alpha``.
    4. The result is the mean score over the labels that were not skipped.

    Parameters
    ----------
    X
        Embedding (a kNN graph with ``n_neighbors`` is built, self excluded), a
        :class:`~mnnkit.neighbors.NeighborResult` over the same cells (first ``n_neighbors`` columns) or a
        square sparse kNN distance graph.
    batch
        Batch of each cell; at least two batches.
    labels
        Cell type of each cell.
    n_neighbors
        Neighbours per cell (self excluded) of the graph the connectivities are computed from.
        scib-metrics' neighbour lists include the cell itself: its ``Benchmarker`` (50 neighbours) is
        ``n_neighbors=49`` here.
    alpha
        Test level, in ``(0, 1)``.
    diffusion_n_comps
        Diffusion-map components (at most the number of tested cells minus 1).
    neighbors_method
        Neighbour search for an embedding ``X`` and in each diffusion map: ``"exact"`` (default),
        ``"pynndescent"`` (what scib-metrics uses; approximate) or a fitted estimator; see
        :func:`mnnkit.neighbors.knn`.
    rng
        Randomness of the eigensolver's start vectors and of pynndescent: an int seed >= 0 (same seed, same
        result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy
        from the operating system: a different result on every call).
    return_table
        Also return a table with one row per label.

    Returns
    -------
    float or (float, pandas.DataFrame)
        The mean acceptance rate over the labels that were scored, in ``[0, 1]`` (NaN, with a log message,
        if every label was skipped). With ``return_table``, also a DataFrame indexed by label with columns
        ``n_cells``, ``n_batches``, ``k0`` (0 when skipped), ``n_tested`` (cells in the test), ``kbet``
        (NaN when skipped) and ``note``.

    Notes
    -----
    Differences from scib-metrics 0.5, both in edge cases: scib-metrics lowers ``diffusion_n_comps`` for
    a label with at most ``diffusion_n_comps`` tested cells and keeps the lowered value for every later
    label (in sorted label order); here each label uses ``min(diffusion_n_comps, n_tested - 1)``. For a
    label of exactly 10 cells with ``k0 = 10``, scib-metrics' search pads the neighbourhood with an invalid
    index (-1, read as the last cell); here the 9 other cells are used. With ``neighbors_method="exact"``
    the diffusion-map neighbours are exact, where scib-metrics' pynndescent search is approximate.

    Time: one eigen-decomposition (ARPACK) and one neighbour search per label, roughly
    ``O(n_label * (n_neighbors + diffusion_n_comps) * diffusion_n_comps)`` each; memory: the
    connectivities (``~24 * n_cells * n_neighbors`` bytes) and a label's ``n_label x diffusion_n_comps``
    embedding.
    """
    n_obs = n_cells_of(X)
    batch_codes, batch_names = as_labels(batch, n_obs, "batch")
    label_codes, label_names = as_labels(labels, n_obs, "labels")
    if batch_names.size < 2:
        msg = "kbet_per_label needs at least 2 batches in batch."
        raise ValueError(msg)
    alpha = _check_alpha(alpha)
    n_comps = check_int(diffusion_n_comps, "diffusion_n_comps", minimum=1)
    return_table = check_bool(return_table, "return_table")
    seed = as_seed(rng)
    nn = resolve_neighbors(X, n_neighbors, neighbors_method=neighbors_method, rng=seed)
    graph = _umap_connectivities(nn)

    rows = []
    for code, name in enumerate(label_names):
        members = np.nonzero(label_codes == code)[0]
        codes = batch_codes[members]
        sizes = np.bincount(codes)
        sizes = sizes[sizes > 0]
        row = {"label": name, "n_cells": int(members.size), "n_batches": int(sizes.size), "k0": 0, "n_tested": 0}
        if members.size < _MIN_LABEL_CELLS or sizes.size == 1:
            rows.append(row | {"kbet": np.nan, "note": "skipped: fewer than 10 cells or a single batch"})
            logger.debug("kbet_per_label: label %r skipped (%d cells, %d batches)", name, members.size, sizes.size)
            continue
        k0 = int(np.clip(np.floor(sizes.mean() / 4), *_K0_RANGE))
        if k0 * members.size >= _SIZE_MAX:
            k0 = _SIZE_MAX // members.size
        row["k0"] = k0
        sub = graph[members][:, members].tocsr()
        n_components, component = connected_components(sub, directed=False)
        keep = np.arange(members.size)
        note = "one connected component"
        if n_components > 1:
            large = np.bincount(component) >= _COMPONENT_FACTOR * k0
            keep = np.nonzero(large[component])[0]
            note = f"{int(large.sum())} of {n_components} components tested"
            if keep.size < _MIN_TESTED_SHARE * members.size:
                rows.append(row | {"kbet": 0.0, "note": f"{note}: under 75% of the cells, all rejected"})
                logger.debug("kbet_per_label: label %r scores 0 (%s)", name, note)
                continue
            sub = sub[keep][:, keep].tocsr()
        score = _label_acceptance(sub, codes[keep], k0, alpha, n_comps, neighbors_method, (seed, code))
        rows.append(row | {"n_tested": int(keep.size), "kbet": score, "note": note})
        logger.debug("kbet_per_label: label %r, k0 %d, %d cells tested: %.4f", name, k0, keep.size, score)

    table = pd.DataFrame(rows).set_index("label")
    scored = table["kbet"].dropna()
    if scored.empty:
        logger.warning("kbet_per_label: every label was skipped (fewer than 10 cells or one batch); returning NaN.")
        value = float("nan")
    else:
        value = float(scored.mean())
    return (value, table) if return_table else value
