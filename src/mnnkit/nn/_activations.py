"""Element-wise activations and their gradients (any shape; PReLU's channel axis is axis 1).

Each ``f_backward(grad_output, x, ...)`` returns the gradient with respect to ``x`` (and, for
PReLU, its slope), recomputing from the input what it needs; at a kink the derivative of the
branch ``x <= 0`` is used, as PyTorch does.
"""

from __future__ import annotations

import numpy as np

from mnnkit.nn._validation import as_float_array, check_same_dtype, check_shape


def _pair(grad_output: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(x, "x")
    g = as_float_array(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    return g, x


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu(x: np.ndarray) -> np.ndarray:
    """Rectified linear unit, ``max(x, 0)``.

    Parameters
    ----------
    x
        Float array of any shape. Not modified.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    x = as_float_array(x, "x")
    return np.maximum(x, 0)


def relu_backward(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`relu`: ``grad_output`` where ``x > 0``, else 0.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x
        The input given to :func:`relu`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    return np.where(x > 0, g, 0).astype(x.dtype, copy=False)


def _check_slope(value: float, name: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        msg = f"{name} must be finite, got {value}"
        raise ValueError(msg)
    return value


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """Leaky ReLU: ``x`` for ``x > 0``, ``negative_slope * x`` otherwise.

    Parameters
    ----------
    x
        Float array of any shape.
    negative_slope
        Slope for negative inputs.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    x = as_float_array(x, "x")
    a = _check_slope(negative_slope, "negative_slope")
    return np.where(x > 0, x, x * x.dtype.type(a))


def leaky_relu_backward(grad_output: np.ndarray, x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """Gradient of :func:`leaky_relu`.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, negative_slope
        As given to :func:`leaky_relu`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    a = _check_slope(negative_slope, "negative_slope")
    return np.where(x > 0, g, g * x.dtype.type(a))


def _prelu_weight(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    weight = as_float_array(weight, "weight", ndim=1, layout="(1,) or (C,)")
    check_same_dtype(weight, x, "weight", "x")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.shape[0] not in (1, channels):
        msg = f"weight must have shape (1,) (shared slope) or ({channels},) (one per channel), got {weight.shape}"
        raise ValueError(msg)
    if weight.shape[0] == 1:
        return weight.reshape((1,) * max(x.ndim, 1))
    return weight.reshape((1, channels) + (1,) * (x.ndim - 2))


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Parametric ReLU: ``x`` for ``x > 0``, ``weight * x`` otherwise, with a learnable slope.

    Parameters
    ----------
    x
        Float array; axis 1 holds the channels (e.g. NCHW or ``(N, features)``).
    weight
        Slopes, ``(1,)`` shared by all channels or ``(C,)``, one per channel.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    x = as_float_array(x, "x")
    w = _prelu_weight(x, weight)
    return np.where(x > 0, x, w * x)


def prelu_backward(grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`prelu` with respect to ``x`` and the slopes.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, weight
        As given to :func:`prelu`.

    Returns
    -------
    grad_input : numpy.ndarray
        Shaped like ``x``.
    grad_weight : numpy.ndarray
        Shaped like ``weight``: ``sum(grad_output * x)`` over the non-positive inputs (per channel).
    """
    g, x = _pair(grad_output, x)
    w = _prelu_weight(x, weight)
    gx = np.where(x > 0, g, w * g)
    contrib = np.where(x > 0, 0, g * x)
    if np.shape(weight)[0] == 1:
        gw = np.array([contrib.sum()], dtype=x.dtype)
    else:
        axes = tuple(a for a in range(x.ndim) if a != 1)
        gw = contrib.sum(axis=axes)
    return gx, gw


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise.

    Parameters
    ----------
    x
        Float array of any shape.
    alpha
        Saturation value for large negative inputs is ``-alpha``.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    x = as_float_array(x, "x")
    a = x.dtype.type(_check_slope(alpha, "alpha"))
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


def elu_backward(grad_output: np.ndarray, x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Gradient of :func:`elu`.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, alpha
        As given to :func:`elu`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    a = x.dtype.type(_check_slope(alpha, "alpha"))
    return np.where(x > 0, g, g * a * np.exp(np.minimum(x, 0)))


def _softplus_args(beta: float, threshold: float) -> tuple[float, float]:
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0):
        msg = f"beta must be positive, got {beta}"
        raise ValueError(msg)
    return beta, float(threshold)


def softplus(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """SoftPlus, a smooth ReLU: ``log(1 + exp(beta * x)) / beta``.

    Parameters
    ----------
    x
        Float array of any shape.
    beta
        Sharpness (positive); large values approach ReLU.
    threshold
        Where ``beta * x > threshold`` the function returns ``x`` (as PyTorch does).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    x = as_float_array(x, "x")
    beta, threshold = _softplus_args(beta, threshold)
    b = x.dtype.type(beta)
    z = x * b
    soft = (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))) / b
    return np.where(z > threshold, x, soft)


def softplus_backward(grad_output: np.ndarray, x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    """Gradient of :func:`softplus`: ``grad_output * sigmoid(beta * x)`` (1 above the threshold).

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, beta, threshold
        As given to :func:`softplus`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    beta, threshold = _softplus_args(beta, threshold)
    z = x * x.dtype.type(beta)
    return np.where(z > threshold, g, g * _sigmoid(z))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow.

    Parameters
    ----------
    x
        Float array of any shape.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``, in ``[0, 1]``.
    """
    return _sigmoid(as_float_array(x, "x"))


def sigmoid_backward(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`sigmoid`: ``grad_output * s * (1 - s)``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x
        The input given to :func:`sigmoid`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    s = _sigmoid(x)
    return g * s * (1 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent.

    Parameters
    ----------
    x
        Float array of any shape.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    return np.tanh(as_float_array(x, "x"))


def tanh_backward(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`tanh`: ``grad_output * (1 - tanh(x) ** 2)``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x
        The input given to :func:`tanh`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g, x = _pair(grad_output, x)
    t = np.tanh(x)
    return g * (1 - t * t)
