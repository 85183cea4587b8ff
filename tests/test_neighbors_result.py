import dataclasses

import numpy as np
import pytest
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

from mnnkit.neighbors import NeighborResult


def _valid():
    idx = np.array([[1, 2], [0, 2], [1, 0]], dtype=np.int32)
    dist = np.array([[1.0, 2.0], [1.0, 1.5], [1.5, 2.0]], dtype=np.float32)
    return idx, dist


def test_converts_dtypes_and_is_read_only_without_touching_caller():
    idx, dist = _valid()
    nn = NeighborResult(idx, dist)
    assert nn.indices.dtype == np.int64 and nn.distances.dtype == np.float64
    assert (nn.n_obs, nn.n_neighbors) == (3, 2)
    np.testing.assert_array_equal(nn.indices, idx)
    np.testing.assert_array_equal(nn.distances, dist.astype(np.float64))
    with pytest.raises(ValueError, match="read-only"):
        nn.indices[0, 0] = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        nn.indices = idx
    # caller arrays (already of the stored dtype) keep their flags and values
    idx64, dist64 = idx.astype(np.int64), dist.astype(np.float64)
    nn64 = NeighborResult(idx64, dist64)
    assert idx64.flags.writeable and dist64.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        nn64.distances[0, 0] = 0.0


@pytest.mark.parametrize(
    ("indices", "distances", "error", "match"),
    [
        (np.array([1, 0]), np.array([1.0, 1.0]), ValueError, "indices must be a 2-D"),
        (np.array([[1], [0]]), np.array([[1.0, 2.0], [1.0, 2.0]]), ValueError, "same shape"),
        (np.zeros((2, 0), dtype=int), np.zeros((2, 0)), ValueError, "at least one neighbour"),
        (np.array([[1.0], [0.0]]), np.array([[1.0], [1.0]]), TypeError, "integer dtype"),
        (np.array([[1], [0]]), np.array([["a"], ["b"]]), TypeError, "real numeric"),
        (np.array([[1], [-1]]), np.array([[1.0], [1.0]]), ValueError, r"non-negative \(row 1"),
        (np.array([[1], [0]]), np.array([[1.0], [np.nan]]), ValueError, r"finite \(row 1"),
        (np.array([[1], [0]]), np.array([[-1.0], [1.0]]), ValueError, r"non-negative \(row 0 has a negative distance"),
        (np.array([[1, 2], [0, 2]]), np.array([[1.0, 2.0], [3.0, 2.0]]), ValueError, r"sorted by distance.*row 1"),
        (np.array([[1, 1], [0, 2]]), np.array([[1.0, 2.0], [1.0, 2.0]]), ValueError, r"twice \(row 0"),
    ],
)
def test_validation_errors(indices, distances, error, match):
    with pytest.raises(error, match=match):
        NeighborResult(indices, distances)


def test_subset_keeps_nearest_columns():
    nn = NeighborResult(*_valid())
    sub = nn.subset(1)
    np.testing.assert_array_equal(sub.indices, [[1], [0], [1]])
    np.testing.assert_array_equal(sub.distances, [[1.0], [1.0], [1.5]])
    assert nn.subset(2) is nn
    with pytest.raises(ValueError, match=r"n_neighbors must be in \[1, 2\]"):
        nn.subset(3)
    with pytest.raises(TypeError, match="must be an int"):
        nn.subset(1.0)


def test_sparse_round_trip_keeps_explicit_zero_distances():
    idx = np.array([[1, 2], [2, 0], [1, 0]])
    dist = np.array([[0.0, 2.0], [0.0, 0.5], [0.0, 2.0]])
    nn = NeighborResult(idx, dist)
    graph = nn.to_sparse()
    assert graph.shape == (3, 3) and graph.nnz == 6  # zeros stored, not dropped
    back = NeighborResult.from_sparse(graph)
    np.testing.assert_array_equal(back.indices, idx)
    np.testing.assert_array_equal(back.distances, dist)
    assert nn.to_sparse(5).shape == (3, 5)
    with pytest.raises(ValueError, match="must exceed the largest"):
        nn.to_sparse(2)


def test_from_sparse_matches_sklearn_kneighbors_graph():
    x = np.random.default_rng(0).normal(size=(60, 4))
    fitted = NearestNeighbors(n_neighbors=5).fit(x)
    dist, idx = fitted.kneighbors()  # self excluded
    graph = fitted.kneighbors_graph(mode="distance")  # self excluded (X=None)
    nn = NeighborResult.from_sparse(graph)
    np.testing.assert_array_equal(nn.indices, idx)
    np.testing.assert_allclose(nn.distances, dist, rtol=0, atol=0)
    # the same graph with self loops stored on the diagonal: exclude_self drops them
    with_self = fitted.kneighbors_graph(x, n_neighbors=6, mode="distance")
    assert (with_self.diagonal() == 0).all() and with_self.nnz == 60 * 6
    nn_self = NeighborResult.from_sparse(with_self)
    np.testing.assert_array_equal(nn_self.indices, idx)
    kept = NeighborResult.from_sparse(with_self, exclude_self=False)
    np.testing.assert_array_equal(kept.indices[:, 0], np.arange(60))


def test_from_sparse_rows_of_different_length_sorts_and_breaks_ties_by_column():
    # row 2 stores its own diagonal (dropped) and three neighbours, two tied at explicit zero distance
    rows = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
    cols = [3, 1, 2, 0, 3, 3, 1, 0, 2, 1, 0]
    vals = [1.0, 1.0, 0.5, 2.0, 1.0, 0.0, 0.0, 3.0, 0.0, 2.0, 1.0]
    graph = sparse.csr_matrix((vals, (rows, cols)), shape=(4, 4))
    nn = NeighborResult.from_sparse(graph)
    assert nn.n_neighbors == 2  # fewest entries in a row
    np.testing.assert_array_equal(nn.indices, [[2, 1], [3, 0], [1, 3], [0, 1]])
    np.testing.assert_array_equal(nn.distances, [[0.5, 1.0], [1.0, 2.0], [0.0, 0.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match="row 1 has 2 neighbours, fewer than n_neighbors=3"):
        NeighborResult.from_sparse(graph, n_neighbors=3)


def test_from_sparse_errors():
    with pytest.raises(TypeError, match="scipy sparse"):
        NeighborResult.from_sparse(np.eye(3))
    with pytest.raises(ValueError, match="square graph"):
        NeighborResult.from_sparse(sparse.csr_matrix(np.ones((2, 3))))
    empty_row = sparse.csr_matrix(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="n_neighbors must be >= 1"):
        NeighborResult.from_sparse(empty_row)
    with pytest.raises(TypeError, match="int or None"):
        NeighborResult.from_sparse(sparse.csr_matrix(np.ones((2, 2))), n_neighbors=1.5)
