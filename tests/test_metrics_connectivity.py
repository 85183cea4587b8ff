import numpy as np
import pytest
from scipy import sparse

from mnnkit.metrics import graph_connectivity
from mnnkit.neighbors import NeighborResult, knn


def _graph(n, edges):
    rows, cols = zip(*edges, strict=True)
    return sparse.csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(n, n))


def _largest_strong_share(adjacency):
    """Largest set of mutually reachable nodes / number of nodes, by transitive closure (independent of scipy)."""
    n = adjacency.shape[0]
    reach = adjacency.astype(bool) | np.eye(n, dtype=bool)
    for _ in range(max(1, int(np.ceil(np.log2(n))))):
        reach = reach | ((reach.astype(np.int64) @ reach.astype(np.int64)) > 0)
    mutual = reach & reach.T
    return max(int(row.sum()) for row in mutual) / n


def _per_label(adjacency, labels):
    return np.mean([_largest_strong_share(adjacency[np.ix_(labels == g, labels == g)]) for g in np.unique(labels)])


def test_hand_built_graph_known_answer():
    # label A = {0, 1, 2}: 0 <-> 1, 2 only links to a B cell: 2/3 both ways
    # label B = {3, 4, 5, 6}: 3 -> 4 -> 5 <-> 6: strong components {3}, {4}, {5, 6}: 2/4; weakly one piece: 1
    # label C = {7, 8}: no edge inside: 1/2
    edges = [(0, 1), (1, 0), (2, 3), (3, 4), (4, 5), (5, 6), (6, 5), (7, 0), (8, 1)]
    labels = np.array(list("AAABBBBCC"))
    graph = _graph(9, edges)
    assert graph_connectivity(graph, labels) == pytest.approx((2 / 3 + 2 / 4 + 1 / 2) / 3)
    assert graph_connectivity(graph, labels) == pytest.approx(_per_label(graph.toarray(), labels))
    assert graph_connectivity(graph, labels, connection="weak") == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)


def test_strong_is_the_default_on_a_directed_graph():
    # 0 -> 1 -> 2 (no way back): one weak component, three strong ones
    graph = _graph(3, [(0, 1), (1, 2)])
    labels = np.zeros(3)
    assert graph_connectivity(graph, labels) == pytest.approx(1 / 3)
    assert graph_connectivity(graph, labels, connection="strong") == pytest.approx(1 / 3)
    assert graph_connectivity(graph, labels, connection="weak") == 1.0


def test_neighbor_result_and_embedding_inputs():
    # label 0 lives in two far-apart clumps of 20 and 10 cells; label 1 is one clump of 30
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(20, 2)), rng.normal(size=(10, 2)) + 100, rng.normal(size=(30, 2)) + 50])
    labels = np.repeat([0, 0, 1], [20, 10, 30])
    idx = np.empty((60, 5), dtype=int)
    for i in range(60):
        d = np.linalg.norm(x - x[i], axis=1)
        d[i] = np.inf
        idx[i] = np.argsort(d, kind="stable")[:5]
    dist = np.linalg.norm(x[idx] - x[:, None, :], axis=2)
    adjacency = np.zeros((60, 60), dtype=bool)
    adjacency[np.repeat(np.arange(60), 5), idx.ravel()] = True
    expected = _per_label(adjacency, labels)
    assert expected <= (20 / 30 + 1.0) / 2  # the far clump is never in the largest piece
    assert graph_connectivity(x, labels, n_neighbors=5) == pytest.approx(expected)
    assert graph_connectivity(NeighborResult(idx, dist), labels, n_neighbors=5) == pytest.approx(expected)
    weak = graph_connectivity(x, labels, n_neighbors=5, connection="weak")
    assert weak == pytest.approx((20 / 30 + 1.0) / 2) and weak >= expected
    # random clouds: strong components of the directed 10-NN graph, checked against the closure
    cloud = rng.normal(size=(120, 3))
    cloud_labels = rng.integers(0, 3, 120)
    nn = knn(cloud, cloud, 10, exclude_self=True)
    dense = nn.to_sparse().toarray() > 0
    dense[np.repeat(np.arange(120), 10), nn.indices.ravel()] = True  # zero distances are edges too
    assert graph_connectivity(nn, cloud_labels, n_neighbors=10) == pytest.approx(_per_label(dense, cloud_labels))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"connection": "both"}, ValueError, "connection must be 'strong' or 'weak'"),
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
