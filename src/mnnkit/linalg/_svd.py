"""Truncated SVD of an implicitly centred, row-weighted matrix: randomized and exact."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.linalg

from mnnkit._config import SVD_EXACT_MAX_ELEMENTS
from mnnkit._random import RngLike, as_generator
from mnnkit._threads import thread_limits
from mnnkit._validation import check_choice, check_int
from mnnkit.linalg._operator import CenteredScaledMatrix
from mnnkit.linalg._stats import weighted_column_mean

__all__ = ["SVDResult", "blas_single_thread_if_sparse", "randomized_svd", "svd_sign_flip"]

logger = logging.getLogger("mnnkit")

# `n_iter="auto"`: number of subspace-iteration passes before the Rayleigh-Ritz pass
_AUTO_N_ITER = 7


class SVDResult(NamedTuple):
    """Truncated SVD ``A ~= U @ diag(S) @ Vt`` (unpacks like a tuple ``U, S, Vt``)."""

    U: np.ndarray
    """``(n, k)`` float64 left singular vectors (orthonormal columns)."""
    S: np.ndarray
    """``(k,)`` float64 singular values, in decreasing order."""
    Vt: np.ndarray
    """``(k, g)`` float64 right singular vectors (orthonormal rows)."""


def svd_sign_flip(U: np.ndarray | None, Vt: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Fix the signs: the entry of largest absolute value in each row of ``Vt`` becomes positive.

    Ties are broken by the first such entry. The matching column of ``U`` is flipped with it, so
    ``U @ diag(S) @ Vt`` is unchanged. This is scikit-learn's ``svd_flip(u_based_decision=False)``
    convention (so scores agree in sign with :class:`sklearn.decomposition.PCA`). Works in place
    and returns its arguments.
    """
    idx = np.argmax(np.abs(Vt), axis=1)
    signs = np.sign(Vt[np.arange(Vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    Vt *= signs[:, None]
    if U is not None:
        U *= signs[None, :]
    return U, Vt


def _resolve_center(
    center: Any, row_weights: np.ndarray | None, weighted_mean: Callable[[np.ndarray | None], np.ndarray]
) -> Any:
    """``center`` itself, or for ``"mean"`` the column means weighted by ``row_weights**2``.

    ``weighted_mean(weights)`` computes them for the matrix at hand (in memory or dask).
    """
    if not isinstance(center, str):
        return center
    if center != "mean":
        msg = f"center must be None, 'mean' or a 1-D array, got {center!r}"
        raise ValueError(msg)
    return weighted_mean(None if row_weights is None else row_weights**2)


@contextlib.contextmanager
def blas_single_thread_if_sparse(op: CenteredScaledMatrix) -> Iterator[None]:
    """Limit BLAS to one thread while Numba kernels do the heavy sparse products.

    On the sparse path the BLAS calls are small (``g x l`` blocks); letting BLAS threads spin
    between them steals cores from the Numba threads and can slow the whole SVD several-fold.
    Dense input keeps all BLAS threads (BLAS does the heavy work there).
    """
    if op.format == "dense":
        yield
        return
    with thread_limits(blas=1):
        yield


def _orthonormal(Y: np.ndarray) -> np.ndarray:
    """Orthonormal basis of ``range(Y)`` (tall C-ordered float64 ``Y``, overwritten) by CholeskyQR2.

    CholeskyQR2 (two rounds of ``Q <- Q chol(Q^T Q)^{-T}``) needs only a small Gram matrix and an
    in-place triangular solve, so it is much faster than LAPACK QR for tall-skinny blocks and
    allocates nothing of the size of ``Y``; it is as accurate when ``cond(Y) < ~1e7``. If the
    Cholesky factorisation fails or is nearly singular (ill-conditioned or rank-deficient ``Y``),
    Householder QR is used instead.
    """
    Q = Y
    for _ in range(2):
        try:
            L = np.linalg.cholesky(Q.T @ Q)
        except np.linalg.LinAlgError:
            return np.ascontiguousarray(np.linalg.qr(Q)[0])
        if not np.all(np.diag(L) > np.finfo(np.float64).eps ** 0.5 * np.abs(L).max()):
            return np.ascontiguousarray(np.linalg.qr(Q)[0])
        # Q^T is Fortran-ordered, so the solve L Z = Q^T overwrites Q's memory
        Q = scipy.linalg.solve_triangular(L, Q.T, lower=True, overwrite_b=True, check_finite=False).T
    return np.ascontiguousarray(Q)


def _subspace_iteration(op: CenteredScaledMatrix, omega: np.ndarray, n_iter: int) -> np.ndarray:
    """Orthonormal basis of ``range((A^T A)^n_iter @ omega)``, re-orthonormalised after every pass.

    ``omega`` (C-ordered float64 ``g x l``) is overwritten.
    """
    V = _orthonormal(np.ascontiguousarray(omega, dtype=np.float64))  # overwrites omega
    del omega
    for _ in range(n_iter):
        W = op.gram(V)
        del V  # keep at most two g x l blocks alive
        V = _orthonormal(W)
    return V


def _rayleigh_ritz(op: CenteredScaledMatrix, V: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best rank-``k`` right singular pairs of ``A`` within ``span(V)`` (one more Gram pass)."""
    M = V.T @ op.gram(V)
    M = 0.5 * (M + M.T)
    evals, evecs = np.linalg.eigh(M)
    order = np.argsort(evals)[::-1][:k]
    S = np.sqrt(np.clip(evals[order], 0.0, None))
    Vt = (V @ evecs[:, order]).T
    return S, np.ascontiguousarray(Vt)


def _right_singular(
    op: CenteredScaledMatrix, k: int, n_oversamples: int, n_iter: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Randomized top-``k`` singular values and right singular vectors (sign-fixed)."""
    n, g = op.shape
    ell = min(k + n_oversamples, min(n, g))
    V = _subspace_iteration(op, rng.standard_normal((g, ell)), n_iter)
    S, Vt = _rayleigh_ritz(op, V, k)
    svd_sign_flip(None, Vt)
    return S, Vt


def _exact(op: CenteredScaledMatrix, k: int) -> SVDResult:
    A = op.dense()
    try:
        U, S, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    except np.linalg.LinAlgError:  # pragma: no cover - gesdd rarely fails; gesvd is slower but robust
        U, S, Vt = scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesvd", check_finite=False)
    U = np.ascontiguousarray(U[:, :k])
    Vt = np.ascontiguousarray(Vt[:k])
    svd_sign_flip(U, Vt)
    return SVDResult(U, S[:k].copy(), Vt)


def _left_from_right(op: CenteredScaledMatrix, S: np.ndarray, Vt: np.ndarray) -> np.ndarray:
    """``U = A V / S``; columns whose singular value is (numerically) zero are set to zero."""
    n, g = op.shape
    tiny = np.finfo(np.float64).eps * max(n, g) * (S[0] if S.size else 0.0)
    safe = np.where(S > tiny, S, np.inf)
    U = np.empty((n, S.shape[0]))
    op.matmat_blocks(Vt.T, U, scale=safe)
    return U


def _check_method(method: str) -> str:
    return check_choice(method, "method", ("auto", "randomized", "exact"))


def _check_sizes(n_components: Any, n_oversamples: Any, n_iter: Any, shape: tuple[int, int]) -> tuple[int, int, int]:
    """``(k, p, q)``: ``n_components``, ``n_oversamples`` and ``n_iter`` checked for a matrix of ``shape``."""
    if isinstance(n_iter, str):
        if n_iter != "auto":
            msg = f"n_iter must be a non-negative integer or 'auto', got {n_iter!r}"
            raise ValueError(msg)
        n_iter = _AUTO_N_ITER
    q = check_int(n_iter, "n_iter", minimum=0)
    p = check_int(n_oversamples, "n_oversamples", minimum=0)
    n, g = shape
    k = check_int(n_components, "n_components", minimum=1)
    if k > min(n, g):
        msg = f"n_components={k} exceeds min(n_rows, n_cols) = min({n}, {g}) = {min(n, g)}"
        raise ValueError(msg)
    return k, p, q


def _prepare(
    X: Any,
    n_components: int,
    center: Any,
    row_weights: Any,
    n_oversamples: int,
    n_iter: int | str,
    method: str,
    rng: RngLike,
) -> tuple[CenteredScaledMatrix, int, int, int, str, np.random.Generator]:
    """Validate the arguments of :func:`randomized_svd`; return the operator and resolved options."""
    method = _check_method(method)
    generator = as_generator(rng)
    op = CenteredScaledMatrix(X, row_weights=row_weights)
    k, p, q = _check_sizes(n_components, n_oversamples, n_iter, op.shape)
    op = op.with_center(_resolve_center(center, op.row_weights, lambda w: weighted_column_mean(op.X, w)))
    if method == "auto":
        method = "exact" if op.shape[0] * op.shape[1] <= SVD_EXACT_MAX_ELEMENTS else "randomized"
    return op, k, p, q, method, generator


def randomized_svd(
    X: Any,
    n_components: int,
    *,
    center: None | Literal["mean"] | np.ndarray = None,
    row_weights: None | np.ndarray = None,
    n_oversamples: int = 10,
    n_iter: int | Literal["auto"] = "auto",
    method: Literal["auto", "randomized", "exact"] = "auto",
    rng: RngLike = 0,
) -> SVDResult:
    r"""Truncated SVD of :math:`A = \operatorname{diag}(w)\,(X - \mathbf{1}\mu^\top)`, centring implicit.

    The centred, weighted matrix ``A`` is never formed (except by ``method="exact"``): products
    with ``A`` are computed from ``X`` directly (see :class:`CenteredScaledMatrix`).

    Parameters
    ----------
    X
        ``(n, g)`` matrix: :class:`numpy.ndarray`, or :class:`scipy.sparse` CSR or CSC matrix/array,
        float32 or float64 (integer data is converted to a float64 copy). Never modified, never
        densified on the randomized path. NaN/Inf raise a ValueError.
    n_components
        ``k``, the number of singular triplets; ``1 <= k <= min(n, g)``.
    center
        ``None``: no centring. ``"mean"``: subtract the column means, weighted by ``row_weights**2``
        when weights are given (so with ``w_i = 1/sqrt(n_b)`` for the cells of batch ``b`` this is the
        unweighted mean of the batch means, and ``A`` has weighted column sums zero). A length-``g``
        array: subtract that vector ``mu`` from every row.
    row_weights
        ``None``, or a length-``n`` non-negative vector ``w``: row ``i`` of the centred matrix is
        multiplied by ``w[i]``.
    n_oversamples
        ``p``: the random subspace has ``l = min(k + p, n, g)`` columns.
    n_iter
        Number of subspace-iteration passes ``q`` (each a product with ``A^T A``); ``"auto"`` = 7.
    method
        ``"randomized"``, ``"exact"`` (dense LAPACK ``gesdd`` of ``A``: O(n * g) memory, for small
        data), or ``"auto"``: exact when ``n * g <= 2e6``, randomized otherwise.
    rng
        Randomness of the random test matrix: an int seed >= 0 (same seed, same result), a
        :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from
        the operating system: a different result on every call). The same input and seed give
        bit-for-bit the same result (any number of threads).

    Returns
    -------
    :class:`SVDResult` ``(U, S, Vt)``, float64: ``U`` ``(n, k)``, ``S`` ``(k,)`` decreasing,
    ``Vt`` ``(k, g)``. Sign convention: in each row of ``Vt`` the entry of largest absolute value
    (the first one, on ties) is positive; ``U`` is flipped to match.

    Notes
    -----
    **Algorithm** (randomized): a Gaussian test matrix ``Omega`` (``g x l``) is orthonormalised and
    refined by ``q`` passes of subspace iteration ``V <- orth(A^T A V)`` (the range finder of
    Halko, Martinsson & Tropp 2011, Alg. 4.4, run on the row space; re-orthonormalising each pass
    keeps the small singular directions from being lost to rounding). A final pass computes
    ``M = V^T A^T A V`` and its eigendecomposition gives the Rayleigh-Ritz singular values and right
    singular vectors; ``U = A V / S``. Each pass streams over the rows of ``X`` once, computing
    ``A^T (A V)`` block by block, so ``A V`` is never stored for all rows.

    **Accuracy** (deterministic bounds, checked in the tests): let ``sigma_j`` and ``v_j`` be the
    singular values and right singular vectors of ``A``, ``q`` the number of passes and ``S_q`` the
    span of ``(A^T A)^q Omega``. Standard subspace-iteration analysis (Halko, Martinsson & Tropp 2011,
    Sec. 9; Saibaba 2019, Thm. 1) gives

    * for the top-``k`` subspace, the largest canonical angle satisfies
      ``tan(theta) <= (sigma_{k+1} / sigma_k)^(2q) ||Omega_2 Omega_1^+||`` with
      ``Omega_1 = V_k^T Omega`` and ``Omega_2 = V_{>k}^T Omega``; for Gaussian ``Omega`` and
      ``p >= 2``, ``E ||Omega_2 Omega_1^+|| <= sqrt(k / (p - 1)) + e sqrt(l (g - k)) / p``;
    * for each ``j <= k``, ``tan(angle(v_j, S_q)) <= (sigma_{l+1} / sigma_j)^(2q) ||Omega_2 Omega_1^{-1}||``
      with the split taken at ``l`` instead (square ``Omega_1``), so oversampling helps when
      ``sigma_{k+1}`` is close to ``sigma_k``.

    A spectral gap and a few passes therefore give near machine precision for the leading
    components; on the flat tail of a single-cell spectrum the trailing components are less
    accurate (increase ``n_iter`` or ``n_oversamples``, or use ``method="exact"`` for small data).
    The Rayleigh-Ritz values never exceed the true singular values.

    **Cost**: ``q + 2`` passes over ``X`` (``q + 1`` Gram products, one ``A V``), each with
    ``4 * nnz * l`` flops. **Memory** O((n + g) * l) floats besides ``X`` (the output ``U`` is
    ``n x k``; the iteration itself needs two ``g x l`` blocks plus a 1 MiB row block). The exact method
    needs O(n * g).
    """
    op, k, p, q, method, generator = _prepare(X, n_components, center, row_weights, n_oversamples, n_iter, method, rng)
    n, g = op.shape
    logger.debug("randomized_svd: %s matrix %d x %d, k=%d, method=%s", op.format, n, g, k, method)
    if method == "exact":
        return _exact(op, k)
    with blas_single_thread_if_sparse(op):
        S, Vt = _right_singular(op, k, p, q, generator)
        U = _left_from_right(op, S, Vt)
    return SVDResult(U, S, Vt)
