"""Sparse-aware column/row means and variances."""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from mnnkit._config import LINALG_TASKS_PER_THREAD, MOMENTS_BLOCK_ELEMENTS
from mnnkit._validation import check_int
from mnnkit.linalg import _kernels
from mnnkit.linalg._validation import check_matrix, matrix_format

__all__ = ["mean_var", "weighted_column_mean"]


def mean_var(X: Any, *, axis: int = 0, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance along an axis, counting the implicit zeros of a sparse matrix.

    Parameters
    ----------
    X
        ``(n, g)`` :class:`numpy.ndarray` or :class:`scipy.sparse` CSR/CSC matrix/array. Not
        modified or densified.
    axis
        ``0``: one value per column (over the ``n`` rows); ``1``: one value per row.
    ddof
        Delta degrees of freedom: the variance divides by ``N - ddof``.

    Returns
    -------
    ``(mean, var)``: float64 arrays, each of length ``g`` (``axis=0``) or ``n`` (``axis=1``).

    Notes
    -----
    Two passes (mean first, then squared deviations), so there is no cancellation from
    ``E[x^2] - E[x]^2``. Memory: O(n + g) floats for sparse input; dense input is processed in
    blocks of about 4 million elements.
    """
    X = check_matrix(X, "X")
    if axis not in (0, 1):
        msg = f"axis must be 0 or 1, got {axis!r}"
        raise ValueError(msg)
    ddof = check_int(ddof, "ddof", minimum=0)
    n_along = X.shape[axis]
    if n_along <= ddof:
        msg = f"X has {n_along} entries along axis {axis}; need more than ddof={ddof} for a variance"
        raise ValueError(msg)
    fmt = matrix_format(X)
    if fmt == "dense":
        return _dense_mean_var(X, axis, ddof)
    nnz = int(X.indptr[-1])
    major_axis = 1 if fmt == "csr" else 0  # CSR rows are majors: their stats run along axis 1
    n_major, n_minor = (X.shape[0], X.shape[1]) if fmt == "csr" else (X.shape[1], X.shape[0])
    if axis == major_axis:
        return _kernels.major_moments(X.data, X.indptr, n_major, n_minor, ddof)
    return _kernels.minor_moments(X.data, X.indices, nnz, n_minor, n_major, ddof)


def _dense_mean_var(X: np.ndarray, axis: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    Xa = X if axis == 0 else X.T  # statistics per column of Xa, computed over row blocks
    n, g = Xa.shape
    step = max(1, MOMENTS_BLOCK_ELEMENTS // max(g, 1))
    total = np.zeros(g)
    for r0 in range(0, n, step):
        total += Xa[r0 : r0 + step].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(g)
    for r0 in range(0, n, step):
        d = Xa[r0 : r0 + step].astype(np.float64) - mean
        sq += np.einsum("ij,ij->j", d, d)
    return mean, sq / (n - ddof)


def weighted_column_mean(X: Any, weights: np.ndarray | None) -> np.ndarray:
    """Column means ``sum_i c_i X[i] / sum_i c_i`` (``c`` = ``weights``, or all ones).

    ``X`` must already be validated (dense, CSR or CSC); ``weights`` a non-negative float64 vector
    with a positive sum. O(n + g) memory.
    """
    n, g = X.shape
    if weights is None:
        return mean_var(X, axis=0, ddof=0)[0] if n > 0 else np.zeros(g)
    total = float(weights.sum())
    if not total > 0:
        msg = "row_weights must not all be zero"
        raise ValueError(msg)
    fmt = matrix_format(X)
    c = np.ascontiguousarray(weights, dtype=np.float64)[:, None]
    out = np.zeros((g, 1))
    if fmt == "dense":
        step = max(1, MOMENTS_BLOCK_ELEMENTS // max(g, 1))
        for r0 in range(0, n, step):
            out += X[r0 : r0 + step].T.astype(np.float64) @ c[r0 : r0 + step]
    elif fmt == "csr":
        counts = _kernels.minor_counts(X.indices, int(X.indptr[-1]), g)
        bounds = _kernels.balanced_bounds(counts, LINALG_TASKS_PER_THREAD * nb.get_num_threads())
        _kernels.scatter(X.data, X.indptr, X.indices, bool(X.has_sorted_indices), 0, n, bounds, c, out)
    else:
        _kernels.gather(X.data, X.indptr, X.indices, bool(X.has_sorted_indices), 0, g, 0, n, c, out, True)
    return out[:, 0] / total
