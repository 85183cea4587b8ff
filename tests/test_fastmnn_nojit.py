"""Every numba kernel of mnnkit.fastmnn also runs as plain Python (NUMBA_DISABLE_JIT=1), with the same results."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import scipy.sparse as sp


def kernel_outputs() -> dict[str, np.ndarray]:
    """Run every kernel on small fixed inputs; return their outputs (compared between JIT and no JIT)."""
    from mnnkit.correction._pair_kernels import mutual_pairs_among
    from mnnkit.correction.fast import _dask_kernels, _graph_kernels, _pc_kernels, _search_kernels
    from mnnkit.correction.fast._graph import build_batch_graph

    rng = np.random.default_rng(0)
    data = rng.normal(size=(300, 6))
    unit = rng.normal(size=6)
    unit /= np.linalg.norm(unit)
    out = {}
    positions = np.empty(300)
    _pc_kernels.project_rows(data, unit, positions)
    out["positions"] = positions
    shifted = data.copy()
    _pc_kernels.shift_along(shifted, unit, positions, float(positions.mean()))
    out["shifted"] = shifted
    pair_left = rng.integers(0, 300, 50)
    pair_right = np.sort(rng.integers(0, 300, 50))
    starts = np.append(np.unique(pair_right, return_index=True)[1], 50).astype(np.int64)
    out["averages"] = _pc_kernels.group_averages(data, data[::-1].copy(), pair_left, pair_right, starts)
    corrected = data.copy()
    idx = rng.integers(0, out["averages"].shape[0], (300, 5))
    dist = np.sort(rng.random((300, 5)), axis=1)
    _pc_kernels.tricube_correct(corrected, out["averages"], idx, dist, 3.0, 1e-8)
    out["tricube"] = corrected

    graph = build_batch_graph(data, 0)  # small: an exact kNN graph, made symmetric and renumbered
    out["graph_order"], out["graph_indptr"], out["graph_indices"] = graph.order, graph.indptr, graph.indices
    targets = np.ascontiguousarray(data[graph.order])
    queries = rng.normal(size=(40, 6))
    no_cross = (np.zeros(301, dtype=np.int64), np.zeros(0, dtype=np.int32))
    allowed = rng.random(300) < 0.4
    everyone = np.ones(300, dtype=bool)
    no_seeds = (np.zeros(41, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 1), dtype=np.int64))
    lists = rng.integers(0, 300, (20, 6))
    for name, seeds, mask, pivots, entries, budget in (
        ("pivots", no_seeds, everyone, graph.pivots, 4, -1),
        (
            "seeded",
            (np.arange(0, 81, 2, dtype=np.int64), rng.integers(0, 20, 80), lists),
            everyone,
            graph.pivots,
            0,
            -1,
        ),
        (
            "filtered",
            (np.arange(41, dtype=np.int64), rng.integers(0, 20, 40), lists),
            allowed,
            np.flatnonzero(allowed),
            5,
            30,
        ),
    ):
        found = np.empty((40, 5), dtype=np.int64)
        found_dist = np.empty((40, 5))
        _search_kernels.graph_knn(
            targets, targets.astype(np.float32), graph.indptr, graph.indices, *no_cross, pivots, *seeds, queries,
            queries.astype(np.float32), np.arange(40), 5, 12, entries, budget, mask, found, found_dist,
        )  # fmt: skip
        out[f"graph_{name}"] = found
        out[f"graph_{name}_dist"] = found_dist
    landmark, cover = _search_kernels.spaced_landmarks(graph.indptr, graph.indices, *no_cross)
    out["landmark"], out["cover"] = landmark, cover
    slot = np.full(300, -1, dtype=np.int64)
    slot[landmark] = np.arange(landmark.sum())
    rows, ptr, slots = _search_kernels.landmark_seeds(graph.indptr, graph.indices, *no_cross, landmark, cover, slot, 3)
    out["seed_rows"], out["seed_ptr"], out["seed_slots"] = rows, ptr, slots

    exact, nav = np.empty((80, 6)), np.empty((80, 6), dtype=np.float32)
    order = rng.permutation(300)[:80]
    _search_kernels.gather_rows(data, order, exact, nav)
    np.testing.assert_array_equal(exact, data[order])
    np.testing.assert_array_equal(nav, data[order].astype(np.float32))
    out["gathered"], out["gathered_nav"] = exact, nav

    out["within_ptr"], out["within"] = _graph_kernels.edges_within(
        rng.integers(0, 300, (500, 2)).astype(np.int32), np.where(rng.random(300) < 0.5, np.arange(300), -1), 300
    )

    per_column = np.empty(6)
    _pc_kernels.column_sq_deviations(data, 30, 250, per_column)
    out["sq_deviations"] = per_column
    left_nn = rng.integers(0, 40, (60, 4))
    right_nn = rng.integers(0, 60, (40, 5))
    rows = np.unique(right_nn)
    out["candidate_pairs"] = mutual_pairs_among(rows, np.ascontiguousarray(left_nn[rows]), right_nn)
    out["group_order"], out["group_ptr"] = _graph_kernels.group_by_key(rng.integers(0, 30, 200), 30)

    block = sp.random(50, 8, density=0.3, format="csr", random_state=1)
    out["sumsq"] = _dask_kernels.csr_row_sumsq_serial(block.data, block.indptr.astype(np.int64), 50)
    groups = rng.integers(0, 3, 50)
    out["group_sums"] = _dask_kernels.csr_group_sums_serial(
        block.data, block.indices.astype(np.int64), block.indptr.astype(np.int64), rng.random(50) + 0.5, groups, 3, 8
    )
    return out


def test_kernels_without_jit_match_jit(tmp_path) -> None:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "nojit.npz"
    script = textwrap.dedent(
        f"""
        import numpy as np
        from tests.test_fastmnn_nojit import kernel_outputs
        np.savez({str(target)!r}, **kernel_outputs())
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": here}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    plain = np.load(target)
    jitted = kernel_outputs()
    assert sorted(plain.files) == sorted(jitted)
    for name, value in jitted.items():
        if value.dtype.kind == "f":
            # navigation distances use fastmath when compiled; returned distances are re-measured exactly
            np.testing.assert_allclose(plain[name], value, rtol=0, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(plain[name], value, err_msg=name)
    # the searches are not trivial: the seeded and filtered ones return different rows than from pivots
    assert not np.array_equal(jitted["graph_pivots"], jitted["graph_filtered"])
    assert 1 < jitted["landmark"].sum() < 300 and jitted["seed_slots"].size > 0


def test_whole_exact_path_without_jit(tmp_path) -> None:
    """fast_mnn end to end (exact path, which runs the shared MNN and neighbour kernels too) without JIT."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "emb.npy"
    script = textwrap.dedent(
        f"""
        import numpy as np, mnnkit
        from tests.conftest import make_batches
        a = make_batches(sizes=(25, 30, 20), genes=10)
        mnnkit.fast_mnn(a, "batch", d=4, k=6, svd_solver="exact", merge_order="auto")
        np.save({str(target)!r}, a.obsm["X_mnn"])
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": here}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    import mnnkit
    from tests.conftest import make_batches

    a = make_batches(sizes=(25, 30, 20), genes=10)
    mnnkit.fast_mnn(a, "batch", d=4, k=6, svd_solver="exact", merge_order="auto")
    np.testing.assert_allclose(np.load(target), a.obsm["X_mnn"], rtol=0, atol=1e-12)
