"""Dense (fully connected) layer ``x @ weight.T + bias`` and its gradients."""

from __future__ import annotations

import numpy as np

from mnnkit.nn._validation import as_float_array, check_same_dtype, check_shape


def _check(x, weight):
    x = as_float_array(x, "x")
    if x.ndim < 1:
        msg = "x must have at least one dimension (..., in_features)"
        raise ValueError(msg)
    weight = as_float_array(weight, "weight", ndim=2, layout="(out_features, in_features)")
    check_same_dtype(weight, x, "weight", "x")
    if weight.shape[1] != x.shape[-1]:
        msg = f"weight.shape[1] ({weight.shape[1]}) must equal in_features (x.shape[-1] = {x.shape[-1]})"
        raise ValueError(msg)
    return x, weight


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Affine map of the last axis: ``x @ weight.T + bias``.

    Parameters
    ----------
    x
        ``(..., in_features)``. Not modified.
    weight
        ``(out_features, in_features)``, same dtype as ``x``.
    bias
        Optional ``(out_features,)``.

    Returns
    -------
    numpy.ndarray
        ``(..., out_features)``.
    """
    x, weight = _check(x, weight)
    out = x @ weight.T
    if bias is not None:
        bias = as_float_array(bias, "bias", ndim=1, layout="(out_features,)")
        check_same_dtype(bias, x, "bias", "x")
        check_shape(bias, (weight.shape[0],), "bias")
        out += bias
    return out


def linear_backward(
    grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`linear` with respect to ``x``, ``weight`` and ``bias``.

    Parameters
    ----------
    grad_output
        ``(..., out_features)``.
    x, weight
        As given to :func:`linear`.

    Returns
    -------
    tuple of numpy.ndarray
        ``(..., in_features)``, ``(out_features, in_features)`` and ``(out_features,)``.
    """
    x, weight = _check(x, weight)
    g = as_float_array(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, (*x.shape[:-1], weight.shape[0]), "grad_output")
    g2 = g.reshape(-1, weight.shape[0])
    x2 = x.reshape(-1, weight.shape[1])
    return g @ weight, g2.T @ x2, g2.sum(axis=0)
