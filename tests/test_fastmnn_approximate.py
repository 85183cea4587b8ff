"""The approximate path (randomized SVD, pynndescent graphs) against the exact one, and its reproducibility.

Thresholds (from the issue): on every shared data set, MNN pair recall >= 0.95 at every merge step
and a kNN(15) overlap >= 0.9 between the approximate and the exact corrected embeddings.
"""

from __future__ import annotations

import anndata as ad
import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import mnnkit
from mnnkit.correction._pair_kernels import mutual_pairs, mutual_pairs_among
from mnnkit.correction.fast import _graph_kernels, _search_kernels
from mnnkit.correction.fast._graph import nearest_cross_edges
from mnnkit.correction.fast._orthogonalize import perbatch_variance
from mnnkit.correction.fast._search import SMALL_SIDE, ExactSearch, GraphSearch, side_parts
from mnnkit.neighbors import knn
from tests._shared import REFERENCE, REFERENCE_BUNDLES, reference_bundle

BUNDLES = [n for n in REFERENCE_BUNDLES if n != "synth3"] if REFERENCE.is_dir() else ["canek_simbatches"]


def _knn_overlap(a: np.ndarray, b: np.ndarray, k: int = 15) -> float:
    first = knn(a, a, k, exclude_self=True).indices
    second = knn(b, b, k, exclude_self=True).indices
    return float(np.mean((first[:, :, None] == second[:, None, :]).any(-1)))


@pytest.mark.parametrize("bundle_name", BUNDLES)
def test_approximate_path_keeps_pairs_and_neighbourhoods(bundle_name: str) -> None:
    bundle = ad.read_h5ad(reference_bundle(bundle_name))
    d = int(bundle.uns["runs"]["fastMNN"]["d"])
    with threadpool_limits(limits=1, user_api="blas"):
        mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=d, svd_solver="exact", key_added="exact")
    mnnkit.fast_mnn(
        bundle, "batch", subset="highly_variable", d=d, svd_solver="randomized", neighbors="pynndescent", key_added="ap"
    )
    for step, exact in bundle.uns["exact"]["steps"].items():
        truth = set(map(tuple, exact["pairs"]))
        found = set(map(tuple, bundle.uns["ap"]["steps"][step]["pairs"]))
        assert len(truth & found) / len(truth) >= 0.95, step
        assert len(truth & found) / len(found) >= 0.95, step  # and not many false pairs either
    assert _knn_overlap(bundle.obsm["exact"], bundle.obsm["ap"]) >= 0.9


def _clusters(sizes, dims=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dims)) * 4
    blocks = []
    for n in sizes:
        types = rng.integers(0, 6, n)
        blocks.append(centres[types] + rng.normal(0, 1.0, dims) + rng.normal(size=(n, dims)))
    return np.vstack(blocks)


def test_graph_searches_against_exact_on_the_same_data() -> None:
    """Each search of the graph path, on data large enough to use the graphs, against brute force."""
    sizes = (2 * SMALL_SIDE, SMALL_SIDE + 500, 2 * SMALL_SIDE)
    data = _clusters(sizes)
    members = [np.arange(s - n, s) for s, n in zip(np.cumsum(sizes), sizes, strict=True)]
    graph, exact = GraphSearch(seed=0), ExactSearch()
    graph.prepare(data, members)
    # a side of two batches joined by cross edges (after a first merge), against the third batch
    first_parts = side_parts((0,), sizes), side_parts((1,), sizes)
    first = graph.mnn_pairs(data[members[0]], data[members[1]], *first_parts, 20, 20)
    graph.after_merge(np.column_stack([members[0][first[:, 0]], members[1][first[:, 1]]]), members[0], members[1])
    assert len(graph.cross) == 1 and graph.cross[0].shape[0] > 2 * first.shape[0]  # pairs and nearest cells
    left_parts, right_parts = side_parts((0, 1), sizes), side_parts((2,), sizes)
    left, right = data[np.concatenate(members[:2])], data[members[2]]
    truth = set(map(tuple, exact.mnn_pairs(left, right, left_parts, right_parts, 20, 20)))
    found = graph.mnn_pairs(left, right, left_parts, right_parts, 20, 20)
    assert len(truth & set(map(tuple, found))) / len(truth) >= 0.97
    order = np.lexsort((np.arange(found.shape[0]), found[:, 0]))
    np.testing.assert_array_equal(order, np.arange(found.shape[0]))  # ordered by left cell, as R
    subset = np.unique(found[:, 1])
    idx, dist = graph.nearest_of(right, right_parts, subset, 20)
    ref_idx, ref_dist = exact.nearest_of(right, right_parts, subset, 20)
    assert np.mean((idx[:, :, None] == ref_idx[:, None, :]).any(-1)) >= 0.98
    np.testing.assert_allclose(dist, np.linalg.norm(right[:, None] - right[subset][idx], axis=2), rtol=1e-12)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_same_seed_same_output_bit_for_bit_whatever_the_threads() -> None:
    """pynndescent runs single-threaded and seeded; each kernel output row is computed by one thread."""
    data = _clusters((1500, 1200, 1400), dims=10, seed=2)
    batch = np.repeat(["a", "b", "c"], (1500, 1200, 1400))
    adata = ad.AnnData(np.zeros((data.shape[0], 0)), obs={"batch": batch})
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.obsm["X_pca"] = data
    runs = []
    threads = numba.get_num_threads()
    try:
        for n_threads in (threads, 1, threads):
            numba.set_num_threads(n_threads)
            out = mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", neighbors="pynndescent", rng=7, copy=True)
            runs.append(out)
    finally:
        numba.set_num_threads(threads)
    for other in runs[1:]:
        assert other.obsm["X_mnn"].tobytes() == runs[0].obsm["X_mnn"].tobytes()
        for step, info in runs[0].uns["X_mnn"]["steps"].items():
            np.testing.assert_array_equal(other.uns["X_mnn"]["steps"][step]["pairs"], info["pairs"])
    other_seed = mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", neighbors="pynndescent", rng=8, copy=True)
    assert other_seed.obsm["X_mnn"].tobytes() != runs[0].obsm["X_mnn"].tobytes()  # the seed is used


def test_randomized_svd_is_seeded_and_close_to_exact() -> None:
    bundle = ad.read_h5ad(reference_bundle("canek_simbatches"))
    first = mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=20, rng=3, copy=True)
    again = mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=20, rng=3, copy=True)
    assert first.obsm["X_mnn"].tobytes() == again.obsm["X_mnn"].tobytes()
    with threadpool_limits(limits=1, user_api="blas"):
        exact = mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=20, svd_solver="exact", copy=True)
    hvg = bundle.var["highly_variable"].to_numpy()
    # the leading components agree closely (their subspace is well separated; stored in float32)
    lead = first.varm["X_mnn"][hvg, :5].astype(np.float64), exact.varm["X_mnn"][hvg, :5]
    cosines = np.abs(np.sum(lead[0] * lead[1], axis=0))
    assert np.all(cosines > 1 - 1e-3), cosines


def test_candidate_pairs_equal_the_mutual_pairs_of_the_full_lists() -> None:
    """Only left cells that some right cell lists are searched; the pairs must not change."""
    rng = np.random.default_rng(4)
    left_nn = rng.integers(0, 300, (500, 7))
    right_nn = rng.integers(0, 500, (300, 6))
    truth = [(left, r) for left in range(500) for r in left_nn[left] if left in right_nn[r]]  # left, then rank
    rows = np.unique(right_nn)  # ascending, as the search gives them
    found = mutual_pairs_among(rows, np.ascontiguousarray(left_nn[rows]), right_nn)
    assert len(truth) > 0
    np.testing.assert_array_equal(found, np.array(truth))
    np.testing.assert_array_equal(mutual_pairs(left_nn, right_nn), np.array(truth))


def test_group_by_key_is_a_stable_sort() -> None:
    keys = np.random.default_rng(6).integers(0, 40, 1000)
    order, ptr = _graph_kernels.group_by_key(keys, 45)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(ptr, np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=45))]))


def test_nearest_cross_edges_link_each_right_cell_and_cap_the_reverse_edges() -> None:
    left_rows, right_rows = np.arange(100, 110), np.arange(200, 230)
    right_nn = np.zeros((30, 4), dtype=np.int64)  # every right cell lists left row 0 first: a would-be hub
    right_nn[:, 1:] = np.random.default_rng(0).integers(1, 10, (30, 3))
    edges = nearest_cross_edges(left_rows, right_rows, right_nn, 2, 5)
    forward = edges[np.isin(edges[:, 0], right_rows)]
    np.testing.assert_array_equal(forward[:, 0], np.repeat(right_rows, 2))
    np.testing.assert_array_equal(forward[:, 1], left_rows[right_nn[:, :2].ravel()])
    back = edges[np.isin(edges[:, 0], left_rows)]
    # each left cell keeps the right cells that rank it nearest, then the lower rows, at most 5
    for left in range(10):
        listers = sorted((rank, r) for r in range(30) for rank in range(2) if right_nn[r, rank] == left)
        expected = [right_rows[r] for _, r in listers[:5]]
        np.testing.assert_array_equal(np.sort(back[back[:, 0] == left_rows[left], 1]), np.sort(expected))
    np.testing.assert_array_equal(back[back[:, 0] == 100, 1], right_rows[:5])  # the hub: 5 of its 30
    assert nearest_cross_edges(left_rows, right_rows, right_nn, 0, 5).shape == (0, 2)


def test_perbatch_variance_against_numpy() -> None:
    data = np.random.default_rng(5).normal(3.0, 2.0, size=(1000, 13))
    bounds = [(0, 400), (400, 401), (401, 1000)]
    got = perbatch_variance(data, bounds)
    assert np.isnan(got[1])
    for i in (0, 2):
        start, stop = bounds[i]
        np.testing.assert_allclose(got[i], data[start:stop].var(axis=0, ddof=1).sum(), rtol=1e-12)


def _random_graph(n: int, degree: int, n_cross: int, seed: int):
    """A random directed graph in CSR form (int32 indices), with cross edges in a second CSR."""
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, n * degree + 1, degree, dtype=np.int64)
    indices = rng.integers(0, n, n * degree).astype(np.int32)
    src = np.sort(rng.integers(0, n, n_cross))
    cross_ptr = np.searchsorted(src, np.arange(n + 1)).astype(np.int64)
    cross_idx = rng.integers(0, n, n_cross).astype(np.int32)
    return indptr, indices, cross_ptr, cross_idx


def _out_edges(graph, v: int) -> list[int]:
    indptr, indices, cross_ptr, cross_idx = graph
    return [*indices[indptr[v] : indptr[v + 1]].tolist(), *cross_idx[cross_ptr[v] : cross_ptr[v + 1]].tolist()]


def test_spaced_landmarks_and_their_seeds_against_plain_python() -> None:
    graph = _random_graph(400, 3, 150, seed=3)
    landmark, cover = _search_kernels.spaced_landmarks(*graph)
    # greedy in row order: a row is a landmark unless an earlier landmark reaches it in <= 2 hops
    truth_cover = [-1] * 400
    for v in range(400):
        if truth_cover[v] >= 0:
            continue
        truth_cover[v] = v
        for u in _out_edges(graph, v):
            for w in [u, *_out_edges(graph, u)]:
                if truth_cover[w] < 0:
                    truth_cover[w] = v
    np.testing.assert_array_equal(cover, truth_cover)
    np.testing.assert_array_equal(landmark, cover == np.arange(400))
    assert 10 < landmark.sum() < 200

    slot = np.full(400, -1, dtype=np.int64)
    slot[landmark] = np.arange(landmark.sum())
    rows, ptr, slots = _search_kernels.landmark_seeds(*graph, landmark, cover, slot, 4)
    # each row: its covering landmark, then landmarks reaching it in one hop, then two (landmark order)
    near = {v: [cover[v]] for v in range(400) if not landmark[v]}
    marks = np.flatnonzero(landmark)
    for hops in (1, 2):
        for u in marks:
            reached = (
                _out_edges(graph, u) if hops == 1 else [w for x in _out_edges(graph, u) for w in _out_edges(graph, x)]
            )
            for w in reached:
                if w in near and u not in near[w] and len(near[w]) < 4:
                    near[w].append(u)
    np.testing.assert_array_equal(rows, sorted(near))
    for i, v in enumerate(rows):
        np.testing.assert_array_equal(slots[ptr[i] : ptr[i + 1]], slot[near[v]])


def test_graph_search_seeded_by_lists_equals_the_listed_seeds() -> None:
    """Seeds given as rows of a list matrix (repeats included) act as the targets they list, once each."""
    rng = np.random.default_rng(5)
    targets = rng.normal(size=(600, 5))
    graph = _random_graph(600, 8, 0, seed=6)
    queries = rng.normal(size=(50, 5))
    lists = rng.integers(0, 600, (30, 12))
    seed_ptr = np.arange(0, 151, 3, dtype=np.int64)
    seed_idx = rng.integers(0, 30, 150)
    listed = [lists[seed_idx[seed_ptr[q] : seed_ptr[q + 1]]].ravel() for q in range(50)]
    plain = (np.arange(0, 50 * 36 + 1, 36, dtype=np.int64), np.arange(50 * 36), np.concatenate(listed).reshape(-1, 1))

    def search(seeds, max_visits):
        idx, dist = np.empty((50, 6), dtype=np.int64), np.empty((50, 6))
        _search_kernels.graph_knn(
            targets, targets.astype(np.float32), *graph, np.zeros(1, dtype=np.int64), *seeds, queries,
            queries.astype(np.float32), np.arange(50), 6, 15, 0, max_visits, np.ones(600, dtype=np.bool_), idx, dist,
        )  # fmt: skip
        return idx, dist

    for max_visits in (-1, 0):  # a full search, and the seeds alone
        by_lists, by_targets = search((seed_ptr, seed_idx, lists), max_visits), search(plain, max_visits)
        np.testing.assert_array_equal(by_lists[0], by_targets[0])
        np.testing.assert_array_equal(by_lists[1], by_targets[1])
    # the seeds alone: the 6 nearest of the distinct listed targets, by brute force
    for q in range(50):
        candidates = np.unique(listed[q])
        dist = np.linalg.norm(targets[candidates] - queries[q], axis=1)
        np.testing.assert_array_equal(by_lists[0][q], candidates[np.argsort(dist, kind="stable")[:6]])


def test_graph_search_of_chosen_query_rows_equals_the_search_of_those_rows_copied() -> None:
    """``query_rows`` picks (and orders) the queries searched: the same answers as a copy of those rows."""
    rng = np.random.default_rng(9)
    targets = rng.normal(size=(500, 4))
    graph = _random_graph(500, 6, 40, seed=10)
    queries = rng.normal(size=(80, 4))
    chosen = rng.choice(80, 30, replace=False)  # unsorted, as the landmark rows need not be
    pivots = np.sort(rng.choice(500, 40, replace=False)).astype(np.int64)
    no_seeds = (np.zeros(31, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.int64))
    allowed = rng.random(500) < 0.6

    def search(points, rows):
        idx, dist = np.empty((30, 5), dtype=np.int64), np.empty((30, 5))
        _search_kernels.graph_knn(
            targets, targets.astype(np.float32), *graph, pivots, *no_seeds, points, points.astype(np.float32),
            rows, 5, 12, 4, -1, allowed, idx, dist,
        )  # fmt: skip
        return idx, dist

    by_rows = search(queries, chosen.astype(np.int64))
    copied = search(queries[chosen], np.arange(30, dtype=np.int64))
    np.testing.assert_array_equal(by_rows[0], copied[0])
    np.testing.assert_array_equal(by_rows[1], copied[1])
    assert allowed[by_rows[0]].all()
    # each answer's distances are the true distances of the targets it names, nearest first
    true = np.linalg.norm(targets[by_rows[0]] - queries[chosen][:, None, :], axis=2)
    np.testing.assert_allclose(by_rows[1], true, rtol=1e-12)
    assert (np.diff(by_rows[1], axis=1) >= 0).all()


def test_edges_within_a_side_against_plain_python() -> None:
    rng = np.random.default_rng(8)
    edges = rng.integers(0, 50, (300, 2)).astype(np.int32)
    position_of = np.full(50, -1, dtype=np.int64)
    inside = rng.choice(50, 30, replace=False)
    position_of[inside] = rng.permutation(30)
    ptr, targets = _graph_kernels.edges_within(edges, position_of, 30)
    for p in range(30):  # each position's edges, in stored order, both ends inside the side
        expected = [position_of[b] for a, b in edges if position_of[a] == p and position_of[b] >= 0]
        np.testing.assert_array_equal(targets[ptr[p] : ptr[p + 1]], expected)
    assert ptr[-1] == sum(1 for a, b in edges if position_of[a] >= 0 and position_of[b] >= 0) > 0
