"""Parameter checks shared by every public function, with one message style.

Every check runs in Python before any numba kernel sees the data and raises a :class:`TypeError`
(wrong kind of value) or :class:`ValueError` (right kind, bad value) whose message names the
parameter, says what is expected and shows what was given: ``"k must be >= 1, got 0"``. None of them
copies or modifies the caller's data unless it says so.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_float_matrix",
    "check_adata",
    "check_bool",
    "check_choice",
    "check_int",
    "check_k",
    "check_key",
    "check_key_added",
    "check_prop_k",
    "check_real",
    "is_int",
    "is_real",
]


def is_int(value: object) -> bool:
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))


def check_int(value: object, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int: a TypeError unless an integer, a ValueError outside the bounds."""
    if not is_int(value):
        msg = f"{name} must be an integer, got {value!r}"
        raise TypeError(msg)
    value = int(value)
    if minimum is not None and value < minimum:
        msg = f"{name} must be >= {minimum}, got {value}"
        raise ValueError(msg)
    if maximum is not None and value > maximum:
        msg = f"{name} must be <= {maximum}, got {value}"
        raise ValueError(msg)
    return value


def check_real(
    value: object, name: str, *, minimum: float | None = None, positive: bool = False, maximum: float | None = None
) -> float:
    """``value`` as a finite float, ``> 0`` with ``positive``, within ``[minimum, maximum]`` (ValueError otherwise)."""
    if not is_real(value):
        what = "a positive finite number" if positive else "a finite number"
        msg = f"{name} must be {what}, got {value!r}"
        raise ValueError(msg)
    value = float(value)
    if positive and value <= 0:
        msg = f"{name} must be a positive finite number, got {value!r}"
        raise ValueError(msg)
    if minimum is not None and value < minimum:
        msg = f"{name} must be a finite number >= {minimum:g}, got {value!r}"
        raise ValueError(msg)
    if maximum is not None and value > maximum:
        msg = f"{name} must be a finite number <= {maximum:g}, got {value!r}"
        raise ValueError(msg)
    return value


def check_bool(value: object, name: str) -> bool:
    """``value`` as a bool (Python or numpy), a TypeError otherwise."""
    if not isinstance(value, bool | np.bool_):
        msg = f"{name} must be True or False, got {value!r}"
        raise TypeError(msg)
    return bool(value)


def check_choice(value: object, name: str, choices: Sequence[object]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==``), a ValueError otherwise."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        listing = ", ".join(repr(c) for c in choices)
        msg = f"{name} must be one of {listing}, got {value!r}"
        raise ValueError(msg)
    return value


def check_k(name: str, value: object) -> int:
    """A neighbour count: a TypeError unless an int, a ValueError unless ``>= 1``."""
    if not is_int(value):
        msg = f"{name} must be a positive integer, got {value!r}"
        raise TypeError(msg)
    if value < 1:
        msg = f"{name} must be >= 1, got {value}"
        raise ValueError(msg)
    return int(value)


def check_prop_k(prop_k: object) -> float | None:
    """Batchelor's ``prop.k``: None or a number in (0, 1]."""
    if prop_k is not None and not (is_real(prop_k) and 0 < prop_k <= 1):
        msg = f"prop_k must be None or a number in (0, 1], got {prop_k!r}"
        raise ValueError(msg)
    return None if prop_k is None else float(prop_k)


def check_key_added(key_added: object, name: str = "key_added") -> str:
    """An output key: a non-empty string."""
    if not isinstance(key_added, str) or not key_added:
        msg = f"{name} must be a non-empty string, got {key_added!r}"
        raise ValueError(msg)
    return key_added


def check_key(adata: Any, key: object, name: str, attr: str = "obs") -> str:
    """``key`` if ``adata.<attr>`` holds it (a column of ``obs``/``var``, a key of ``obsm``, ``layers``, ...).

    A TypeError unless ``key`` is a string; a ValueError listing what is available otherwise:
    ``"batch_key 'btch' not in adata.obs; available: batch, cell_type"``.
    """
    if not isinstance(key, str):
        msg = f"{name} must be a string (a key of adata.{attr}), got {type(key).__name__}"
        raise TypeError(msg)
    store = getattr(adata, attr)
    keys = store.columns if attr in ("obs", "var") else store.keys()
    if key not in keys:
        available = ", ".join(map(str, keys)) or "(none)"
        msg = f"{name} {key!r} not in adata.{attr}; available: {available}"
        raise ValueError(msg)
    return key


def check_adata(adata: object, function: str):
    """``adata`` if it is an in-memory AnnData, else a clear error naming ``function``."""
    from anndata import AnnData

    if not isinstance(adata, AnnData):
        msg = f"adata must be an AnnData object, got {type(adata).__name__}"
        raise TypeError(msg)
    if adata.isbacked:
        mode = getattr(adata.file, "_filemode", None) or "r"
        msg = (
            f"adata is in backed mode (read with backed={mode!r}); {function} needs the matrix in memory. "
            "Load it with adata = adata.to_memory() first"
        )
        raise ValueError(msg)
    return adata


def as_float_matrix(x: Any, name: str) -> np.ndarray:
    """Validate a dense 2-D real array without NaN/inf and return it as float64 C order (copy only if needed)."""
    if hasattr(x, "toarray") or type(x).__module__.startswith("scipy.sparse"):
        msg = f"{name} must be a dense array (cells x features), got a sparse {type(x).__name__}."
        raise TypeError(msg)
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        msg = f"{name} must be a real numeric array, got dtype {arr.dtype}."
        raise TypeError(msg)
    if arr.ndim != 2:
        msg = f"{name} must be 2-D (cells x features), got shape {arr.shape}."
        raise ValueError(msg)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        row = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        msg = f"{name} contains NaN or infinite values (first in row {row})."
        raise ValueError(msg)
    return arr
