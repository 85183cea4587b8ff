"""mnnkit's NumPy UMAP (``mnnkit.pl._layout``): umap-learn's graph, a layout that keeps neighbourhoods."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from mnnkit.neighbors import knn
from mnnkit.pl._layout import fuzzy_graph, umap_layout


def _blobs(n: int, n_types: int, dims: int, seed: int, spread: float = 6.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(n_types, dims))
    labels = rng.integers(0, n_types, size=n)
    return centres[labels] + rng.normal(size=(n, dims)), labels


@pytest.mark.parametrize("n_neighbors", [5, 15])
def test_fuzzy_graph_is_umap_learns(n_neighbors):
    umap_ = pytest.importorskip("umap.umap_", reason="umap-learn (a scanpy dependency) is the oracle")
    x, _ = _blobs(600, 4, 10, seed=0)
    x[5] = x[4]  # a duplicated cell: a zero distance among the neighbours
    found = knn(x, x, n_neighbors - 1, exclude_self=True, method="exact")
    ours = fuzzy_graph(found.indices, found.distances, n_neighbors)
    with_self = np.concatenate([np.arange(len(x))[:, None], found.indices], axis=1)
    self_dist = np.concatenate([np.zeros((len(x), 1)), found.distances], axis=1)
    theirs, _, _ = umap_.fuzzy_simplicial_set(
        x, n_neighbors, 0, "euclidean", knn_indices=with_self, knn_dists=self_dist
    )
    theirs = theirs.tocsr()
    assert ours.nnz == theirs.nnz
    # equal up to the bandwidth bisection's stopping tolerance
    assert abs(ours - theirs).max() < 1e-4
    assert abs(ours - ours.T).max() == 0.0  # symmetric


def test_layout_keeps_neighbourhoods_and_separates_types():
    x, labels = _blobs(1200, 5, 20, seed=1)
    layout = umap_layout(x, seed=0)
    assert layout.shape == (1200, 2) and np.isfinite(layout).all()
    assert trustworthiness(x, layout, n_neighbors=15) > 0.9
    nearest = knn(layout, layout, 10, exclude_self=True, method="exact").indices
    assert (labels[nearest] == labels[:, None]).mean() > 0.99


def test_layout_is_deterministic_and_follows_the_seed():
    x, _ = _blobs(400, 3, 8, seed=2)
    first, again, other = umap_layout(x, seed=3), umap_layout(x, seed=3), umap_layout(x, seed=4)
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


def test_disconnected_graph_and_tiny_inputs():
    # two groups too far apart for any shared neighbour: no spectral start, a random one instead
    x, labels = _blobs(300, 2, 5, seed=5, spread=1000.0)
    layout = umap_layout(x, n_neighbors=5, seed=0)
    nearest = knn(layout, layout, 5, exclude_self=True, method="exact").indices
    assert np.isfinite(layout).all() and (labels[nearest] == labels[:, None]).mean() > 0.99
    for n in (3, 4, 20):
        small = umap_layout(np.random.default_rng(n).normal(size=(n, 4)), seed=0)
        assert small.shape == (n, 2) and np.isfinite(small).all()
