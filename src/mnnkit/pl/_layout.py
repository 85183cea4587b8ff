"""A 2-d UMAP layout in NumPy and SciPy, for plots that should not wait for umap-learn's compilation.

UMAP (McInnes, Healy and Melville 2018, arXiv:1802.03426) in two parts, as umap-learn defines them:

* the fuzzy graph: each cell's ``n_neighbors - 1`` nearest other cells (exact search), its distance to
  the nearest ``rho`` and a bandwidth ``sigma`` found by bisection so that the memberships
  ``exp(-(d - rho) / sigma)`` sum to ``log2(n_neighbors)`` (``sigma`` at least 1e-3 times the mean
  neighbour distance); the two directions combined as ``w + w' - w * w'``;
* the layout: a spectral start (the normalised Laplacian's first non-trivial eigenvectors, scaled to a
  10 x 10 box), then ``n_epochs`` of stochastic gradient steps on the fuzzy cross-entropy with the
  curve ``1 / (1 + a d^(2b))`` fitted to ``min_dist`` and ``spread``: each edge attracts its two cells
  at a rate proportional to its weight, each attraction comes with 5 repulsions from random cells,
  gradients clipped at 4 and the step size falling linearly to 0.

The one departure from umap-learn: within an epoch, all moves are computed from the positions at the
epoch's start and then added, instead of one edge after another, so that an epoch is a few vectorised
NumPy operations. The pictures are umap-learn's in kind (the same graph, the same objective), not its
coordinates. Memory: ``O(n_cells * n_neighbors)``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["fuzzy_graph", "umap_layout"]

#: umap-learn's defaults (and scanpy's ``sc.tl.umap``'s): repulsions per attraction, the curve's shape
NEGATIVE_SAMPLE_RATE = 5
SPREAD = 1.0
MIN_DIST = 0.5
#: bisection steps for each cell's bandwidth, and the tolerance on the membership sum
BANDWIDTH_STEPS = 64
BANDWIDTH_TOLERANCE = 1e-5
#: a bandwidth is at least this share of the cell's mean neighbour distance
MIN_BANDWIDTH_SCALE = 1e-3


def fuzzy_graph(indices: np.ndarray, distances: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """UMAP's symmetric fuzzy graph from each cell's nearest other cells.

    Parameters
    ----------
    indices, distances
        ``n x (n_neighbors - 1)``: each cell's nearest other cells and their distances, in increasing
        order (the cell itself not included).
    n_neighbors
        UMAP's ``n_neighbors``, which counts the cell itself (the membership target is its ``log2``).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``n x n`` memberships ``w + w.T - w * w.T``.
    """
    n_cells = indices.shape[0]
    rho = np.zeros(n_cells)
    positive = distances > 0
    has_positive = positive.any(axis=1)
    rho[has_positive] = distances[has_positive, positive[has_positive].argmax(axis=1)]
    # distances beyond the nearest; those at or below it (duplicates, ties) have membership 1: exp(0)
    excess = np.maximum(distances - rho[:, None], 0.0)
    target = np.log2(n_neighbors)
    lo = np.zeros(n_cells)
    hi = np.full(n_cells, np.inf)
    sigma = np.ones(n_cells)
    settled = np.zeros(n_cells, dtype=bool)
    for _ in range(BANDWIDTH_STEPS):
        total = np.exp(-excess / sigma[:, None]).sum(axis=1)
        settled |= np.abs(total - target) < BANDWIDTH_TOLERANCE
        if settled.all():
            break
        above = (total > target) & ~settled
        below = (total <= target) & ~settled
        hi = np.where(above, sigma, hi)
        lo = np.where(below, sigma, lo)
        sigma = np.where(above, (lo + hi) / 2.0, sigma)
        sigma = np.where(below, np.where(np.isinf(hi), sigma * 2.0, (lo + hi) / 2.0), sigma)
    mean_row = distances.mean(axis=1)
    floor = MIN_BANDWIDTH_SCALE * np.where(has_positive, mean_row, distances.mean())
    sigma = np.maximum(sigma, floor)
    weights = np.exp(-excess / sigma[:, None])
    rows = np.repeat(np.arange(n_cells), indices.shape[1])
    graph = sparse.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n_cells, n_cells))
    transpose = graph.T.tocsr()
    return (graph + transpose - graph.multiply(transpose)).tocsr()


def _curve(min_dist: float, spread: float) -> tuple[float, float]:
    """``a, b`` of ``1 / (1 + a d^(2b))`` fitted to 1 below ``min_dist`` and ``exp(-(d - min_dist) / spread)`` above."""
    from scipy.optimize import curve_fit

    d = np.linspace(0.0, 3.0 * spread, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2.0 * b)), d, target)
    return float(a), float(b)


def _start(graph: sparse.csr_matrix, rng: np.random.Generator) -> np.ndarray:
    """Spectral start in a 10 x 10 box (random where the graph falls apart or the eigensolver fails)."""
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import ArpackError, eigsh

    n_cells = graph.shape[0]
    if n_cells > 3 and connected_components(graph, directed=False)[0] == 1:
        degree = np.asarray(graph.sum(axis=1)).ravel()
        scale = sparse.diags(1.0 / np.sqrt(degree))
        laplacian = sparse.identity(n_cells, format="csr") - scale @ graph @ scale
        try:
            values, vectors = eigsh(laplacian, k=3, which="SM", tol=1e-4, v0=np.ones(n_cells), maxiter=5 * n_cells)
            start = vectors[:, np.argsort(values)[1:3]]
            start = 10.0 * start / np.abs(start).max() + rng.normal(scale=1e-4, size=start.shape)
        except ArpackError:
            start = rng.uniform(-10.0, 10.0, size=(n_cells, 2))
    else:
        start = rng.uniform(-10.0, 10.0, size=(n_cells, 2))
    low, high = start.min(axis=0), start.max(axis=0)
    return 10.0 * (start - low) / np.where(high > low, high - low, 1.0)


def _optimise(graph: sparse.csr_matrix, start: np.ndarray, n_epochs: int, rng: np.random.Generator) -> np.ndarray:
    """UMAP's stochastic gradient epochs from ``start`` (edges sampled in proportion to their weight)."""
    a, b = _curve(MIN_DIST, SPREAD)
    edges = graph.tocoo()
    keep = edges.data >= edges.data.max() / n_epochs
    head, tail, weight = edges.row[keep], edges.col[keep], edges.data[keep]
    every = weight.max() / weight  # epochs between two samples of an edge
    every_negative = every / NEGATIVE_SAMPLE_RATE
    next_sample = every.copy()
    next_negative = every_negative.copy()
    layout = start.copy()
    n_cells = layout.shape[0]
    for epoch in range(n_epochs):
        step = 1.0 - epoch / n_epochs
        active = np.flatnonzero(next_sample <= epoch)
        if active.size == 0:
            continue
        i, j = head[active], tail[active]
        diff = layout[i] - layout[j]
        d2 = np.einsum("ij,ij->i", diff, diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(d2 > 0, -2.0 * a * b * d2 ** (b - 1.0) / (1.0 + a * d2**b), 0.0)
        move = np.clip(pull[:, None] * diff, -4.0, 4.0) * step
        np.add.at(layout, i, move)
        np.add.at(layout, j, -move)
        next_sample[active] += every[active]
        n_negative = np.floor((epoch - next_negative[active]) / every_negative[active]).astype(np.int64)
        n_negative = np.maximum(n_negative, 0)
        next_negative[active] += n_negative * every_negative[active]
        source = np.repeat(i, n_negative)
        other = rng.integers(0, n_cells, size=source.size)
        diff = layout[source] - layout[other]
        d2 = np.einsum("ij,ij->i", diff, diff)
        push = np.where(d2 > 0, 2.0 * b / ((0.001 + d2) * (1.0 + a * d2**b)), 0.0)
        move = np.clip(push[:, None] * diff, -4.0, 4.0) * step  # 0 where push is 0: the cell itself, or a twin
        np.add.at(layout, source, move)
    return layout


def umap_layout(rep: np.ndarray, *, n_neighbors: int = 15, n_epochs: int = 200, seed: int = 0) -> np.ndarray:
    """2-d UMAP layout of the rows of ``rep`` (see the module docstring for the algorithm).

    Parameters
    ----------
    rep
        ``cells x features`` (a PCA, for example), at least 3 cells.
    n_neighbors
        UMAP's neighbourhood size, the cell itself included (as ``sc.pp.neighbors``).
    n_epochs
        Gradient epochs (umap-learn uses 200 for large data, 500 for small).
    seed
        Seed of the random start (where the spectral one cannot be used) and of the repulsions: the same
        seed gives the same layout on the same machine.

    Returns
    -------
    numpy.ndarray
        ``cells x 2`` coordinates.
    """
    from mnnkit.neighbors import knn

    rep = np.ascontiguousarray(rep, dtype=np.float64)
    k = max(1, min(int(n_neighbors), rep.shape[0]) - 1)
    found = knn(rep, rep, k, exclude_self=True, method="exact")
    graph = fuzzy_graph(found.indices, found.distances, k + 1)
    rng = np.random.default_rng(seed)
    return _optimise(graph, _start(graph, rng), int(n_epochs), rng)
