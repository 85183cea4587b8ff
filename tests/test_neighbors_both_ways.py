"""knn_both_ways: one BLAS pass for both directions must equal two exact knn calls, ties included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mnnkit.neighbors import knn, knn_both_ways
from mnnkit.neighbors._exact import exact_knn_both_ways


def _points(seed: int, n_left: int, n_right: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 4, size=(n_left, dim)).astype(float)  # a coarse grid: many exact ties
    right = rng.integers(0, 4, size=(n_right, dim)).astype(float)
    right[5] = right[2]
    left[7] = left[1]
    return left, right


@pytest.mark.parametrize("chunk_bytes", [2**12, 2**16, 64 * 2**20])
@pytest.mark.parametrize(("n_left", "n_right", "dim", "k_right", "k_left"), [(120, 90, 3, 10, 7), (60, 200, 8, 25, 25)])
def test_equals_two_exact_searches_with_ties(chunk_bytes, n_left, n_right, dim, k_right, k_left) -> None:
    left, right = _points(1, n_left, n_right, dim)
    li, ld, ri, rd = exact_knn_both_ways(left, right, k_right, k_left, chunk_bytes=chunk_bytes)
    forward = knn(left, right, k_right)
    backward = knn(right, left, k_left)
    np.testing.assert_array_equal(li, forward.indices)
    np.testing.assert_array_equal(ri, backward.indices)
    np.testing.assert_array_equal(ld, forward.distances)
    np.testing.assert_array_equal(rd, backward.distances)
    # and against brute force with a stable sort (ties to the lower index)
    d2 = ((right[:, None, :] - left[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(ri, np.argsort(d2, axis=1, kind="stable")[:, :k_left])


@pytest.mark.parametrize("slack", [0, 3, 16, 1000])
def test_reverse_candidates_resolve_ties_or_fall_back(monkeypatch, slack) -> None:
    """The reverse direction keeps k + slack candidates; rows with more near-ties are searched again."""
    import mnnkit.neighbors._exact as exact_module

    left, right = _points(3, 150, 80, 3)  # 3 dims of 0..3: dozens of cells tie at the k-th distance
    redone = []
    real = exact_module.exact_knn

    def spy(query, data, k, **kwargs):
        redone.append(query.shape[0])
        return real(query, data, k, **kwargs)

    monkeypatch.setattr(exact_module, "KNN_REVERSE_SLACK", slack)
    monkeypatch.setattr(exact_module, "KNN_TWO_PASS_MAX_DIM", 0)  # the one-pass path with its heaps
    monkeypatch.setattr(exact_module, "exact_knn", spy)
    _, _, ri, rd = exact_knn_both_ways(left, right, 5, 9, chunk_bytes=2**12)
    d2 = ((right[:, None, :] - left[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(ri, np.argsort(d2, axis=1, kind="stable")[:, :9])
    np.testing.assert_array_equal(rd, np.sqrt(np.take_along_axis(d2, ri, axis=1)))
    if slack == 0:
        assert redone and redone[0] > 0  # ties beyond the kept candidates: those rows were searched again
    if slack == 1000:
        assert not redone  # every left cell kept: nothing to redo


@pytest.mark.parametrize("n_dim", [3, 50])
def test_two_passes_equal_one_pass_with_heaps(monkeypatch, n_dim) -> None:
    import mnnkit.neighbors._exact as exact_module

    left, right = _points(5, 300, 170, n_dim)
    monkeypatch.setattr(exact_module, "KNN_TWO_PASS_MAX_DIM", 10_000)
    two = exact_knn_both_ways(left, right, 7, 11, chunk_bytes=2**14)
    monkeypatch.setattr(exact_module, "KNN_TWO_PASS_MAX_DIM", 0)
    one = exact_knn_both_ways(left, right, 7, 11, chunk_bytes=2**14)
    for a, b in zip(two, one, strict=True):
        np.testing.assert_array_equal(a, b)


def test_public_front_validates_and_dispatches() -> None:
    left, right = _points(2, 40, 30, 4)
    a, b = knn_both_ways(left, right, 5, 6)
    np.testing.assert_array_equal(a.indices, knn(left, right, 5).indices)
    np.testing.assert_array_equal(b.indices, knn(right, left, 6).indices)
    with pytest.raises(ValueError, match="k_left must be between 1 and 40"):
        knn_both_ways(left, right, 5, 41)
    with pytest.raises(ValueError, match="same number of features"):
        knn_both_ways(left, right[:, :2], 5, 5)


def test_reverse_kernel_runs_without_jit(tmp_path) -> None:
    script = textwrap.dedent(
        f"""
        import numpy as np
        from mnnkit.neighbors._exact import exact_knn_both_ways
        rng = np.random.default_rng(0)
        left, right = rng.integers(0, 3, (30, 3)).astype(float), rng.integers(0, 3, (25, 3)).astype(float)
        np.save({str(tmp_path / "out.npy")!r}, exact_knn_both_ways(left, right, 4, 6, chunk_bytes=512)[2])
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 3, (30, 3)).astype(float), rng.integers(0, 3, (25, 3)).astype(float)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), knn(right, left, 6).indices)


@pytest.mark.parametrize("chunk_bytes", [2**12, 64 * 2**20])  # heaps over chunks / the whole product at once
def test_a_given_product_gives_the_same_neighbours(chunk_bytes) -> None:
    left, right = _points(7, 140, 110, 6)
    given = exact_knn_both_ways(left, right, 9, 6, chunk_bytes=chunk_bytes, gram=left @ right.T)
    d2 = ((left[:, None, :] - right[None, :, :]) ** 2).sum(-1)
    np.testing.assert_array_equal(given[0], np.argsort(d2, axis=1, kind="stable")[:, :9])
    np.testing.assert_array_equal(given[2], np.argsort(d2.T, axis=1, kind="stable")[:, :6])
    np.testing.assert_array_equal(given[3], np.sqrt(np.take_along_axis(d2.T, given[2], axis=1)))
