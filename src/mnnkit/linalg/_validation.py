"""Private input checks shared by :mod:`mnnkit.linalg` and :mod:`mnnkit.cluster`.

Every check raises a :class:`ValueError` or :class:`TypeError` that names the offending parameter,
and none of them copies or modifies the caller's data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from mnnkit._config import FINITE_CHECK_ELEMENTS

__all__ = [
    "check_finite",
    "check_matrix",
    "check_vector",
    "matrix_format",
]


def matrix_format(X: Any) -> str:
    """Return ``"dense"``, ``"csr"`` or ``"csc"`` for a validated matrix."""
    if sp.issparse(X):
        return X.format
    return "dense"


def check_matrix(X: Any, name: str = "X", *, allow_sparse: bool = True, min_rows: int = 1, min_cols: int = 1) -> Any:
    """Validate a 2-D real matrix: a NumPy array, or a CSR/CSC sparse matrix or array.

    Dense array-likes are converted with :func:`numpy.asarray` (no copy for an ndarray). Integer
    and boolean data are converted to float64 (a copy, since the kernels work in floating point);
    float32 and float64 data are returned unchanged. Values are checked to be finite in chunks,
    so the check needs O(1 MiB) extra memory.

    Parameters
    ----------
    X
        The matrix.
    name
        The parameter name used in error messages.
    allow_sparse
        Whether CSR/CSC input is accepted.
    min_rows, min_cols
        Minimum shape.

    Returns
    -------
    The validated matrix: ndarray (any memory layout), or CSR/CSC with float data.
    """
    if sp.issparse(X):
        if not allow_sparse:
            msg = f"{name} must be a dense array, got a sparse {X.format.upper()} matrix"
            raise TypeError(msg)
        if X.format not in {"csr", "csc"}:
            msg = f"{name} must be dense, CSR or CSC, got sparse format {X.format!r}. Convert it with .tocsr()"
            raise TypeError(msg)
        _check_dtype(X.dtype, name)
        if X.dtype.kind in "biu":
            X = X.astype(np.float64)
        check_finite(X.data[: X.indptr[-1]], name)
    else:
        if isinstance(X, (str, bytes)) or X is None:
            msg = f"{name} must be a 2-D array or CSR/CSC matrix, got {type(X).__name__}"
            raise TypeError(msg)
        X = np.asarray(X)
        _check_dtype(X.dtype, name)
        if X.ndim != 2:
            msg = f"{name} must be 2-D, got an array with {X.ndim} dimension(s) and shape {X.shape}"
            raise ValueError(msg)
        if X.dtype.kind in "biu":
            X = X.astype(np.float64)
        check_finite(X, name)
    n, g = X.shape
    if n < min_rows or g < min_cols:
        msg = f"{name} has shape {X.shape}; at least {min_rows} row(s) and {min_cols} column(s) are needed"
        raise ValueError(msg)
    return X


def _check_dtype(dtype: np.dtype, name: str) -> None:
    if dtype.kind not in "biuf":
        msg = f"{name} must hold real numbers (bool, integer or float), got dtype {dtype}"
        raise TypeError(msg)


def check_finite(values: np.ndarray, name: str) -> None:
    """Raise a ValueError if ``values`` holds NaN or infinity; scans in chunks (O(1 MiB) extra memory)."""
    if values.dtype.kind != "f":
        return
    if values.ndim <= 1:
        step = FINITE_CHECK_ELEMENTS
    else:  # blocks of rows; works for any memory layout without copying the whole array
        step = max(1, FINITE_CHECK_ELEMENTS // max(1, int(np.prod(values.shape[1:]))))
    for start in range(0, values.shape[0] if values.ndim else 1, step):
        block = values[start : start + step] if values.ndim else values
        if not np.isfinite(block).all():
            msg = f"{name} contains NaN or infinity; remove or impute those values first"
            raise ValueError(msg)


def check_vector(v: Any, name: str, length: int, *, nonnegative: bool = False) -> np.ndarray:
    """Return ``v`` as a finite float64 1-D array of the given length (a new array)."""
    arr = np.asarray(v)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must hold real numbers, got dtype {arr.dtype}"
        raise TypeError(msg)
    arr = np.array(arr, dtype=np.float64, copy=True)
    if arr.ndim != 1 or arr.shape[0] != length:
        msg = f"{name} must be a 1-D array of length {length}, got shape {arr.shape}"
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        msg = f"{name} contains NaN or infinity"
        raise ValueError(msg)
    if nonnegative and (arr < 0).any():
        msg = f"{name} must be non-negative; its smallest value is {arr.min()}"
        raise ValueError(msg)
    return arr
