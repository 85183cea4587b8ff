"""``neighbors="auto"``: which search a correction runs, and that it is recorded and reproducible."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mnnkit
from mnnkit.correction.fast import _search
from tests.conftest import make_batches


def _work_of_merges(sizes: list[int], order: list[int], n_dims: int) -> float:
    """Multiply-adds of exact searches when merging batches one by one in ``order`` (a direct count)."""
    merged = sizes[order[0]]
    total = 0
    for b in order[1:]:
        total += merged * sizes[b] * n_dims
        merged += sizes[b]
    return float(total)


@pytest.mark.parametrize("sizes", [[5, 7], [30, 1, 12], [100, 200, 300, 50]])
def test_exact_work_is_the_same_for_every_merge_order(sizes):
    expected = _search.exact_search_work(sizes, 50)
    for order in itertools.permutations(range(len(sizes))):
        assert _work_of_merges(sizes, list(order), 50) == expected


def test_auto_rule_by_size_and_restrict(monkeypatch):
    monkeypatch.setattr(_search, "AUTO_PARTITION_MIN_WORK", 1000.0)
    monkeypatch.setattr(_search, "AUTO_EXACT_MAX_WORK", 2000.0)
    assert _search.resolve_neighbors("auto", [10, 10], 10, exact_only=False) == "exact"  # 1000 exactly
    assert _search.resolve_neighbors("auto", [10, 11], 10, exact_only=False) == "partition"
    assert _search.resolve_neighbors("auto", [10, 20], 10, exact_only=False) == "partition"  # 2000 exactly
    assert _search.resolve_neighbors("auto", [10, 21], 10, exact_only=False) == "pynndescent"
    for sizes in ([10, 11], [10, 21]):
        assert _search.resolve_neighbors("auto", sizes, 10, exact_only=True) == "exact"
    for explicit in ("exact", "partition", "pynndescent"):
        assert _search.resolve_neighbors(explicit, [10, 11], 10, exact_only=False) == explicit


def test_auto_between_the_thresholds_runs_the_partition_search(monkeypatch):
    monkeypatch.setattr(_search, "AUTO_PARTITION_MIN_WORK", 0.0)
    adata = make_batches(sizes=(60, 50, 70), genes=40, seed=3)
    auto = mnnkit.fast_mnn(adata, "batch", d=10, copy=True)
    partition = mnnkit.fast_mnn(adata, "batch", d=10, neighbors="partition", copy=True)
    assert auto.uns["X_mnn"]["params"]["neighbors"] == "partition"
    np.testing.assert_array_equal(auto.obsm["X_mnn"], partition.obsm["X_mnn"])


def test_auto_default_equals_exact_on_small_data():
    adata = make_batches(sizes=(60, 50, 70), genes=40, seed=3)
    default = mnnkit.fast_mnn(adata, "batch", d=10, copy=True)
    exact = mnnkit.fast_mnn(adata, "batch", d=10, neighbors="exact", copy=True)
    params = default.uns["X_mnn"]["params"]
    assert params["neighbors"] == "exact"
    assert params["neighbors_requested"] == "auto"
    np.testing.assert_array_equal(default.obsm["X_mnn"], exact.obsm["X_mnn"])


def test_auto_above_the_threshold_runs_the_graph_search(monkeypatch):
    # batches below SMALL_GRAPH cells get exact graphs, so the graph path runs without pynndescent here
    monkeypatch.setattr(_search, "AUTO_PARTITION_MIN_WORK", 0.0)
    monkeypatch.setattr(_search, "AUTO_EXACT_MAX_WORK", 0.0)
    adata = make_batches(sizes=(60, 50, 70), genes=40, seed=3)
    auto = mnnkit.fast_mnn(adata, "batch", d=10, copy=True)
    graph = mnnkit.fast_mnn(adata, "batch", d=10, neighbors="pynndescent", copy=True)
    assert auto.uns["X_mnn"]["params"]["neighbors"] == "pynndescent"
    np.testing.assert_array_equal(auto.obsm["X_mnn"], graph.obsm["X_mnn"])


def test_auto_with_restrict_is_exact(monkeypatch):
    monkeypatch.setattr(_search, "AUTO_PARTITION_MIN_WORK", 0.0)
    adata = make_batches(sizes=(60, 50), genes=40, seed=1)
    restrict = np.ones(adata.n_obs, dtype=bool)
    restrict[::7] = False
    out = mnnkit.fast_mnn(adata, "batch", restrict=restrict, d=10, copy=True)
    assert out.uns["X_mnn"]["params"]["neighbors"] == "exact"
    for approximate in ("partition", "pynndescent"):
        with pytest.raises(ValueError, match="restrict needs neighbors='exact'"):
            mnnkit.fast_mnn(adata, "batch", restrict=restrict, d=10, neighbors=approximate, copy=True)


def test_classic_auto_is_exact_and_recorded():
    adata = make_batches(sizes=(60, 50), genes=40, seed=2)
    default = mnnkit.correct(adata, "batch", copy=True)
    exact = mnnkit.correct(adata, "batch", neighbors="exact", copy=True)
    params = default.uns["mnn"]["params"]
    assert (params["neighbors"], params["neighbors_requested"]) == ("exact", "auto")
    np.testing.assert_array_equal(default.layers["mnn"], exact.layers["mnn"])
    with pytest.raises(ValueError, match="neighbors"):
        mnnkit.correct(adata, "batch", neighbors="brute", copy=True)


def test_correct_method_fast_follows_the_fast_rule(monkeypatch):
    monkeypatch.setattr(_search, "AUTO_PARTITION_MIN_WORK", 0.0)
    adata = make_batches(sizes=(60, 50, 70), genes=40, seed=3)
    out = mnnkit.correct(adata, "batch", method="fast", d=10, copy=True)
    assert out.uns["X_mnn"]["params"]["neighbors"] == "partition"
    monkeypatch.setattr(_search, "AUTO_EXACT_MAX_WORK", 0.0)
    out = mnnkit.correct(adata, "batch", method="fast", d=10, copy=True)
    assert out.uns["X_mnn"]["params"]["neighbors"] == "pynndescent"
