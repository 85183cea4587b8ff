"""Finite-difference gradients, to check the backward of a new composition without a framework."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mnnkit.nn._validation import as_float_array


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of a scalar function of an array.

    Parameters
    ----------
    f
        Function of one array returning a scalar (e.g. ``lambda x: (conv2d(x, w) * g).sum()``).
    x
        Point at which to differentiate, float64 for a useful accuracy. Not modified: ``f`` is
        called on perturbed copies.
    eps
        Step; the error of the estimate is of order ``eps ** 2`` times the third derivative.

    Returns
    -------
    numpy.ndarray
        ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every element ``i``, shaped like ``x``.
    """
    x = as_float_array(x, "x")
    if not eps > 0:
        msg = f"eps must be positive, got {eps}"
        raise ValueError(msg)
    work = x.copy()
    flat = work.reshape(-1)
    grad = np.empty(flat.size, dtype=np.float64)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = float(f(work))
        flat[i] = keep - eps
        down = float(f(work))
        flat[i] = keep
        grad[i] = (up - down) / (2 * eps)
    return grad.reshape(x.shape).astype(x.dtype)
