"""Batch normalisation and local response normalisation, forward and backward.

Channels are on axis 1; batch normalisation takes statistics over every other axis, so it serves
NCHW feature maps and ``(N, features)`` dense activations alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._validation import check_int
from mnnkit.nn._validation import as_float_array, check_same_dtype, check_shape


def _stat_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(a for a in range(x.ndim) if a != 1)


def _channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _check_bn_input(x: Any) -> np.ndarray:
    x = as_float_array(x, "x")
    if x.ndim < 2:
        msg = f"x must have at least 2 dimensions (N, C, ...) with channels on axis 1, got shape {x.shape}"
        raise ValueError(msg)
    bad = np.count_nonzero(~np.isfinite(x))
    if bad:
        nan = np.count_nonzero(np.isnan(x))
        msg = (
            f"x contains {nan} NaN and {bad - nan} infinite values; batch_norm needs finite input "
            "(the batch statistics would be NaN)"
        )
        raise ValueError(msg)
    return x


def _check_channel_vector(v: Any, name: str, x: np.ndarray) -> np.ndarray | None:
    if v is None:
        return None
    v = as_float_array(v, name, ndim=1, layout=f"({x.shape[1]},)")
    check_same_dtype(v, x, name, "x")
    check_shape(v, (x.shape[1],), name)
    return v


def _check_stats_args(x, running_mean, running_var, training, momentum, eps):
    running_mean = _check_channel_vector(running_mean, "running_mean", x)
    running_var = _check_channel_vector(running_var, "running_var", x)
    if (running_mean is None) != (running_var is None):
        msg = "give both running_mean and running_var, or neither"
        raise ValueError(msg)
    if not training and running_mean is None:
        msg = "evaluation mode (training=False) needs running_mean and running_var"
        raise ValueError(msg)
    momentum = float(momentum)
    if not 0 <= momentum <= 1:
        msg = f"momentum must be in [0, 1], got {momentum}"
        raise ValueError(msg)
    eps = float(eps)
    if not eps > 0:
        msg = f"eps must be positive, got {eps}"
        raise ValueError(msg)
    if training:
        count = x.size // x.shape[1]
        if count < 2:
            msg = f"training batch_norm needs more than one value per channel, got input of shape {x.shape}"
            raise ValueError(msg)
    return running_mean, running_var, momentum, eps


def _statistics(x, running_mean, running_var, training, eps):
    if training:
        mean = x.mean(axis=_stat_axes(x))
        var = x.var(axis=_stat_axes(x))
    else:
        mean, var = running_mean, running_var
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    return mean, var, invstd


def batch_norm(
    x: np.ndarray,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    """Batch normalisation: ``weight * (x - mean) / sqrt(var + eps) + bias`` per channel.

    In training mode the mean and (biased) variance come from the batch, over every axis but 1,
    and, when ``running_mean`` and ``running_var`` are given, these are updated **in place** as
    ``running = (1 - momentum) * running + momentum * batch`` (with the unbiased variance), as in
    PyTorch; pass copies to keep yours. In evaluation mode the running statistics normalise.

    Parameters
    ----------
    x
        ``(N, C, ...)``, finite (NaN or inf raise ValueError). Not modified.
    weight, bias
        Optional ``(C,)`` scale and shift (1 and 0 when None).
    running_mean, running_var
        Optional ``(C,)`` running statistics; required when ``training`` is false.
    training
        Use (and record) batch statistics, or use the running ones.
    momentum
        Weight of the new batch in the running statistics, in ``[0, 1]``.
    eps
        Added to the variance.

    Returns
    -------
    numpy.ndarray
        Normalised array, shaped like ``x``.
    """
    x = _check_bn_input(x)
    weight = _check_channel_vector(weight, "weight", x)
    bias = _check_channel_vector(bias, "bias", x)
    running_mean, running_var, momentum, eps = _check_stats_args(x, running_mean, running_var, training, momentum, eps)
    mean, var, invstd = _statistics(x, running_mean, running_var, training, eps)
    scale = invstd if weight is None else weight * invstd
    y = (x - _channel_view(mean, x.ndim)) * _channel_view(scale, x.ndim)
    if bias is not None:
        y += _channel_view(bias, x.ndim)
    if training and running_mean is not None:
        count = x.size // x.shape[1]
        m = x.dtype.type(momentum)
        running_mean *= 1 - m
        running_mean += m * mean
        running_var *= 1 - m
        running_var += m * var * x.dtype.type(count / (count - 1))
    return y


def batch_norm_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    training: bool = True,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm` with respect to ``x``, ``weight`` and ``bias``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, weight, running_mean, running_var, training, eps
        As given to :func:`batch_norm` (the running statistics are only read, in evaluation mode).

    Returns
    -------
    grad_input : numpy.ndarray
        Shaped like ``x``; in training mode it includes the path through the batch statistics.
    grad_weight, grad_bias : numpy.ndarray
        ``(C,)`` each (also when ``weight`` is None).
    """
    x = _check_bn_input(x)
    g = as_float_array(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    weight = _check_channel_vector(weight, "weight", x)
    running_mean, running_var, _, eps = _check_stats_args(x, running_mean, running_var, training, 0.0, eps)
    mean, _, invstd = _statistics(x, running_mean, running_var, training, eps)
    axes = _stat_axes(x)
    xhat = (x - _channel_view(mean, x.ndim)) * _channel_view(invstd, x.ndim)
    grad_bias = g.sum(axis=axes)
    grad_weight = (g * xhat).sum(axis=axes)
    scale = invstd if weight is None else weight * invstd
    if training:
        count = x.dtype.type(x.size // x.shape[1])
        centred = g - _channel_view(grad_bias / count, x.ndim) - xhat * _channel_view(grad_weight / count, x.ndim)
        grad_input = centred * _channel_view(scale, x.ndim)
    else:
        grad_input = g * _channel_view(scale, x.ndim)
    return grad_input, grad_weight, grad_bias


def _lrn_args(x: Any, size: Any, alpha: float, beta: float, k: float) -> tuple[np.ndarray, int]:
    x = as_float_array(x, "x")
    if x.ndim < 3:
        msg = f"x must have at least 3 dimensions (N, C, ...) for local response normalisation, got shape {x.shape}"
        raise ValueError(msg)
    size = check_int(size, "size", minimum=1)
    if not (np.isfinite(alpha) and np.isfinite(beta) and np.isfinite(k)):
        msg = "alpha, beta and k must be finite"
        raise ValueError(msg)
    return x, size


def _channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """Sum of ``a`` over channels ``c - before .. c + after`` (zero outside the channel range)."""
    out = np.zeros_like(a)
    channels = a.shape[1]
    for shift in range(-before, after + 1):
        lo, hi = max(0, -shift), min(channels, channels - shift)
        if lo < hi:
            out[:, lo:hi] += a[:, lo + shift : hi + shift]
    return out


def _lrn_denominator(x: np.ndarray, size: int, alpha: float, k: float) -> np.ndarray:
    t = x.dtype.type
    return t(k) + t(alpha / size) * _channel_window_sum(x * x, size // 2, (size - 1) // 2)


def local_response_norm(
    x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> np.ndarray:
    """Local response normalisation across channels (AlexNet).

    ``y[c] = x[c] / (k + alpha / size * sum(x[c'] ** 2)) ** beta``, the sum over the ``size``
    neighbouring channels ``c - size // 2 .. c + (size - 1) // 2`` (missing channels count as 0).

    Parameters
    ----------
    x
        ``(N, C, ...)``. Not modified.
    size
        Number of channels in a neighbourhood.
    alpha, beta, k
        Scale, exponent and offset of the denominator.

    Returns
    -------
    numpy.ndarray
        Shaped like ``x``.
    """
    x, size = _lrn_args(x, size, alpha, beta, k)
    return x * _lrn_denominator(x, size, alpha, k) ** x.dtype.type(-beta)


def local_response_norm_backward(
    grad_output: np.ndarray, x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> np.ndarray:
    """Gradient of :func:`local_response_norm` with respect to ``x``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, shaped like ``x``.
    x, size, alpha, beta, k
        As given to :func:`local_response_norm`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    x, size = _lrn_args(x, size, alpha, beta, k)
    g = as_float_array(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    t = x.dtype.type
    d = _lrn_denominator(x, size, alpha, k)
    direct = g * d ** t(-beta)
    # channel c' feeds the denominators of channels c' - (size - 1) // 2 .. c' + size // 2
    through = _channel_window_sum(g * x * d ** t(-beta - 1), (size - 1) // 2, size // 2)
    return direct - t(2 * beta * alpha / size) * x * through
