"""Tests of mnnkit.linalg.randomized_svd, CenteredScaledMatrix and mean_var against scipy/numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numba as nb
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from mnnkit._threads import thread_limits
from mnnkit.linalg import CenteredScaledMatrix, _kernels, _svd, mean_var, randomized_svd, svd_sign_flip

FORMATS = ["dense", "csr", "csc"]


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """Dense references here are small; threaded BLAS only adds contention on shared CI machines."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


DTYPES = [np.float32, np.float64]


def _sparse_lowrank(n=300, g=120, rank=6, density=0.3, seed=0, dtype=np.float64):
    """Sparse matrix with a clear low-rank signal plus noise (so the top singular values are separated)."""
    rng = np.random.default_rng(seed)
    signal = (rng.standard_normal((n, rank)) * np.geomspace(20, 4, rank)) @ rng.standard_normal((rank, g))
    mask = rng.random((n, g)) < density
    dense = np.where(mask, signal + rng.standard_normal((n, g)), 0.0).astype(dtype)
    return dense


def _as(fmt, dense):
    return dense if fmt == "dense" else sp.csr_matrix(dense).asformat(fmt)


def _flip(U, Vt):
    U, Vt = U.copy(), Vt.copy()
    svd_sign_flip(U, Vt)
    return U, Vt


def _max_sin_angle(Va, Vb):
    """Largest principal angle (sine) between the row spaces of Va and Vb (orthonormal rows)."""
    Qa, _ = np.linalg.qr(Va.T)
    Qb, _ = np.linalg.qr(Vb.T)
    cos = np.linalg.svd(Qa.T @ Qb, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - cos.min() ** 2)))


# --------------------------------------------------------------------------- operator
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_operator_products_match_dense(fmt, dtype, weighted):
    dense = _sparse_lowrank(dtype=dtype)
    rng = np.random.default_rng(1)
    mu = rng.standard_normal(dense.shape[1])
    w = rng.random(dense.shape[0]) + 0.1 if weighted else None
    A = (dense.astype(np.float64) - mu) * (w[:, None] if weighted else 1.0)
    op = CenteredScaledMatrix(_as(fmt, dense), center=mu, row_weights=w)
    B = rng.standard_normal((dense.shape[1], 7))
    C = rng.standard_normal((dense.shape[0], 7))
    np.testing.assert_allclose(op.matmat(B), A @ B, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(op.rmatmat(C), A.T @ C, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(op.gram(B), A.T @ (A @ B), rtol=1e-12, atol=1e-8)
    np.testing.assert_allclose(op.matmat(B[:, 0]), A @ B[:, 0], rtol=1e-12, atol=1e-10)  # 1-D input


def test_operator_small_blocks_and_unsorted_indices(monkeypatch):
    """Many row blocks and CSR/CSC with unsorted indices and duplicates give the same products."""
    from mnnkit.linalg import _operator

    monkeypatch.setattr(_operator, "LINALG_BLOCK_BYTES", 64 * 8 * 3)  # 64 rows for 3 columns per block
    dense = _sparse_lowrank(n=500, g=90)
    rng = np.random.default_rng(2)
    mu, w = rng.standard_normal(90), rng.random(500)
    A = (dense - mu) * w[:, None]
    V = rng.standard_normal((90, 3))
    for fmt in ["csr", "csc"]:
        X = _as(fmt, dense)
        # reverse the order of entries inside every row/column and duplicate half of each entry
        data, indices, indptr = [], [], [0]
        for i in range(X.shape[0] if fmt == "csr" else X.shape[1]):
            lo, hi = X.indptr[i], X.indptr[i + 1]
            d, j = X.data[lo:hi][::-1], X.indices[lo:hi][::-1]
            data += [*(d / 2), *(d / 2)]
            indices += [*j, *j]
            indptr.append(len(data))
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        Xu = cls((np.array(data), np.array(indices), np.array(indptr)), shape=X.shape)
        assert not Xu.has_sorted_indices
        op = CenteredScaledMatrix(Xu, center=mu, row_weights=w)
        np.testing.assert_allclose(op.gram(V), A.T @ (A @ V), rtol=1e-11, atol=1e-8)
        np.testing.assert_allclose(op.matmat(V), A @ V, rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(op.rmatmat(A @ V), A.T @ (A @ V), rtol=1e-12, atol=1e-8)
    op = CenteredScaledMatrix(dense.astype(np.float32), center=mu, row_weights=w)
    np.testing.assert_allclose(op.gram(V), A.T @ (A @ V), rtol=1e-5, atol=1e-3)


def test_operator_rejects_bad_blocks():
    op = CenteredScaledMatrix(np.ones((4, 3)))
    with pytest.raises(ValueError, match="B must have 3 rows"):
        op.matmat(np.ones((4, 2)))
    with pytest.raises(ValueError, match="C must have 4 rows"):
        op.rmatmat(np.ones((3, 2)))


# --------------------------------------------------------------------------- exact path
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("center", [None, "mean", "vector"])
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_matches_scipy_svd(fmt, dtype, center, weighted):
    dense = _sparse_lowrank(n=80, g=50, dtype=dtype)
    d64 = dense.astype(np.float64)
    rng = np.random.default_rng(3)
    w = rng.random(80) + 0.2 if weighted else None
    if center == "vector":
        mu = rng.standard_normal(50)
        arg = mu
    elif center == "mean":
        c = np.ones(80) if w is None else w**2
        mu = (c[:, None] * d64).sum(0) / c.sum()
        arg = "mean"
    else:
        mu, arg = np.zeros(50), None
    A = (d64 - mu) * (1.0 if w is None else w[:, None])
    U0, S0, Vt0 = scipy.linalg.svd(A, full_matrices=False)
    k = 10
    U0, Vt0 = _flip(U0[:, :k], Vt0[:k])
    U, S, Vt = randomized_svd(_as(fmt, dense), k, center=arg, row_weights=w, method="exact")
    np.testing.assert_allclose(S, S0[:k], rtol=1e-6)
    np.testing.assert_allclose(Vt, Vt0, atol=1e-6)
    np.testing.assert_allclose(U, U0, atol=1e-6)
    assert U.dtype == S.dtype == Vt.dtype == np.float64


def test_weighted_mean_centre_is_mean_of_batch_means():
    """fastMNN's use: rows of batch b weighted 1/sqrt(n_b), centre = unweighted mean of batch means."""
    rng = np.random.default_rng(4)
    sizes = [30, 90, 60]
    X = np.vstack([rng.standard_normal((m, 25)) + 3 * b for b, m in enumerate(sizes)])
    w = np.concatenate([np.full(m, 1 / np.sqrt(m)) for m in sizes])
    starts = np.cumsum([0, *sizes])
    mu = np.mean([X[starts[b] : starts[b + 1]].mean(0) for b in range(3)], axis=0)
    A = (X - mu) * w[:, None]
    S0 = scipy.linalg.svdvals(A)[:8]
    for fmt in FORMATS:
        _, S, _ = randomized_svd(_as(fmt, X), 8, center="mean", row_weights=w, method="exact")
        np.testing.assert_allclose(S, S0, rtol=1e-10)
        _, S, _ = randomized_svd(_as(fmt, X), 8, center="mean", row_weights=w, method="randomized", n_iter=12)
        np.testing.assert_allclose(S, S0, rtol=1e-6)


# --------------------------------------------------------------------------- randomized path
def _spectrum_matrix(n=400, g=300, seed=5):
    """Matrix with known singular values: 10 leading ones (100 to 50), then a decaying tail (5 to 1)."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((n, g)))
    V, _ = np.linalg.qr(rng.standard_normal((g, g)))
    s = np.concatenate([np.geomspace(100, 50, 10), np.geomspace(5, 1, g - 10)])
    return (U * s) @ V.T, s, V


@pytest.mark.parametrize("n_iter", [1, 2, 3])
def test_subspace_iteration_satisfies_canonical_angle_bounds(n_iter):
    """Deterministic canonical-angle bounds of subspace iteration, checked with the test matrix itself.

    ``basis`` spans ``(A^T A)^q Omega`` (g x l). Two bounds (Halko et al. 2011 Thm. 9.1 form and
    Saibaba 2019 Thm. 1 form), with ``V`` the right singular vectors of ``A``:

    * top-k subspace: ``tan(theta_max) <= (sigma_{k+1} / sigma_k)^(2q) ||Omega_2 Omega_1^+||`` with
      ``Omega_1 = V_k^T Omega`` (k x l), ``Omega_2 = V_{>k}^T Omega``;
    * each v_j, j <= k: ``tan(angle) <= (sigma_{l+1} / sigma_j)^(2q) ||Omega_2 Omega_1^{-1}||`` with the
      split at l instead (``Omega_1`` square).
    """
    A, s, V = _spectrum_matrix()
    k, ell = 10, 15
    omega = np.random.default_rng(6).standard_normal((A.shape[1], ell))
    basis = _svd._subspace_iteration(CenteredScaledMatrix(A), omega.copy(), n_iter)
    np.testing.assert_allclose(basis.T @ basis, np.eye(ell), atol=1e-12)

    factor_k = np.linalg.norm(V[:, k:].T @ omega @ np.linalg.pinv(V[:, :k].T @ omega), 2)
    cos = np.linalg.svd(basis.T @ V[:, :k], compute_uv=False).min()
    tan_max = np.sqrt(max(0.0, 1 - cos**2)) / cos
    bound_k = (s[k] / s[k - 1]) ** (2 * n_iter) * factor_k
    assert tan_max <= bound_k * (1 + 1e-6) + 1e-12
    assert bound_k < 0.5  # the bound is informative for this spectrum
    assert tan_max > 1e-3 * bound_k  # and the iteration is not trivially exact (the test could fail)

    factor_l = np.linalg.norm(V[:, ell:].T @ omega @ np.linalg.inv(V[:, :ell].T @ omega), 2)
    for j in range(k):
        c = np.linalg.norm(basis.T @ V[:, j])
        tan = np.sqrt(max(0.0, 1 - c**2)) / c
        assert tan <= (s[ell] / s[j]) ** (2 * n_iter) * factor_l * (1 + 1e-6) + 1e-12


@pytest.mark.parametrize("fmt", FORMATS)
def test_randomized_close_to_exact(fmt):
    A, s, V = _spectrum_matrix()
    X = _as(fmt, A)
    U, S, Vt = randomized_svd(X, 10, method="randomized", n_iter=4, rng=7)
    np.testing.assert_allclose(S, s[:10], rtol=1e-9)
    assert _max_sin_angle(Vt, V[:, :10].T) < 1e-6
    np.testing.assert_allclose(U.T @ U, np.eye(10), atol=1e-10)
    np.testing.assert_allclose(U * S @ Vt, (A @ Vt.T) @ Vt, atol=1e-8)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_and_dense_give_same_answer(fmt, dtype):
    dense = _sparse_lowrank(dtype=dtype)
    a = randomized_svd(dense, 5, center="mean", method="randomized", rng=3)
    b = randomized_svd(_as(fmt, dense), 5, center="mean", method="randomized", rng=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


def test_bitwise_reproducible_across_threads_and_rng_forms():
    dense = _sparse_lowrank(n=400)
    X = sp.csr_matrix(dense)
    ref = randomized_svd(X, 5, center="mean", method="randomized", rng=11)
    threads = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        single = randomized_svd(X, 5, center="mean", method="randomized", rng=11)
    finally:
        nb.set_num_threads(threads)
    again = randomized_svd(X.tocsc(), 5, center="mean", method="randomized", rng=np.random.default_rng(11))
    for x, y in zip(ref, single, strict=True):
        assert np.array_equal(x, y)
    for x, y in zip(ref, randomized_svd(X, 5, center="mean", method="randomized", rng=11), strict=True):
        assert np.array_equal(x, y)
    np.testing.assert_allclose(again.S, ref.S, rtol=1e-10)  # same draws from a Generator seeded alike


def test_sign_convention():
    dense = _sparse_lowrank()
    U, S, Vt = randomized_svd(dense, 6, center="mean", method="randomized")
    rows = np.arange(6)
    assert (Vt[rows, np.argmax(np.abs(Vt), axis=1)] > 0).all()
    # negating X negates U but leaves Vt, which fixes the sign, unchanged
    U2, S2, Vt2 = randomized_svd(-dense, 6, center="mean", method="randomized")
    np.testing.assert_allclose(S2, S, rtol=1e-10)
    np.testing.assert_allclose(Vt2, Vt, atol=1e-10)
    np.testing.assert_allclose(U2, -U, atol=1e-10)
    Ue, Se, Vte = randomized_svd(-dense, 6, center="mean", method="exact")
    assert (Vte[rows, np.argmax(np.abs(Vte), axis=1)] > 0).all()


def test_auto_method_and_rank_deficient():
    dense = _sparse_lowrank(n=50, g=40)
    exact = randomized_svd(dense, 5, method="exact")
    auto = randomized_svd(dense, 5)
    assert np.array_equal(exact.S, auto.S)  # small data: auto uses the exact path
    # rank-2 matrix, 4 components: zero singular values get zero columns in U
    rng = np.random.default_rng(0)
    low = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 20))
    U, S, Vt = randomized_svd(low, 4, method="randomized", n_iter=3)
    np.testing.assert_allclose(S[:2], scipy.linalg.svdvals(low)[:2], rtol=1e-10)
    assert S[2:].max() < 1e-6 * S[0]
    np.testing.assert_allclose(U[:, :2] * S[:2] @ Vt[:2], low, atol=1e-9)


def test_input_not_modified_and_sparse_not_densified():
    n, g, k = 10000, 1000, 10
    X = sp.random(n, g, density=0.01, format="csr", random_state=0, dtype=np.float64)
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    randomized_svd(X, 3, center="mean", method="randomized", n_iter=1)  # compile outside the measurement
    tracemalloc.start()
    randomized_svd(X, k, center="mean", method="randomized", n_iter=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ell = k + 10
    # O((n + g) * l) float64s (U, one row block, V and its Gram product), not the 80 MB of a dense copy
    assert peak < 4 * (n + g) * ell * 8, peak
    for a, b in zip(before, (X.data, X.indices, X.indptr), strict=True):
        assert np.array_equal(a, b)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_components": 41}, ValueError, "n_components.*exceeds min"),
        ({"n_components": 0}, ValueError, "n_components.*>= 1"),
        ({"n_components": 2.5}, TypeError, "n_components.*integer"),
        ({"center": "median"}, ValueError, "center"),
        ({"center": np.ones(3)}, ValueError, "center.*length 40"),
        ({"row_weights": -np.ones(50)}, ValueError, "row_weights.*non-negative"),
        ({"row_weights": np.zeros(50), "center": "mean"}, ValueError, "row_weights.*all be zero"),
        ({"row_weights": np.ones(5)}, ValueError, "row_weights.*length 50"),
        ({"method": "lanczos"}, ValueError, "method"),
        ({"n_iter": -1}, ValueError, "n_iter"),
        ({"n_iter": "many"}, ValueError, "n_iter"),
        ({"n_oversamples": -2}, ValueError, "n_oversamples"),
        ({"rng": "seed"}, TypeError, "rng"),
        ({"rng": -3}, ValueError, "rng"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    X = np.random.default_rng(0).standard_normal((50, 40))
    kwargs = {"n_components": 3, **kwargs}
    with pytest.raises(exc, match=match):
        randomized_svd(X, **kwargs)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_rejected(fmt, bad):
    dense = _sparse_lowrank(n=30, g=20)
    dense[3, np.flatnonzero(dense[3])[0]] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        randomized_svd(_as(fmt, dense), 2)


def test_bad_matrix_types():
    with pytest.raises(TypeError, match="CSR or CSC.*tocsr"):
        randomized_svd(sp.coo_matrix(np.eye(5)), 2)
    with pytest.raises(TypeError, match="real numbers"):
        randomized_svd(np.eye(5) * 1j, 2)
    with pytest.raises(ValueError, match="2-D"):
        randomized_svd(np.ones(5), 1)
    with pytest.raises(TypeError, match="2-D array"):
        randomized_svd("matrix", 1)
    with pytest.raises(ValueError, match="at least 1 row"):
        randomized_svd(np.ones((0, 5)), 1)
    # integer and boolean data are accepted (converted to float64)
    X = np.random.default_rng(0).integers(0, 5, size=(30, 10))
    np.testing.assert_allclose(randomized_svd(X, 3).S, randomized_svd(X.astype(float), 3).S)
    np.testing.assert_allclose(randomized_svd(sp.csr_matrix(X), 3).S, randomized_svd(X.astype(float), 3).S, rtol=1e-12)


# --------------------------------------------------------------------------- mean_var
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("ddof", [0, 1])
def test_mean_var_matches_numpy(fmt, dtype, axis, ddof):
    dense = _sparse_lowrank(n=60, g=45, dtype=dtype) + 100.0 * (np.arange(45) % 3 == 0)  # offsets: cancellation
    dense = dense.astype(dtype)
    d64 = dense.astype(np.float64)
    mean, var = mean_var(_as(fmt, dense), axis=axis, ddof=ddof)
    np.testing.assert_allclose(mean, d64.mean(axis=axis), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, d64.var(axis=axis, ddof=ddof), rtol=1e-10, atol=1e-12)


def test_mean_var_bad_input():
    with pytest.raises(ValueError, match="axis"):
        mean_var(np.ones((3, 3)), axis=2)
    with pytest.raises(ValueError, match="ddof"):
        mean_var(np.ones((1, 3)), ddof=1)


# --------------------------------------------------------------------------- kernels without JIT
def test_kernels_python_path_in_process():
    """Run the kernels' Python source (``py_func``) so coverage sees every line.

    The range kernels are called on pieces of their rows, as :func:`mnnkit._threads.run_in_ranges`
    calls them, and must fill exactly those rows.
    """
    dense = _sparse_lowrank(n=25, g=12)
    rng = np.random.default_rng(9)
    B = rng.standard_normal((12, 3))
    C = rng.standard_normal((25, 3))
    for X, is_sorted in [(sp.csr_matrix(dense), True), (_unsorted_csr(dense), False)]:
        out = np.full((25, 3), np.nan)
        for first, last in [(0, 10), (10, 25)]:
            _kernels._gather_range.py_func(
                X.data, X.indptr, X.indices, is_sorted, 0, 2, 9, B[2:9], out, False, first, last
            )
        np.testing.assert_allclose(out, dense[:, 2:9] @ B[2:9])
        bounds = _kernels.balanced_bounds(np.ones(7, dtype=np.int64), 3, offset=2)
        out = np.zeros((7, 3))
        for first, last in [(0, 1), (1, 3)]:
            _kernels._scatter_range.py_func(
                X.data, X.indptr, X.indices, is_sorted, 4, 20, bounds, C[4:20], out, first, last
            )
        np.testing.assert_allclose(out, dense[4:20, 2:9].T @ C[4:20])
        counts = _kernels.minor_counts.py_func(X.indices, X.nnz, 12)
        assert np.array_equal(counts, (dense != 0).sum(0))
        m, v = _kernels.minor_moments.py_func(X.data, X.indices, X.nnz, 12, 25, 1)
        np.testing.assert_allclose(v, dense.var(0, ddof=1))
        m, v = np.full(25, np.nan), np.full(25, np.nan)
        for first, last in [(0, 7), (7, 25)]:
            _kernels._major_moments_range.py_func(X.data, X.indptr, 12, 0, m, v, first, last)
        np.testing.assert_allclose(m, dense.mean(1))
        np.testing.assert_allclose(v, dense.var(1))
    assert _kernels._lower_bound.py_func(np.array([1, 3, 3, 7]), 0, 4, 3) == 1
    assert _kernels._lower_bound.py_func(np.array([1, 3, 3, 7]), 0, 4, 8) == 4


def test_range_kernels_write_only_their_rows():
    """A range kernel fills its own output rows and leaves every other row untouched (no write races)."""
    dense = _sparse_lowrank(n=30, g=14, seed=4)
    X = sp.csr_matrix(dense)
    B = np.random.default_rng(1).standard_normal((14, 2))
    out = np.full((30, 2), np.nan)
    _kernels._gather_range(X.data, X.indptr, X.indices, True, 0, 0, 14, B, out, False, 5, 11)
    np.testing.assert_allclose(out[5:11], dense[5:11] @ B)
    assert np.isnan(out[:5]).all() and np.isnan(out[11:]).all()
    bounds = _kernels.balanced_bounds((dense != 0).sum(0), 4)
    C = np.random.default_rng(2).standard_normal((30, 2))
    out = np.zeros((14, 2))
    _kernels._scatter_range(X.data, X.indptr, X.indices, True, 0, 30, bounds, C, out, 1, 3)
    lo, hi = bounds[1], bounds[3]
    np.testing.assert_allclose(out[lo:hi], dense[:, lo:hi].T @ C)
    assert not out[:lo].any() and not out[hi:].any()


@pytest.mark.parametrize("is_sorted", [True, False])
def test_kernels_bitwise_equal_on_one_and_two_threads(is_sorted):
    """gather, scatter and major_moments give the same bits on 1 and 2 threads, close to dense products."""
    dense = _sparse_lowrank(n=500, g=90, seed=7, dtype=np.float32)
    X = sp.csr_matrix(dense) if is_sorted else _unsorted_csr(dense)
    rng = np.random.default_rng(3)
    B = rng.standard_normal((90, 4))
    C = rng.standard_normal((500, 4))
    bounds = _kernels.balanced_bounds((dense != 0).sum(0), 8)
    results = []
    for threads in (1, 2):
        with thread_limits(numba=threads):
            g_out = np.empty((500, 4))
            _kernels.gather(X.data, X.indptr, X.indices, is_sorted, 0, 500, 0, 90, B, g_out, False)
            s_out = np.zeros((90, 4))
            _kernels.scatter(X.data, X.indptr, X.indices, is_sorted, 0, 500, bounds, C, s_out)
            moments = _kernels.major_moments(X.data, X.indptr, 500, 90, 1)
        results.append((g_out, s_out, *moments))
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)
    d64 = dense.astype(np.float64)
    g_out, s_out, mean, var = results[0]
    np.testing.assert_allclose(g_out, d64 @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s_out, d64.T @ C, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, d64.mean(1), rtol=1e-12)
    np.testing.assert_allclose(var, d64.var(1, ddof=1), rtol=1e-12)


def _unsorted_csr(dense):
    X = sp.csr_matrix(dense)
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        X.indices[lo:hi] = X.indices[lo:hi][::-1].copy()
        X.data[lo:hi] = X.data[lo:hi][::-1].copy()
    X.has_sorted_indices = False
    return X


def test_public_api_with_numba_jit_disabled():
    """The whole public path runs under NUMBA_DISABLE_JIT=1 and agrees with the compiled result."""
    dense = _sparse_lowrank(n=40, g=15)
    ref = {fmt: randomized_svd(_as(fmt, dense), 3, center="mean", method="randomized", rng=1).S for fmt in FORMATS}
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np, scipy.sparse as sp
        from mnnkit.linalg import randomized_svd, mean_var
        dense = np.array(json.loads(sys.stdin.read()))
        out = {}
        for fmt in ["dense", "csr", "csc"]:
            X = dense if fmt == "dense" else sp.csr_matrix(dense).asformat(fmt)
            out[fmt] = randomized_svd(X, 3, center="mean", method="randomized", rng=1).S.tolist()
            out[fmt + "_var"] = mean_var(X, axis=0)[1].tolist() + mean_var(X, axis=1)[1].tolist()
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    res = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(dense.tolist()), env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    expected_var = np.concatenate([dense.var(0, ddof=1), dense.var(1, ddof=1)])
    for fmt in FORMATS:
        np.testing.assert_allclose(out[fmt], ref[fmt], rtol=1e-10)
        np.testing.assert_allclose(out[fmt + "_var"], expected_var, rtol=1e-10)
