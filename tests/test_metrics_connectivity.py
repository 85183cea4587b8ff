import numpy as np
import pytest
from scipy import sparse

from mnnkit.metrics import graph_connectivity
from mnnkit.neighbors import NeighborResult


def _graph(n, edges):
    rows, cols = zip(*edges, strict=True)
    return sparse.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n))


def test_hand_built_graph_known_answer():
    # label A = {0, 1, 2}: 0-1 connected, 2 only linked to a B cell -> 2/3
    # label B = {3, 4, 5, 6}: chain 3-4-5-6 -> 1; label C = {7, 8}: no edge inside -> 1/2
    edges = [(0, 1), (1, 0), (2, 3), (3, 4), (4, 5), (5, 6), (6, 5), (7, 0), (8, 1)]
    labels = np.array(list("AAABBBBCC"))
    assert graph_connectivity(_graph(9, edges), labels) == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)


def test_weak_versus_strong_on_a_directed_graph():
    # 0 -> 1 -> 2 (no way back): one weak component, three strong ones
    graph = _graph(3, [(0, 1), (1, 2)])
    labels = np.zeros(3)
    assert graph_connectivity(graph, labels) == 1.0
    assert graph_connectivity(graph, labels, connection="strong") == pytest.approx(1 / 3)


def test_neighbor_result_and_embedding_inputs():
    # label 0 lives in two far-apart clumps of 20 and 10 cells; label 1 is one clump of 30
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(20, 2)), rng.normal(size=(10, 2)) + 100, rng.normal(size=(30, 2)) + 50])
    labels = np.repeat([0, 0, 1], [20, 10, 30])
    expected = (20 / 30 + 1.0) / 2
    assert graph_connectivity(x, labels, n_neighbors=5) == pytest.approx(expected)
    idx = np.empty((60, 5), dtype=int)
    for i in range(60):
        d = np.linalg.norm(x - x[i], axis=1)
        d[i] = np.inf
        idx[i] = np.argsort(d, kind="stable")[:5]
    dist = np.linalg.norm(x[idx] - x[:, None, :], axis=2)
    assert graph_connectivity(NeighborResult(idx, dist), labels, n_neighbors=5) == pytest.approx(expected)
    # well-mixed single clump: every label connected
    assert graph_connectivity(rng.normal(size=(200, 3)), rng.integers(0, 2, 200), n_neighbors=10) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"connection": "both"}, ValueError, "connection must be 'weak' or 'strong'"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be a positive int"),
        ({"n_neighbors": 10}, ValueError, "n_neighbors=10 needs more than 10 cells"),
        ({"labels": np.zeros(3)}, ValueError, "labels has 3 entries but there are 10 cells"),
    ],
)
def test_bad_input(kwargs, error, match):
    x = np.random.default_rng(1).normal(size=(10, 2))
    args = {"labels": np.zeros(10)} | kwargs
    with pytest.raises(error, match=match):
        graph_connectivity(x, args.pop("labels"), **args)


def test_rectangular_sparse_graph_is_rejected():
    with pytest.raises(ValueError, match="must be square"):
        graph_connectivity(sparse.csr_matrix(np.ones((3, 4))), np.zeros(3))
