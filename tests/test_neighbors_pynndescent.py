import numba
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mnnkit.neighbors import knn

pytestmark = pytest.mark.slow  # the first NNDescent call compiles pynndescent (~30 s)


def _recall(approx, exact):
    hits = [len(set(a) & set(b)) for a, b in zip(approx.indices, exact.indices, strict=True)]
    return np.sum(hits) / exact.indices.size


@pytest.fixture(scope="module")
def blobs():
    x, _ = make_blobs(n_samples=1500, n_features=10, centers=6, cluster_std=2.0, random_state=0)
    return x


@pytest.fixture(scope="module")
def self_graph(blobs):
    threads = numba.get_num_threads()
    first = knn(blobs, blobs, 15, method="pynndescent", rng=7, exclude_self=True)
    assert numba.get_num_threads() == threads  # pynndescent's n_jobs=1 must not leak
    return first


def test_recall_and_conventions_on_self_graph(blobs, self_graph):
    exact = knn(blobs, blobs, 15, exclude_self=True)
    assert _recall(self_graph, exact) >= 0.95
    assert not (self_graph.indices == np.arange(1500)[:, None]).any()
    # distances are float64 re-measures of the returned pairs, rows sorted by (distance, index)
    measured = np.linalg.norm(blobs[:, None, :] - blobs[self_graph.indices], axis=2)
    np.testing.assert_allclose(self_graph.distances, measured, rtol=1e-12)
    assert (np.diff(self_graph.distances, axis=1) >= 0).all()


def test_same_seed_same_bits(blobs, self_graph):
    again = knn(blobs, blobs, 15, method="pynndescent", rng=7, exclude_self=True)
    assert again.indices.tobytes() == self_graph.indices.tobytes()
    assert again.distances.tobytes() == self_graph.distances.tobytes()
    gen = knn(blobs, blobs, 15, method="pynndescent", rng=np.random.default_rng(3), exclude_self=True)
    assert _recall(gen, self_graph) >= 0.95


def test_query_mode_recall(blobs, self_graph):
    rng = np.random.default_rng(1)
    query = blobs[rng.choice(1500, 200, replace=False)] + rng.normal(scale=0.5, size=(200, 10))
    approx = knn(query, blobs, 10, method="pynndescent", rng=0)
    exact = knn(query, blobs, 10)
    assert _recall(approx, exact) >= 0.95
    np.testing.assert_allclose(
        approx.distances, np.linalg.norm(query[:, None, :] - blobs[approx.indices], axis=2), rtol=1e-12
    )


def test_small_data_is_searched_exactly():
    x = np.random.default_rng(2).normal(size=(100, 3))  # < 3 x the index degree of 60
    for exclude_self in (True, False):
        approx = knn(x, x, 7, method="pynndescent", exclude_self=exclude_self)
        exact = knn(x, x, 7, exclude_self=exclude_self)
        assert approx.indices.tobytes() == exact.indices.tobytes()
        assert approx.distances.tobytes() == exact.distances.tobytes()
