"""Up-front validation shared by the single-sample fits and :func:`~mnnkit.stats.fit_genes`."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from mnnkit._validation import check_real

_KINDS = ("real", "positive", "nonnegative", "count", "binary")


def check_tol(tol: Any) -> float:
    """``tol`` as a float: a TypeError unless a real number, a ValueError unless finite and positive."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        msg = f"tol must be a positive finite number, got {tol!r}"
        raise TypeError(msg)
    return check_real(tol, "tol", positive=True)


def as_sample(x: Any, *, kind: str, name: str = "x", min_size: int = 1) -> np.ndarray:
    """Convert ``x`` to a 1-D float64 array and check it lies in the support of the model.

    Parameters
    ----------
    x
        Array-like of numbers (list, NumPy array, pandas Series). Booleans are accepted.
    kind
        ``"real"``, ``"positive"`` (> 0), ``"nonnegative"`` (>= 0), ``"count"`` (non-negative
        integers) or ``"binary"`` (0 or 1).
    name
        Parameter name used in error messages.
    min_size
        Minimum number of observations.

    Returns
    -------
    numpy.ndarray
        A new float64 array (the caller's data are never modified).
    """
    if kind not in _KINDS:  # pragma: no cover - internal misuse
        raise AssertionError(kind)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        msg = f"{name} must be numeric, got an array of dtype {arr.dtype}"
        raise TypeError(msg)
    if arr.ndim != 1:
        msg = f"{name} must be one-dimensional, got shape {arr.shape}"
        raise ValueError(msg)
    if arr.size < min_size:
        msg = f"{name} must have at least {min_size} observation(s), got {arr.size}"
        raise ValueError(msg)
    arr = arr.astype(np.float64, copy=True)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"{name} contains {int(bad.sum())} non-finite value(s) (first: {arr[i]} at index {i})"
        raise ValueError(msg)
    if kind == "real":
        return arr
    if kind == "positive":
        bad = arr <= 0
        what = "non-positive value"
    elif kind == "nonnegative":
        bad = arr < 0
        what = "negative value"
    elif kind == "binary":
        bad = (arr != 0) & (arr != 1)
        what = "value other than 0 or 1"
    else:
        bad = arr < 0
        what = "negative count"
        if not bad.any():
            bad = arr != np.floor(arr)
            what = "non-integer count"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"{name} contains {int(bad.sum())} {what}(s) (first: {arr[i]!r} at index {i})"
        if kind == "count":
            msg += ". Counts must be non-negative integers (raw counts, not normalised or log data)"
        raise ValueError(msg)
    return arr
