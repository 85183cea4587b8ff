"""The classic method's auto-merge pair counts: grouped searches give the per-pair counts.

The reference is :func:`count_node_pairs` (one :func:`find_mutual_pairs` per pair of nodes), and the
auto merge as it ran before the counts were grouped: pair by pair, computed when first needed.
"""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit
from mnnkit.correction import _plan
from mnnkit.correction.classic import _api as classic_api
from mnnkit.correction.classic import _engine
from mnnkit.correction.classic._engine import MergeState, MnnParams, count_node_pairs, count_node_row
from mnnkit.neighbors import _mutual_counts
from tests.auto_merge_data import many_small_batches, merge_steps


def make_state(rng, sizes, n_genes, k_left, k_right, prop_k=None) -> MergeState:
    """Cells on a coarse grid (many equal distances) with duplicated cells."""
    blocks = []
    for n in sizes:
        block = rng.integers(-2, 3, size=(n, n_genes)).astype(np.float64)
        if n > 2:
            block[rng.integers(0, n, n // 3)] = block[0]
        blocks.append(block + rng.integers(-1, 2, size=n_genes))
    stops = np.cumsum(sizes)
    return MergeState(
        data_in=np.vstack(blocks),
        data_out=None,
        out_subset_cols=None,
        members=[np.arange(stop - n, stop) for n, stop in zip(sizes, stops, strict=True)],
        params=MnnParams(k_left=k_left, k_right=k_right, prop_k=prop_k),
    )


@pytest.mark.parametrize("seed", range(8))
def test_rows_match_pair_counts(seed: int, monkeypatch) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.choice([1, 2, 4, 9, 17, 30], size=10)]
    k_left, k_right = (int(k) for k in rng.choice([2, 6, 12, 35], size=2))  # different per side, some > sizes
    state = make_state(rng, sizes, int(rng.integers(2, 7)), k_left, k_right, prop_k=0.3 if seed % 3 == 0 else None)
    nodes = [(0, 1), (2,), (3,), (4, 5, 6), (7,), (8,), (9,)]
    if seed % 2:  # small groups: several flushes, nodes over the limit searched alone
        monkeypatch.setattr(_engine, "GROUP_MAX_CELLS", 20)
        monkeypatch.setattr(_mutual_counts, "GROUP_BLOCK_BYTES", 8 * 40)
    for i in range(1, len(nodes)):
        expected = [count_node_pairs(state, nodes[i], right) for right in nodes[:i]]
        assert count_node_row(state, nodes[i], nodes[:i]) == expected


def test_pynndescent_and_restrict_count_pair_by_pair(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    state = make_state(rng, [10, 12, 8], 3, 5, 5)
    seen = []
    monkeypatch.setattr(_engine, "count_node_pairs", lambda s, left, right: seen.append(right) or 0)
    state.restricted = np.ones(30, dtype=bool)
    assert count_node_row(state, (2,), [(0,), (1,)]) == [0, 0]
    state.restricted = None
    state.params = MnnParams(k_left=5, k_right=5, neighbors="pynndescent")
    assert count_node_row(state, (2,), [(0,), (1,)]) == [0, 0]
    assert seen == [(0,), (1,), (0,), (1,)]


def _old_run_merges(state: MergeState, plan, *, progress=None) -> None:
    """The classic merge loop as it ran before: auto-merge counts pair by pair, when first needed."""
    _plan.run_plan(
        plan,
        len(state.members),
        lambda left, right: _engine.merge_step(state, left, right),
        count_pairs=lambda left, right: count_node_pairs(state, left, right),
        progress=progress,
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # k larger than the smallest batch
@pytest.mark.parametrize("k", [5, 20])
def test_correct_auto_is_unchanged(monkeypatch, k: int) -> None:
    """correct(merge_order="auto") gives the same output as the pair-by-pair counts."""
    adata = many_small_batches()
    ours = mnnkit.correct(adata, "batch", k=k, merge_order="auto", copy=True)
    monkeypatch.setattr(classic_api, "run_merges", _old_run_merges)
    before = mnnkit.correct(adata, "batch", k=k, merge_order="auto", copy=True)
    assert np.array_equal(ours.layers["mnn"], before.layers["mnn"])
    assert merge_steps(ours, "mnn") == merge_steps(before, "mnn")
    given = mnnkit.correct(adata, "batch", k=k, copy=True)
    # auto chose another order than the batch order
    assert [s[:2] for s in merge_steps(ours, "mnn")] != [s[:2] for s in merge_steps(given, "mnn")]
