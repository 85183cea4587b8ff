"""Squeeze-and-excitation (Hu et al. 2018): re-weight channels by a gate computed from their means."""

from __future__ import annotations

import numpy as np

from mnnkit.nn._activations import _sigmoid
from mnnkit.nn._linear import linear, linear_backward
from mnnkit.nn._validation import as_nchw, check_same_dtype, check_shape


def _parts(x, w1, b1, w2, b2):
    squeezed = x.mean(axis=(2, 3))
    hidden_pre = linear(squeezed, w1, b1)
    hidden = np.maximum(hidden_pre, 0)
    if w2.shape[0] != x.shape[1]:
        msg = f"w2 must map back to the {x.shape[1]} channels: w2.shape[0] is {w2.shape[0]}"
        raise ValueError(msg)
    gate = _sigmoid(linear(hidden, w2, b2))
    return squeezed, hidden_pre, hidden, gate


def squeeze_excitation(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray | None, w2: np.ndarray, b2: np.ndarray | None
) -> np.ndarray:
    """Squeeze-and-excitation block: ``x * sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2)`` per channel.

    Parameters
    ----------
    x
        ``(N, C, H, W)``. Not modified.
    w1, b1
        Squeeze layer: ``(C // r, C)`` and ``(C // r,)`` (or None) for a reduction ratio ``r``.
    w2, b2
        Excitation layer: ``(C, C // r)`` and ``(C,)`` (or None).

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)``: each channel scaled by its gate in ``(0, 1)``.
    """
    x = as_nchw(x, "x")
    gate = _parts(x, w1, b1, w2, b2)[3]
    return x * gate[:, :, None, None]


def squeeze_excitation_backward(
    grad_output: np.ndarray, x: np.ndarray, w1: np.ndarray, b1: np.ndarray | None, w2: np.ndarray, b2: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`squeeze_excitation`.

    Parameters
    ----------
    grad_output
        ``(N, C, H, W)``.
    x, w1, b1, w2, b2
        As given to :func:`squeeze_excitation`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients with respect to ``x``, ``w1``, ``b1``, ``w2`` and ``b2`` (bias gradients also
        when a bias is None).
    """
    x = as_nchw(x, "x")
    g = as_nchw(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    squeezed, hidden_pre, hidden, gate = _parts(x, w1, b1, w2, b2)
    g_gate = (g * x).sum(axis=(2, 3))
    g_logit = g_gate * gate * (1 - gate)
    g_hidden, g_w2, g_b2 = linear_backward(g_logit, hidden, w2)
    g_hidden_pre = np.where(hidden_pre > 0, g_hidden, 0).astype(x.dtype, copy=False)
    g_squeezed, g_w1, g_b1 = linear_backward(g_hidden_pre, squeezed, w1)
    g_x = g * gate[:, :, None, None] + (g_squeezed / x.dtype.type(x.shape[2] * x.shape[3]))[:, :, None, None]
    return g_x, g_w1, g_b1, g_w2, g_b2
