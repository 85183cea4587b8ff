"""The partition (inverted-file) kNN search and the fast method's ``neighbors="partition"`` path.

Truth: SciPy's brute-force distances (Voronoi property of the partitions, exact neighbours), the exact
search (a partition search that probes every partition is the exact search), and the exact path of
``fast_mnn`` (MNN pair recall, corrected embedding).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import mnnkit
from mnnkit._threads import thread_limits
from mnnkit.correction.fast import _search
from mnnkit.neighbors._exact import exact_knn
from mnnkit.neighbors._partition import (
    default_partitions,
    partition_knn,
    partition_points,
    partition_sides,
    restrict_partition,
)
from tests.conftest import make_batches


def _clustered(n: int, dims: int, n_types: int, seed: int) -> np.ndarray:
    """``n`` points around ``n_types`` centres (the same centres for every ``seed``)."""
    centres = np.random.default_rng(dims * 1000 + n_types).normal(scale=4.0, size=(n_types, dims))
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(centres[rng.integers(n_types, size=n)] + rng.normal(size=(n, dims)))


def test_partition_is_a_voronoi_partition_of_its_centres():
    points = _clustered(700, 8, 5, seed=0)
    part = partition_points(points, 20, seed=3)
    assert np.array_equal(np.sort(part.order), np.arange(700))  # every point in exactly one partition
    assert np.all(np.diff(part.bounds) > 0)  # no empty partition is kept
    nearest = cdist(points, part.centres, "sqeuclidean").argmin(axis=1)
    for p in range(part.n_partitions):
        members = part.members(p)
        assert np.all(np.diff(members) > 0)  # rows increasing within a partition
        assert np.all(nearest[members] == p)


def test_partition_is_deterministic_and_follows_the_seed():
    points = _clustered(500, 6, 4, seed=1)
    a, b, c = (partition_points(points, 15, seed=s) for s in (7, 7, 8))
    for x, y in ((a.centres, b.centres), (a.order, b.order), (a.bounds, b.bounds)):
        np.testing.assert_array_equal(x, y)
    assert not (a.centres.shape == c.centres.shape and np.array_equal(a.centres, c.centres))


def test_sides_fitted_side_by_side_equal_their_single_fits_on_any_thread_count():
    sides = [_clustered(900, 6, 5, seed=3), _clustered(400, 6, 5, seed=4)]
    with thread_limits(blas=1):
        alone = [partition_points(x, default_partitions(len(x)), s) for x, s in zip(sides, (5, 6), strict=True)]
    for threads in (1, 2):
        with thread_limits(numba=threads):
            fitted = partition_sides(sides, [5, 6])
        for got, want in zip(fitted, alone, strict=True):
            for x, y in ((got.centres, want.centres), (got.order, want.order), (got.bounds, want.bounds)):
                assert x.tobytes() == y.tobytes()


def test_partition_caps_the_number_of_partitions():
    points = _clustered(6, 3, 2, seed=2)
    part = partition_points(points, 50, seed=0)
    assert part.n_partitions <= 6
    assert np.array_equal(np.sort(part.order), np.arange(6))


@pytest.mark.parametrize("k", [1, 7])
def test_probing_every_partition_is_the_exact_search(k):
    query = _clustered(300, 10, 6, seed=4)
    data = _clustered(400, 10, 6, seed=5)
    qp, dp = partition_points(query, 12, seed=0), partition_points(data, 16, seed=1)
    idx, dist = partition_knn(query, data, k, qp, dp, n_probe=dp.n_partitions)
    exact_idx, exact_dist = exact_knn(query, data, k, exclude_self=False)
    np.testing.assert_array_equal(idx, exact_idx)
    np.testing.assert_array_equal(dist, exact_dist)


def test_few_probes_find_nearly_every_neighbour_of_clustered_data():
    query = _clustered(2000, 20, 10, seed=6)
    data = _clustered(2500, 20, 10, seed=7)
    qp, dp = partition_points(query, 10, seed=0), partition_points(data, 12, seed=1)
    idx, dist = partition_knn(query, data, 10, qp, dp, n_probe=4)
    truth = np.argsort(cdist(query, data), axis=1, kind="stable")[:, :10]
    recall = np.mean([np.intersect1d(idx[i], truth[i]).size / 10 for i in range(len(query))])
    assert recall >= 0.97
    # the distances returned are the true ones of the rows returned, in increasing order
    np.testing.assert_allclose(dist, np.sqrt(((query[:, None, :] - data[idx]) ** 2).sum(-1)), rtol=1e-12)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_a_partition_with_fewer_than_k_points_probes_more():
    query = _clustered(50, 4, 2, seed=8)
    data = _clustered(60, 4, 2, seed=9)
    qp, dp = partition_points(query, 5, seed=0), partition_points(data, 30, seed=1)
    idx, _ = partition_knn(query, data, 8, qp, dp, n_probe=1)
    assert np.all(idx >= 0) and np.all(idx < 60)
    assert all(np.unique(row).size == 8 for row in idx)


def test_restricted_partition_keeps_each_subset_cell_in_its_partition():
    points = _clustered(400, 5, 4, seed=10)
    part = partition_points(points, 10, seed=0)
    subset = np.sort(np.random.default_rng(0).choice(400, 90, replace=False))
    sub = restrict_partition(part, subset, 400)
    label = np.empty(400, dtype=np.int64)
    for p in range(part.n_partitions):
        label[part.members(p)] = p
    assert np.array_equal(np.sort(sub.order), np.arange(90))
    for q in range(sub.n_partitions):
        members = subset[sub.members(q)]
        assert np.unique(label[members]).size == 1
        np.testing.assert_array_equal(sub.centres[q], part.centres[label[members[0]]])


def _pairs(adata, key="X_mnn"):
    return [set(map(tuple, np.asarray(step["pairs"]).tolist())) for step in adata.uns[key]["steps"].values()]


def test_fast_mnn_partition_path_matches_the_exact_path_closely(monkeypatch):
    # 2 of the 3-5 partitions per side: the search is approximate here
    monkeypatch.setattr(_search, "PARTITION_PROBES", 2)
    adata = make_batches(sizes=(900, 700, 800), genes=60, seed=11)
    exact = mnnkit.fast_mnn(adata, "batch", d=20, neighbors="exact", copy=True)
    part = mnnkit.fast_mnn(adata, "batch", d=20, neighbors="partition", copy=True)
    assert part.uns["X_mnn"]["params"]["neighbors"] == "partition"
    recalls = [len(found & truth) / len(truth) for found, truth in zip(_pairs(part), _pairs(exact), strict=True)]
    assert min(recalls) >= 0.9  # 1.0 and 0.95 here
    np.testing.assert_allclose(part.obsm["X_mnn"], exact.obsm["X_mnn"], atol=0.05)
    again = mnnkit.fast_mnn(adata, "batch", d=20, neighbors="partition", copy=True)
    np.testing.assert_array_equal(part.obsm["X_mnn"], again.obsm["X_mnn"])


def test_fast_mnn_partition_path_probing_everything_is_exact(monkeypatch):
    monkeypatch.setattr(_search, "PARTITION_PROBES", 10**6)
    adata = make_batches(sizes=(300, 250, 280), genes=40, seed=12)
    exact = mnnkit.fast_mnn(adata, "batch", d=15, neighbors="exact", copy=True)
    part = mnnkit.fast_mnn(adata, "batch", d=15, neighbors="partition", copy=True)
    np.testing.assert_array_equal(part.obsm["X_mnn"], exact.obsm["X_mnn"])


def test_partition_path_refuses_exact_only_options():
    adata = make_batches(sizes=(60, 50), genes=30, seed=13)
    with pytest.raises(ValueError, match="dual_softmax"):
        mnnkit.fast_mnn(adata, "batch", d=10, neighbors="partition", flavor="robust", pairing="dual_softmax")
    with pytest.raises(ValueError, match="neighbors"):
        mnnkit.fast_mnn(adata, "batch", d=10, neighbors="ivf")
