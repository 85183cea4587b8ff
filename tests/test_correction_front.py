"""The shared front of both correction methods: inputs that used to give silent wrong answers now give
clear errors or R's answer (issue 17, items 1-5), the same for ``correct`` and ``fast_mnn``."""

from __future__ import annotations

import os
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mnnkit
from tests.conftest import three_batches, to_adata


def run(method: str, adata: ad.AnnData, **kwargs):
    if method == "classic":
        return mnnkit.correct(adata, "batch", k=5, **kwargs)
    return mnnkit.fast_mnn(adata, "batch", k=5, d=3, svd_solver="exact", **kwargs)


METHODS = ["classic", "fast"]
KEY = mnnkit.correction.DEFAULT_KEY_ADDED


@pytest.fixture
def adata() -> ad.AnnData:
    a = to_adata(three_batches(n=(30, 25, 28), genes=10))
    a.var_names = [f"g{i}" for i in range(a.n_vars)]
    return a


@pytest.mark.parametrize("method", METHODS)
def test_zero_genes_is_an_error(method, adata) -> None:
    empty = adata[:, :0].copy()
    with pytest.raises(ValueError, match=r"adata.X has no genes \(shape \(83, 0\)\)"):
        run(method, empty)
    assert not empty.uns and not empty.layers and not empty.obsm


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("labels", [(10, 2, 33), (10.0, 2.5, 33.0)])
def test_numeric_batch_labels_sort_numerically(method, adata, labels) -> None:
    # R's levels(factor(c(10, 2, 33))) are 2, 10, 33: the default merge order follows them
    codes = adata.obs["batch"].cat.codes.to_numpy()
    adata.obs["batch"] = np.asarray(labels)[codes]
    run(method, adata)
    expected = [str(v) for v in sorted(labels)]
    info = adata.uns[KEY[method]]
    assert list(info["batches"]) == expected
    assert list(info["merge_order"]) == expected
    assert list(info["steps"]["step_1"]["left"]) == expected[:1]


@pytest.mark.parametrize("method", METHODS)
def test_text_labels_keep_text_order(method, adata) -> None:
    codes = adata.obs["batch"].cat.codes.to_numpy()
    adata.obs["batch"] = np.asarray(["10", "2", "33"], dtype=object)[codes]
    run(method, adata)
    assert list(adata.uns[KEY[method]]["batches"]) == ["10", "2", "33"]  # as R sorts character vectors


@pytest.mark.parametrize("method", METHODS)
def test_labels_that_read_the_same_are_an_error(method, adata) -> None:
    codes = adata.obs["batch"].cat.codes.to_numpy()
    adata.obs["batch"] = pd.Series(np.asarray([1, "1", "b"], dtype=object)[codes], index=adata.obs_names, dtype=object)
    with pytest.raises(ValueError, match=r"different labels that read the same as text: 1 \(int\) and '1' \(str\)"):
        run(method, adata)


@pytest.mark.parametrize("method", METHODS)
def test_overflowing_norm_is_an_error(method, adata) -> None:
    adata.X[7, 3] = 1e300
    before = adata.X.copy()
    with pytest.raises(ValueError, match="l2 norm of the cell in row 7 overflows"):
        run(method, adata)
    np.testing.assert_array_equal(adata.X, before)


def test_large_but_safe_values_still_correct(adata) -> None:
    # 1e100 squares to 1e200: finite, so the cell is cosine-normalised as any other
    adata.X[7, 3] = 1e100
    mnnkit.correct(adata, "batch", k=5)
    row = adata.layers["mnn"][7]
    assert np.isfinite(row).all() and np.linalg.norm(row) > 0


@pytest.mark.parametrize("method", METHODS)
def test_subset_by_name_with_duplicated_var_names_is_an_error(method, adata) -> None:
    adata.var_names = ["g0", "g1", "g1", *[f"g{i}" for i in range(3, 10)]]
    with pytest.raises(ValueError, match=r"var_names are not unique \('g1' appear"):
        run(method, adata, subset=["g0", "g1", "g3"])
    run(method, adata, subset=np.arange(10) < 5)  # a mask still works


@pytest.mark.parametrize("method", METHODS)
def test_n_jobs_limits_threads_and_keeps_the_result(method, adata, monkeypatch) -> None:
    import numba
    from threadpoolctl import threadpool_info

    from mnnkit.correction.classic import _engine as classic_engine
    from mnnkit.correction.fast import _engine as fast_engine

    engine = classic_engine if method == "classic" else fast_engine
    seen = []
    real = engine.merge_step

    def recording(*args, **kwargs):
        seen.append((numba.get_num_threads(), [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "merge_step", recording)
    before = numba.get_num_threads()
    one = run(method, adata.copy(), n_jobs=1, copy=True)
    assert seen and all(n == 1 and all(b == 1 for b in blas) for n, blas in seen)
    assert numba.get_num_threads() == before  # restored after the call
    seen.clear()
    two = run(method, adata.copy(), n_jobs=2, copy=True)
    assert all(n == min(2, numba.config.NUMBA_NUM_THREADS) for n, _ in seen)
    key = ("layers", "mnn") if method == "classic" else ("obsm", "X_mnn")
    np.testing.assert_allclose(getattr(one, key[0])[key[1]], getattr(two, key[0])[key[1]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "two"])
def test_bad_n_jobs_is_an_error_before_any_work(adata, n_jobs) -> None:
    with pytest.raises((TypeError, ValueError), match="n_jobs must be None or a non-zero integer"):
        mnnkit.correct(adata, "batch", n_jobs=n_jobs)
    assert "mnn" not in adata.layers


def test_n_jobs_none_follows_scanpy_settings_once_set(adata, monkeypatch) -> None:
    import numba
    import scanpy as sc

    from mnnkit.correction.classic import _engine as classic_engine

    seen = []
    real = classic_engine.merge_step

    def recording(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(classic_engine, "merge_step", recording)
    configured = sc.settings.n_jobs
    try:
        sc.settings.n_jobs = 1  # scanpy's default: threads left as they are
        run("classic", adata, copy=True)
        assert set(seen) == {numba.get_num_threads()}
        seen.clear()
        sc.settings.n_jobs = -(os.cpu_count() or 1)  # joblib's convention: all cores but cores - 1, i.e. one
        run("classic", adata, copy=True)
        assert set(seen) == {1}
    finally:
        sc.settings.n_jobs = configured


def test_merge_tree_steps_follow_batchelor() -> None:
    from mnnkit.correction._plan import resolve_merge_plan

    names = ["a", "b", "c", "d", "e", "f"]
    plan = resolve_merge_plan([["a", "b", "c"], ["d", "e", "f"]], names)
    # batchelor: 4 <- 5, (4,5) <- 6, 1 <- 2, (1,2) <- 3, (1,2,3) <- (4,5,6)
    assert plan.steps == (((3,), (4,)), ((3, 4), (5,)), ((0,), (1,)), ((0, 1), (2,)), ((0, 1, 2), (3, 4, 5)))
    assert plan.source == "tree" and plan.tree == [["a", "b", "c"], ["d", "e", "f"]]
    deep = resolve_merge_plan([["f", ["b", "a"]], "c", [4, 3]], names)  # positions work too
    # the root's second child [e, d] first, then inside the first child its second child [b, a] first
    assert deep.steps == (((4,), (3,)), ((1,), (0,)), ((5,), (1, 0)), ((5, 1, 0), (2,)), ((5, 1, 0, 2), (4, 3)))
    flat = resolve_merge_plan(["c", "a", "b", "d", "e", "f"], names)
    assert flat.source == "given" and flat.steps[0] == ((2,), (0,))


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ([["a", "b"], ["c", "a"]], "more than once: a"),
        ([["a", "b"], ["c"]], "missing: d"),
        ([["a", "b"], []], "empty list"),
        ([["a", "x"], ["c", "d"]], "'x' is not a batch"),
    ],
)
def test_bad_merge_trees(tree, message) -> None:
    from mnnkit.correction._plan import resolve_merge_plan

    with pytest.raises(ValueError, match=message):
        resolve_merge_plan(tree, ["a", "b", "c", "d"])


@pytest.mark.parametrize("method", METHODS)
def test_tree_of_one_group_equals_the_progressive_order(method, adata) -> None:
    flat = run(method, adata, merge_order=["b2", "b0", "b1"], copy=True)
    tree = run(method, adata, merge_order=[["b2", "b0", "b1"]], copy=True)
    key = KEY[method]
    out = (lambda a: a.layers[key]) if method == "classic" else (lambda a: a.obsm[key])
    np.testing.assert_array_equal(out(flat), out(tree))
    assert list(tree.uns[key]["merge_order"]) == ["b2", "b0", "b1"]


def test_float16_input_is_computed_in_float64(adata) -> None:
    half = adata.copy()
    half.X = half.X.astype(np.float16)
    same_values = adata.copy()
    same_values.X = half.X.astype(np.float64)
    mnnkit.correct(half, "batch", k=5)
    mnnkit.correct(same_values, "batch", k=5)
    assert half.layers["mnn"].dtype == np.float64
    np.testing.assert_array_equal(half.layers["mnn"], same_values.layers["mnn"])


@pytest.mark.parametrize("mode", ["r", "r+"])
def test_backed_message_names_the_mode(adata, tmp_path, mode) -> None:
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed=mode)
    try:
        with pytest.raises(ValueError, match=rf"backed mode \(read with backed='{re.escape(mode)}'\)"):
            mnnkit.fast_mnn(backed, "batch")
    finally:
        backed.file.close()


@pytest.mark.parametrize("method", METHODS)
def test_restrict_every_cell_equals_no_restrict(method, adata) -> None:
    plain = run(method, adata, copy=True)
    everyone = run(method, adata, restrict=np.ones(adata.n_obs, dtype=bool), copy=True)
    key = KEY[method]
    out = (lambda a: a.layers[key]) if method == "classic" else (lambda a: a.obsm[key])
    np.testing.assert_allclose(out(everyone), out(plain), rtol=0, atol=1e-12)
    for step in plain.uns[key]["steps"]:
        np.testing.assert_array_equal(everyone.uns[key]["steps"][step]["pairs"], plain.uns[key]["steps"][step]["pairs"])


@pytest.mark.parametrize("method", METHODS)
def test_restrict_pairs_only_restricted_cells_and_corrects_all(method, adata) -> None:
    adata.obs["ctrl"] = np.arange(adata.n_obs) % 3 == 0
    before = adata.obs["ctrl"].copy()
    out = run(method, adata, restrict="ctrl", copy=True)
    key = KEY[method]
    for step in out.uns[key]["steps"].values():
        assert adata.obs["ctrl"].to_numpy()[step["pairs"]].all()
    corrected = out.layers[key] if method == "classic" else out.obsm[key]
    assert np.isfinite(corrected).all()
    pd.testing.assert_series_equal(adata.obs["ctrl"], before)
    assert out.uns[key]["params"]["restrict"] == "ctrl"


@pytest.mark.parametrize(
    ("restrict", "kwargs", "error", "message"),
    [
        ("nope", {}, ValueError, "restrict 'nope' is not a column of adata.obs"),
        ("batch", {}, TypeError, "must be boolean"),
        (np.zeros(3, dtype=bool), {}, ValueError, "one entry per cell"),
        ("ctrl_b0_only", {}, ValueError, "restrict selects no cell of batch"),
    ],
)
@pytest.mark.parametrize("method", METHODS)
def test_bad_restrict(method, adata, restrict, kwargs, error, message) -> None:
    adata.obs["ctrl_b0_only"] = (adata.obs["batch"] == "b0").to_numpy()
    with pytest.raises(error, match=message):
        run(method, adata, restrict=restrict, **kwargs)


def test_restrict_limits(adata) -> None:
    adata.obs["ctrl"] = np.arange(adata.n_obs) % 2 == 0
    with pytest.raises(ValueError, match="restrict cannot be combined with approximate=True"):
        mnnkit.correct(adata, "batch", k=5, restrict="ctrl", approximate=True)
    with pytest.raises(ValueError, match="restrict needs neighbors='exact'"):
        mnnkit.fast_mnn(adata, "batch", k=5, d=3, restrict="ctrl", neighbors="pynndescent")


def test_cluster_mnn_moves_paired_centroids_onto_their_partners(adata) -> None:
    adata.obs["cl"] = np.where(np.asarray(adata.X)[:, 0] > np.median(np.asarray(adata.X)[:, 0]), 1, 2)
    out = mnnkit.cluster_mnn(adata, "batch", clusters="cl", copy=True)
    info = out.uns["X_cluster_mnn"]
    table = info["clusters"]
    assert list(table["batch"]) == ["b0", "b0", "b1", "b1", "b2", "b2"]
    assert table["pcs"].shape == (6, 5) and out.obsm["X_cluster_mnn"].shape == (adata.n_obs, 5)
    for step in info["steps"].values():  # with k=1 a right centroid of a pair lands on its left partner
        for left, right in step["pairs"]:
            np.testing.assert_allclose(table["corrected"][right], table["corrected"][left], atol=1e-12)
    # meta-clusters: connected components of the pairs, numbered from 1 by first centroid
    assert table["meta"][0] == 1 and set(table["meta"]) == set(range(1, table["meta"].max() + 1))


def test_cluster_mnn_clusters_none_runs_kmeans(adata) -> None:
    out = mnnkit.cluster_mnn(adata, "batch", clusters=None, n_clusters=3, rng=1, copy=True)
    labels = out.obs["X_cluster_mnn_cluster"]
    assert labels.nunique() == 3 and np.isfinite(out.obsm["X_cluster_mnn"]).all()
    again = mnnkit.cluster_mnn(adata, "batch", clusters=None, n_clusters=3, rng=1, copy=True)
    np.testing.assert_array_equal(again.obsm["X_cluster_mnn"], out.obsm["X_cluster_mnn"])
    with pytest.raises(ValueError, match="clusters .nope. not in adata.obs; available"):
        mnnkit.cluster_mnn(adata, "batch", clusters="nope")
