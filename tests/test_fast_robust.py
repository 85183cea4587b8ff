"""The fast method's ``flavor="robust"``: against a plain NumPy/scikit-learn implementation, invariances, errors.

The robust flavour (issue 15) keeps fastMNN's steps and changes two things: the default reference is the
largest batch (progressive merge from the largest batch down), and each pair's correction vector joins
the trimmed local centres of mass of its two cells instead of the cells themselves. ``pairing=
"dual_softmax"`` weighs candidate pairs instead of keeping the mutual ones.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import mnnkit
from mnnkit._config import ROBUST_CENTRE_K, ROBUST_CENTRE_KEEP
from mnnkit.correction._centres import member_means, trimmed_members
from mnnkit.correction._plan import resolve_merge_plan, size_order
from mnnkit.correction._soft_pairs import default_temperature, dual_softmax_pairs
from mnnkit.correction.fast._search import ExactSearch, GraphSearch, side_parts
from mnnkit.correction.fast._tricube import centre_averages


# ------------------------------------------------------------------------------------------ naive pieces
def naive_trimmed_choice(points: np.ndarray, keep: int) -> np.ndarray:
    """Positions (ascending) of the ``keep`` points nearest to their plain mean (ties to the earlier point)."""
    dist = ((points - points.mean(axis=0)) ** 2).sum(axis=1)
    return np.sort(np.argsort(dist, kind="stable")[:keep])


def naive_members(data: np.ndarray, neighbours: np.ndarray, keep: int) -> np.ndarray:
    return np.array([nb[naive_trimmed_choice(data[nb], keep)] for nb in neighbours])


def own_neighbours(data: np.ndarray, cells: np.ndarray, k: int) -> np.ndarray:
    """Each cell's k nearest rows of ``data`` (itself first), by scikit-learn's brute force."""
    nn = NearestNeighbors(n_neighbors=min(k, data.shape[0]), algorithm="brute").fit(data)
    return nn.kneighbors(data[cells], return_distance=False)


def mutual_pairs_sklearn(left: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """MNN pairs (left, right) with k nearest both ways (no exact ties in random data)."""
    left_nn = NearestNeighbors(n_neighbors=min(k, len(right)), algorithm="brute").fit(right).kneighbors(left)[1]
    right_nn = NearestNeighbors(n_neighbors=min(k, len(left)), algorithm="brute").fit(left).kneighbors(right)[1]
    return np.array([(i, j) for i in range(len(left)) for j in left_nn[i] if i in right_nn[j]], dtype=np.int64)


def naive_centre_vectors(left, right, pairs, members):
    """Per distinct right cell (ascending), the mean over its pairs of centre(left cell) - centre(right cell).

    ``members``: for the distinct left and right cells, the rows whose mean is their centre.
    """
    left_cells, right_cells = np.unique(pairs[:, 0]), np.unique(pairs[:, 1])
    lc = {c: left[m].mean(axis=0) for c, m in zip(left_cells, members[0], strict=True)}
    rc = {c: right[m].mean(axis=0) for c, m in zip(right_cells, members[1], strict=True)}
    vectors = [np.mean([lc[a] - rc[r] for a, rr in pairs if rr == r], axis=0) for r in right_cells]
    return right_cells, np.array(vectors)


def naive_side_members(left, right, pairs, k_centre, keep):
    """Members of each paired cell's centre: its trimmed k_centre nearest cells on its own side."""
    left_cells, right_cells = np.unique(pairs[:, 0]), np.unique(pairs[:, 1])
    return (
        naive_members(left, own_neighbours(left, left_cells, k_centre), keep),
        naive_members(right, own_neighbours(right, right_cells, k_centre), keep),
    )


def centre_along_naive(data: np.ndarray, vector: np.ndarray) -> np.ndarray:
    unit = vector / np.linalg.norm(vector)
    t = data @ unit
    return data + np.outer(t.mean() - t, unit)


def naive_robust_two_batches(big: np.ndarray, small: np.ndarray, k: int = 20, ndist: float = 3.0):
    """The robust flavour's single merge of ``small`` onto ``big`` (the larger batch is the reference)."""
    pairs = mutual_pairs_sklearn(big, small, k)
    # the members are chosen once, before the centring; the centres are recomputed after it
    members = naive_side_members(big, small, pairs, ROBUST_CENTRE_K, ROBUST_CENTRE_KEEP)
    cells, averages = naive_centre_vectors(big, small, pairs, members)
    overall = averages.mean(axis=0)
    big, small = centre_along_naive(big, overall), centre_along_naive(small, overall)
    _, averages = naive_centre_vectors(big, small, pairs, members)
    k_mnn = min(k, cells.size)
    dist, idx = NearestNeighbors(n_neighbors=k_mnn, algorithm="brute").fit(small[cells]).kneighbors(small)
    h = np.maximum(ndist * dist[:, (k_mnn + 1) // 2 - 1], 1e-8)
    w = (1 - np.minimum(dist / h[:, None], 1.0) ** 3) ** 3
    w /= w.sum(axis=1, keepdims=True)
    return big, small + np.einsum("ik,ikd->id", w, averages[idx]), pairs


def _two_batches(seed: int = 0, n_big: int = 240, n_small: int = 90, d: int = 8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(3, d))
    big = centres[rng.integers(0, 3, n_big)] + rng.normal(size=(n_big, d))
    small = centres[rng.integers(0, 3, n_small)] + rng.normal(size=(n_small, d)) + rng.normal(scale=3.0, size=d)
    return big, small


def _adata(blocks: list[np.ndarray], names: list[str]) -> ad.AnnData:
    x = np.vstack(blocks)
    batch = np.repeat(names, [len(b) for b in blocks])
    adata = ad.AnnData(np.zeros((x.shape[0], 1), dtype=np.float32), obs={"batch": batch})
    adata.obs_names = [f"{b}-{i}" for b, block in zip(names, blocks, strict=True) for i in range(len(block))]
    adata.obs["batch"] = adata.obs["batch"].astype("category")
    adata.obsm["X_pca"] = x
    return adata


# ------------------------------------------------------------------------------------------------- tests
def test_trimmed_members_and_means_match_naive_including_ties():
    rng = np.random.default_rng(1)
    data = np.round(rng.normal(size=(60, 5)), 1)
    data[10:15] = data[3]  # duplicated rows: equal distances to the mean
    neighbours = rng.integers(0, 60, size=(25, 9)).astype(np.int64)
    neighbours[0] = [3, 10, 11, 12, 13, 14, 20, 21, 22]
    for keep in (1, 5, 9, 12):
        members = trimmed_members(data, neighbours, keep)
        np.testing.assert_array_equal(members, naive_members(data, neighbours, min(keep, 9)))
        np.testing.assert_allclose(member_means(data, members), data[members].mean(axis=1), rtol=0, atol=1e-13)


def test_centre_averages_match_naive_unweighted_and_weighted():
    big, small = _two_batches(2)
    pairs = mutual_pairs_sklearn(big, small, 10)
    members = naive_side_members(big, small, pairs, 7, 5)
    cells, averages = centre_averages(big, small, pairs, *members)
    expected_cells, expected = naive_centre_vectors(big, small, pairs, members)
    np.testing.assert_array_equal(cells, expected_cells)
    np.testing.assert_allclose(averages, expected, atol=1e-12)

    weights = np.random.default_rng(3).uniform(0.1, 1.0, size=pairs.shape[0])
    _, weighted = centre_averages(big, small, pairs, *members, weights)
    lc = dict(zip(np.unique(pairs[:, 0]), big[members[0]].mean(axis=1), strict=True))
    rc = dict(zip(cells, small[members[1]].mean(axis=1), strict=True))
    for row, r in enumerate(cells):
        mine = pairs[:, 1] == r
        vectors = np.array([lc[a] - rc[r] for a in pairs[mine, 0]])
        np.testing.assert_allclose(weighted[row], weights[mine] @ vectors / weights[mine].sum(), atol=1e-12)


def test_robust_two_batches_equals_naive_implementation():
    big, small = _two_batches(4)
    exp_big, exp_small, exp_pairs = naive_robust_two_batches(big, small)
    # the small batch comes first in the input: the robust flavour still takes the big one as reference
    adata = _adata([small, big], ["b_small", "a_big"])
    mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", flavor="robust")
    out = adata.obsm["X_mnn"]
    np.testing.assert_allclose(out[len(small) :], exp_big, atol=1e-10)
    np.testing.assert_allclose(out[: len(small)], exp_small, atol=1e-10)
    uns = adata.uns["X_mnn"]
    assert uns["params"]["merge_order"] == "size" and uns["params"]["flavor"] == "robust"
    assert list(uns["merge_order"]) == ["a_big", "b_small"]
    step_pairs = np.asarray(uns["steps"]["step_1"]["pairs"])
    assert step_pairs.shape[0] == exp_pairs.shape[0]


def test_robust_does_not_depend_on_the_batch_order():
    rng = np.random.default_rng(5)
    blocks = [rng.normal(size=(n, 6)) + rng.normal(scale=2.0, size=6) for n in (150, 60, 100)]
    names = ["x", "y", "z"]
    first = _adata(blocks, names)
    mnnkit.fast_mnn(first, "batch", use_rep="X_pca", flavor="robust")
    order = [2, 0, 1]
    second = _adata([blocks[i] for i in order], [names[i] for i in order])
    second.obs["batch"] = second.obs["batch"].cat.reorder_categories(["z", "x", "y"])
    mnnkit.fast_mnn(second, "batch", use_rep="X_pca", flavor="robust")
    np.testing.assert_array_equal(second[first.obs_names].obsm["X_mnn"], first.obsm["X_mnn"])
    assert list(first.uns["X_mnn"]["merge_order"]) == ["x", "z", "y"]
    # batchelor's flavour follows the batch order: the two runs differ
    a, b = first.copy(), second.copy()
    mnnkit.fast_mnn(a, "batch", use_rep="X_pca")
    mnnkit.fast_mnn(b, "batch", use_rep="X_pca")
    assert list(a.uns["X_mnn"]["merge_order"]) != list(b.uns["X_mnn"]["merge_order"])


def test_size_order_breaks_ties_by_name_and_explicit_orders_win():
    assert size_order([5, 9, 5, 9], ["d", "c", "b", "a"]) == [3, 1, 2, 0]
    plan = resolve_merge_plan(["b", "a"], ["a", "b"], sizes=[1, 5])
    assert plan.source == "given" and plan.steps == (((1,), (0,)),)
    assert resolve_merge_plan(None, ["a", "b"], sizes=[1, 5]).steps == (((1,), (0,)),)


def test_robust_is_deterministic_and_leaves_input_alone():
    big, small = _two_batches(6)
    adata = _adata([big, small], ["a", "b"])
    before = adata.obsm["X_pca"].copy()
    one = mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", flavor="robust", copy=True)
    two = mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", flavor="robust", copy=True, n_jobs=1)
    np.testing.assert_array_equal(one.obsm["X_mnn"], two.obsm["X_mnn"])
    np.testing.assert_array_equal(adata.obsm["X_pca"], before)


def test_dual_softmax_pairing_uses_the_weighted_pairs():
    big, small = _two_batches(7)
    adata = _adata([big, small], ["a", "b"])
    mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", flavor="robust", pairing="dual_softmax")
    search = ExactSearch()
    pairs, weights = search.soft_pairs(big, small, None, None, 20, 20)
    from mnnkit.neighbors import knn_both_ways

    left_nn, right_nn = knn_both_ways(big, small, k_right=20, k_left=20)
    tau = default_temperature(left_nn.distances, right_nn.distances)
    expected, expected_w = dual_softmax_pairs(
        left_nn.indices, left_nn.distances, right_nn.indices, right_nn.distances, temperature=tau, min_weight=1e-3
    )
    np.testing.assert_array_equal(pairs, expected)
    np.testing.assert_array_equal(weights, expected_w)
    step = adata.uns["X_mnn"]["steps"]["step_1"]
    np.testing.assert_array_equal(np.asarray(step["pairs"]), np.column_stack([pairs[:, 0], pairs[:, 1] + len(big)]))
    assert adata.uns["X_mnn"]["params"]["pairing"] == "dual_softmax"


def test_graph_nearest_within_finds_the_exact_neighbours():
    rng = np.random.default_rng(8)
    data = rng.normal(size=(2500, 10)) + np.repeat(rng.normal(scale=3.0, size=(5, 10)), 500, axis=0)
    members = [np.arange(1200), np.arange(1200, 2500)]
    search = GraphSearch(seed=0)
    search.prepare(data, members)
    cells = np.sort(rng.choice(2500, size=300, replace=False))
    found = search.nearest_within(data, side_parts((0, 1), [1200, 1300]), cells, 15)
    exact = ExactSearch().nearest_within(data, None, cells, 15)
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(found, exact, strict=True)])
    assert recall >= 0.95
    assert (found[:, 0] == cells).all()  # a cell is its own nearest
    # a single batch's side: searched from the cell alone, in its own batch graph
    own = cells[cells < 1200]
    found = search.nearest_within(data[:1200], side_parts((0,), [1200]), own, 15)
    exact = ExactSearch().nearest_within(data[:1200], None, own, 15)
    assert np.mean([len(set(a) & set(b)) / 15 for a, b in zip(found, exact, strict=True)]) >= 0.95


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flavor": "fancy"}, "flavor"),
        ({"pairing": "soft"}, "pairing"),
        ({"pairing": "dual_softmax"}, "needs flavor='robust'"),
        ({"flavor": "robust", "pairing": "dual_softmax", "neighbors": "pynndescent"}, "neighbors"),
    ],
)
def test_bad_flavour_arguments(kwargs, message):
    big, small = _two_batches(9, 50, 30)
    adata = _adata([big, small], ["a", "b"])
    with pytest.raises(ValueError, match=message):
        mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", **kwargs)
