"""The fast method's auto-merge pair counts (``_count.count_row``): grouped searches give the per-node counts.

The reference is the per-node logic written plainly: the left node's data orthogonalised cumulatively
against each right node's batch vectors, each right node against the left node's, and one
:func:`find_mutual_pairs` (exact search) per node.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mnnkit
from mnnkit.correction._pairs import find_mutual_pairs, side_k
from mnnkit.correction.fast import _count
from mnnkit.correction.fast import _engine as fast_engine
from mnnkit.correction.fast._engine import FastMergeState, FastParams
from mnnkit.correction.fast._orthogonalize import orthogonalize
from mnnkit.correction.fast._search import ExactSearch
from mnnkit.neighbors import _mutual_counts, _segment_kernels
from tests.auto_merge_data import many_small_batches, merge_steps


def naive_count_row(state: FastMergeState, left, rights) -> list[int]:
    """One exact MNN search per right node, as the counting did before it was grouped."""
    left_data = state.data[state.rows(left)].copy()
    counts = []
    for right in rights:
        right_data = state.data[state.rows(right)].copy()
        orthogonalize(right_data, state.extras[left])
        orthogonalize(left_data, state.extras[right])  # cumulative: carried to the next right node
        k_left = side_k(state.params.k, state.params.prop_k, left_data.shape[0])
        k_right = side_k(state.params.k, state.params.prop_k, right_data.shape[0])
        counts.append(len(find_mutual_pairs(left_data, right_data, k_left=k_left, k_right=k_right)))
    return counts


def tied_data(rng: np.random.Generator, sizes, n_dims: int) -> np.ndarray:
    """Cells on a coarse grid (many equal distances) with duplicated cells, shifted per batch."""
    blocks = []
    for n in sizes:
        block = rng.integers(-2, 3, size=(n, n_dims)).astype(np.float64)
        if n > 2:
            block[rng.integers(0, n, n // 3)] = block[0]  # duplicates of the first cell
        blocks.append(block + rng.integers(-1, 2, size=n_dims))
    return np.vstack(blocks)


def make_state(rng, sizes, n_dims, k, prop_k=None, *, tied=True) -> FastMergeState:
    data = tied_data(rng, sizes, n_dims) if tied else rng.normal(size=(sum(sizes), n_dims))
    stops = np.cumsum(sizes)
    members = [np.arange(stop - n, stop) for n, stop in zip(sizes, stops, strict=True)]
    return FastMergeState(data=data, members=members, params=FastParams(k=k, prop_k=prop_k), search=ExactSearch())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tied", [True, False])
def test_single_batches_match_the_naive_counts(seed: int, tied: bool) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.choice([1, 2, 3, 7, 12, 25, 40], size=9)]
    k = int(rng.choice([3, 8, 15, 30]))  # larger than several batches
    state = make_state(rng, sizes, int(rng.integers(2, 6)), k, prop_k=0.2 if seed % 2 else None, tied=tied)
    for last in range(1, len(sizes)):
        rights = [(b,) for b in range(last)]
        assert _count.count_row(state, (last,), rights) == naive_count_row(state, (last,), rights)


@pytest.mark.parametrize("seed", range(6))
def test_merged_nodes_with_batch_vectors_match_the_naive_counts(seed: int) -> None:
    """Merged nodes (with batch vectors) break the groups; the left data change between groups."""
    rng = np.random.default_rng(100 + seed)
    sizes = [int(n) for n in rng.choice([2, 5, 9, 20, 33], size=10)]
    n_dims = 4
    state = make_state(rng, sizes, n_dims, k=int(rng.choice([4, 10, 25])))
    # nodes as the auto merge builds them: merged ones carry their merges' vectors, some none (skipped)
    nodes = [(0, 1), (2,), (3, 4, 5), (6,), (7,), (8, 9)]
    state.extras[(0, 1)] = [rng.normal(size=n_dims)]
    state.extras[(3, 4, 5)] = []  # every merge skipped: it leaves the left data alone, like a single batch
    state.extras[(8, 9)] = [rng.normal(size=n_dims), rng.normal(size=n_dims)]
    state.extras[(7,)] = []
    for i in range(1, len(nodes)):
        assert _count.count_row(state, nodes[i], nodes[:i]) == naive_count_row(state, nodes[i], nodes[:i])
    # a merged left node (with vectors) against single batches and merged nodes in every order
    order = [nodes[i] for i in rng.permutation(len(nodes) - 1)]
    assert _count.count_row(state, (8, 9), order) == naive_count_row(state, (8, 9), order)
    before = state.data.copy()
    _count.count_row(state, (0, 1), [(2,), (7,), (3, 4, 5)])
    np.testing.assert_array_equal(state.data, before)  # counting leaves the data alone


def test_small_groups_and_left_chunks_match(monkeypatch) -> None:
    """Groups split at GROUP_MAX_CELLS, large nodes searched alone, left cells in several chunks."""
    rng = np.random.default_rng(7)
    sizes = [30, 4, 11, 19, 6, 50, 8, 13, 90]
    state = make_state(rng, sizes, 3, k=6)
    state.extras[(3,)] = [rng.normal(size=3)]
    monkeypatch.setattr(_count, "GROUP_MAX_CELLS", 25)
    monkeypatch.setattr(_mutual_counts, "GROUP_BLOCK_BYTES", 8 * 60)  # about 3 left cells per block
    for left in (len(sizes) - 1, 5):
        rights = [(b,) for b in range(len(sizes)) if b != left]
        assert _count.count_row(state, (left,), rights) == naive_count_row(state, (left,), rights)


def test_grouped_counts_equal_each_pair_search(monkeypatch) -> None:
    """mutual_pair_counts against find_mutual_pairs directly, on the threaded path of the kernel too."""
    rng = np.random.default_rng(3)
    left = tied_data(rng, [60], 3)
    sizes = [1, 5, 14, 30, 9, 60]
    right = tied_data(rng, sizes, 3)
    stops = np.cumsum(sizes)
    for k_left in (1, 7, 59):
        k_rights = [int(rng.integers(1, n + 1)) for n in sizes]
        expected = [
            len(find_mutual_pairs(left, right[stop - n : stop], k_left=k_left, k_right=kr))
            for n, stop, kr in zip(sizes, stops, k_rights, strict=True)
        ]
        assert _mutual_counts.mutual_pair_counts(left, right, sizes, k_left, k_rights).tolist() == expected
        monkeypatch.setattr(_segment_kernels, "KNN_PARALLEL_MIN_WORK", 0)  # through run_in_ranges
        assert _mutual_counts.mutual_pair_counts(left, right, sizes, k_left, k_rights).tolist() == expected
        monkeypatch.undo()


def test_graph_search_and_restrict_count_node_by_node() -> None:
    """With the graph search (or restrict) every node gets its own search, as before."""
    rng = np.random.default_rng(11)
    state = make_state(rng, [10, 6, 8, 12], 3, k=5)
    calls = []

    class Graphish(ExactSearch):
        name = "pynndescent"

        def mnn_pairs(self, left, right, left_parts, right_parts, k_left, k_right):
            calls.append(right.shape[0])
            return super().mnn_pairs(left, right, left_parts, right_parts, k_left, k_right)

    state.search = Graphish()
    rights = [(0,), (1,), (2,)]
    assert _count.count_row(state, (3,), rights) == naive_count_row(state, (3,), rights)
    assert calls == [10, 6, 8]


@pytest.mark.filterwarnings("ignore::UserWarning")  # k larger than the smallest batch
@pytest.mark.parametrize("k", [5, 20])
def test_fast_mnn_auto_is_unchanged(monkeypatch, k: int) -> None:
    """fast_mnn(merge_order="auto") gives the same output as with the per-node counts."""
    adata = many_small_batches()
    ours = mnnkit.fast_mnn(adata, "batch", d=6, k=k, merge_order="auto", svd_solver="exact", copy=True)
    monkeypatch.setattr(fast_engine, "count_row", naive_count_row)
    before = mnnkit.fast_mnn(adata, "batch", d=6, k=k, merge_order="auto", svd_solver="exact", copy=True)
    assert np.array_equal(ours.obsm["X_mnn"], before.obsm["X_mnn"])
    assert merge_steps(ours, "X_mnn") == merge_steps(before, "X_mnn")
    given = mnnkit.fast_mnn(adata, "batch", d=6, k=k, svd_solver="exact", copy=True)
    # auto chose another order than the batch order
    assert [s[:2] for s in merge_steps(ours, "X_mnn")] != [s[:2] for s in merge_steps(given, "X_mnn")]


def test_kernel_without_jit_matches_jit(tmp_path) -> None:
    """The counting kernel also runs as plain Python (NUMBA_DISABLE_JIT=1), with the same counts."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = textwrap.dedent(
        """
        import numpy as np
        from mnnkit.neighbors import mutual_pair_counts
        rng = np.random.default_rng(2)
        left = rng.integers(-2, 3, size=(40, 3)).astype(float)
        right = rng.integers(-2, 3, size=(50, 3)).astype(float)
        print(mutual_pair_counts(left, right, [5, 20, 25], 6, [3, 8, 11]).tolist())
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": here}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rng = np.random.default_rng(2)
    left = rng.integers(-2, 3, size=(40, 3)).astype(float)
    right = rng.integers(-2, 3, size=(50, 3)).astype(float)
    expected = [
        len(find_mutual_pairs(left, right[a:b], k_left=6, k_right=kr))
        for (a, b), kr in zip([(0, 5), (5, 25), (25, 50)], [3, 8, 11], strict=True)
    ]
    assert result.stdout.strip() == str(expected)
