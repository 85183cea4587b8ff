"""Gaussian-mixture building blocks: parameter estimates, precision factors, E-step driver.

Arrays are validated by the caller (:class:`mnnkit.cluster.GaussianMixture`): ``X`` is a
C-contiguous float64 ``(n, d)`` array and responsibilities are ``(n, K)`` float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import scipy.linalg

from mnnkit._config import (
    GMM_ESTEP_ROWS,
    GMM_MSTEP_MAX_BYTES,
    GMM_MSTEP_MAX_CHUNKS,
    GMM_MSTEP_MIN_ROWS,
    GMM_PARALLEL_MIN_WORK,
)
from mnnkit._threads import thread_limits
from mnnkit.cluster import _kernels

__all__ = [
    "COVARIANCE_TYPES",
    "compute_context",
    "covariances_from_precisions",
    "e_step",
    "estimate_parameters",
    "log_det_cholesky",
    "n_parameters",
    "precision_cholesky",
    "precision_cholesky_from_precisions",
    "precisions_from_cholesky",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@contextlib.contextmanager
def compute_context(n_samples: int, n_features: int, n_components: int, covariance_type: str) -> Iterator[None]:
    """Threading for the EM kernels: BLAS on one thread, and Numba too for small problems.

    Idle BLAS threads would compete with Numba's; for small problems, waking Numba's threads
    costs more than the work. Results do not depend on the number of threads.
    """
    per_component = n_features * n_features if covariance_type in ("full", "tied") else n_features
    small = n_samples * n_components * per_component < GMM_PARALLEL_MIN_WORK
    with thread_limits(numba=1 if small else None, blas=1):
        yield


def _bounds(n: int, n_chunks: int) -> np.ndarray:
    n_chunks = max(1, min(n_chunks, n))
    return (np.arange(n_chunks + 1, dtype=np.int64) * n) // n_chunks


def _mstep_bounds(n: int, slot_bytes: int) -> np.ndarray:
    """Chunk boundaries for the M-step; depend only on ``n`` and the size of one partial-sum slot."""
    n_chunks = min(GMM_MSTEP_MAX_CHUNKS, -(-n // GMM_MSTEP_MIN_ROWS), max(1, GMM_MSTEP_MAX_BYTES // max(slot_bytes, 1)))
    return _bounds(n, n_chunks)


def _degenerate_error(which: str, reg_covar: float) -> ValueError:
    msg = (
        f"Fitting the mixture model failed: the covariance of {which} is not positive definite "
        "(typical causes: collapsed or duplicated points, a constant feature inside a component, or "
        f"more components than the data support). `reg_covar`={reg_covar:g} is added to the diagonal of "
        "every covariance to keep it positive definite; increase `reg_covar`, reduce `n_components`, "
        "or scale the data."
    )
    return ValueError(msg)


def estimate_parameters(
    X: np.ndarray, resp: np.ndarray, reg_covar: float, covariance_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M-step statistics: component masses ``nk``, means and covariances (with ``reg_covar``).

    ``nk[k] = sum_i r_ik + 10 eps`` (so an empty component gives a zero mean rather than NaN),
    ``mu_k = sum_i r_ik x_i / nk``, ``Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / nk + reg I``
    (two passes, so no cancellation). ``tied`` pools the scatter over components and divides by
    ``sum_k nk`` (rows with responsibilities summing to less than one, which occur only in the
    one-point initialisations, add their share of ``x x^T`` as in scikit-learn); ``diag`` keeps the
    diagonal; ``spherical`` its mean. Memory: O(K d^2) per chunk,
    at most 64 MiB in all.
    """
    n, d = X.shape
    n_comp = resp.shape[1]
    bounds = _mstep_bounds(n, 8 * n_comp * (d + 1))
    nk_part = np.zeros((bounds.shape[0] - 1, n_comp))
    sx_part = np.zeros((bounds.shape[0] - 1, n_comp, d))
    _kernels.weighted_feature_sums(X, resp, None, bounds, nk_part, sx_part)
    nk = nk_part.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = sx_part.sum(axis=0) / nk[:, None]

    if covariance_type in ("full", "tied"):
        slots = n_comp if covariance_type == "full" else 1
        bounds = _mstep_bounds(n, 8 * slots * d * d)
        part = np.zeros((bounds.shape[0] - 1, slots, d, d))
        _kernels.scatter_full(X, resp, means, bounds, part)
        lower = part.sum(axis=0)
        sym = lower + np.swapaxes(np.tril(lower, -1), 1, 2)
        if covariance_type == "full":
            cov = sym / nk[:, None, None]
        else:
            cov = (sym[0] + _unassigned_scatter(X, resp)) / nk.sum()
        idx = np.arange(d)
        cov[..., idx, idx] += reg_covar
    else:
        bounds = _mstep_bounds(n, 8 * n_comp * d)
        part = np.zeros((bounds.shape[0] - 1, n_comp, d))
        _kernels.weighted_feature_sums(X, resp, means, bounds, None, part)
        cov = part.sum(axis=0) / nk[:, None] + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    return nk, means, cov


def _unassigned_scatter(X: np.ndarray, resp: np.ndarray) -> np.ndarray | float:
    """``sum_i (1 - sum_k r_ik) x_i x_i^T``: zero unless rows of ``resp`` do not sum to one.

    That happens only for the one-point initialisations (``k-means++``, ``random_from_data``);
    adding it makes the tied covariance equal scikit-learn's ``(X^T X - sum_k n_k mu_k mu_k^T) / sum_k n_k``
    for any responsibilities.
    """
    missing = 1.0 - resp.sum(axis=1)
    rows = np.abs(missing) > 1e-12
    if not rows.any():
        return 0.0
    Xr = X[rows]
    return (Xr * missing[rows, None]).T @ Xr


def precision_cholesky(covariances: np.ndarray, covariance_type: str, reg_covar: float) -> np.ndarray:
    """Factors ``P`` with ``P P^T = Sigma^{-1}`` (upper triangular ``L^{-T}``; ``1/sqrt`` for diag).

    Raises a ValueError explaining ``reg_covar`` if a covariance is not positive definite.
    """
    if covariance_type in ("full", "tied"):
        covs = covariances if covariance_type == "full" else covariances[None]
        d = covs.shape[-1]
        out = np.empty_like(covs)
        eye = np.eye(d)
        for k, cov in enumerate(covs):
            try:
                L = scipy.linalg.cholesky(cov, lower=True, check_finite=False)
            except np.linalg.LinAlgError as err:
                which = f"component {k}" if covariance_type == "full" else "the tied model"
                raise _degenerate_error(which, reg_covar) from err
            if not np.all(np.isfinite(L)):
                raise _degenerate_error(f"component {k}", reg_covar)
            out[k] = scipy.linalg.solve_triangular(L, eye, lower=True, check_finite=False).T
        return out if covariance_type == "full" else out[0]
    if not (np.all(covariances > 0) and np.all(np.isfinite(covariances))):
        bad = np.unique(np.nonzero(~(covariances > 0))[0]) if covariances.ndim else np.array([0])
        raise _degenerate_error(f"component(s) {bad.tolist()}", reg_covar)
    return 1.0 / np.sqrt(covariances)


def _flip(a: np.ndarray) -> np.ndarray:
    return a[::-1, ::-1]


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular ``P`` with ``P P^T = precision`` (``sqrt`` for diag/spherical)."""
    if covariance_type == "full":
        return np.array([_flip(np.linalg.cholesky(_flip(p))) for p in precisions])
    if covariance_type == "tied":
        return _flip(np.linalg.cholesky(_flip(precisions)))
    return np.sqrt(precisions)


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """``P P^T`` (``P**2`` for diag/spherical)."""
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Inverse of each precision matrix (``1 / precision`` for diag/spherical)."""
    if covariance_type == "full":
        return np.array([np.linalg.inv(p) for p in precisions])
    if covariance_type == "tied":
        return np.linalg.inv(precisions)
    return 1.0 / precisions


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int) -> np.ndarray | float:
    """``log det P`` per component (a scalar for ``tied``)."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return float(np.log(np.diag(prec_chol)).sum())
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


def e_step(
    X: np.ndarray, weights: np.ndarray, means: np.ndarray, prec_chol: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities ``(n, K)`` and per-row log-likelihoods ``log sum_k w_k N(x_i | mu_k, Sigma_k)``.

    Memory: the ``(n, K)`` output plus O(n); the Numba kernel works row by row.
    """
    n, d = X.shape
    n_comp = means.shape[0]
    with np.errstate(divide="ignore"):
        const = np.log(weights) + log_det_cholesky(prec_chol, covariance_type, d) - 0.5 * d * np.log(2 * np.pi)
    const = np.ascontiguousarray(np.broadcast_to(const, (n_comp,)), dtype=np.float64)
    means = np.ascontiguousarray(means, dtype=np.float64)
    bounds = _bounds(n, -(-n // GMM_ESTEP_ROWS))
    resp = np.empty((n, n_comp))
    norm = np.empty(n)
    if covariance_type in ("full", "tied"):
        P = np.triu(prec_chol if covariance_type == "full" else prec_chol[None])  # exact zeros below the diagonal
        _kernels.estep_full(X, means, np.ascontiguousarray(P, dtype=np.float64), const, bounds, resp, norm)
    else:
        prec = prec_chol if covariance_type == "diag" else np.repeat(prec_chol[:, None], d, axis=1)
        _kernels.estep_diag(X, means, np.ascontiguousarray(prec, dtype=np.float64), const, bounds, resp, norm)
    return resp, norm


def n_parameters(n_components: int, n_features: int, covariance_type: str) -> int:
    """Number of free parameters (weights, means, covariances) for the BIC/AIC."""
    d = n_features
    cov = {
        "full": n_components * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": n_components * d,
        "spherical": n_components,
    }[covariance_type]
    return int(cov + n_components * d + n_components - 1)
