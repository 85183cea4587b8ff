"""Factorised convolutions: depthwise, pointwise (1x1), depthwise-separable and spatially separable.

All of them are :func:`~mnnkit.nn.conv2d` calls with particular shapes, so they inherit its
padding modes, engines and checks; the backward functions chain the gradients of the stages.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from mnnkit.nn._conv import conv2d, conv2d_backward
from mnnkit.nn._validation import as_float_array, as_nchw, int_pair


def _depthwise_groups(x: np.ndarray, weight: Any) -> int:
    weight = as_float_array(weight, "weight", ndim=4, layout="(C * multiplier, 1, kh, kw)")
    channels = x.shape[1]
    if weight.shape[1] != 1 or weight.shape[0] % channels:
        msg = (
            f"a depthwise weight must have shape (C * multiplier, 1, kh, kw) with C = {channels} input channels; "
            f"got {weight.shape}"
        )
        raise ValueError(msg)
    return channels


def depthwise_conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> np.ndarray:
    """Depthwise convolution: each input channel filtered by its own ``multiplier`` kernels.

    Parameters
    ----------
    x
        ``(N, C, H, W)``.
    weight
        ``(C * multiplier, 1, kh, kw)``; output channel ``c * multiplier + m`` filters input channel ``c``.
    bias, stride, padding, dilation, padding_mode, method
        As for :func:`~mnnkit.nn.conv2d`.

    Returns
    -------
    numpy.ndarray
        ``(N, C * multiplier, OH, OW)``.
    """
    x = as_nchw(x, "x")
    groups = _depthwise_groups(x, weight)
    return conv2d(x, weight, bias, stride, padding, dilation, groups, padding_mode, method)


def depthwise_conv2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`depthwise_conv2d`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output, ``(N, C * multiplier, OH, OW)``.
    x, weight, stride, padding, dilation, padding_mode, method
        As given to :func:`depthwise_conv2d`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients with respect to ``x``, ``weight`` and the bias.
    """
    x = as_nchw(x, "x")
    groups = _depthwise_groups(x, weight)
    return conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups, padding_mode, method)


def _as_pointwise(weight: Any) -> np.ndarray:
    weight = as_float_array(weight, "weight")
    if weight.ndim == 2:
        return weight[:, :, None, None]
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
        return weight
    msg = f"a pointwise weight must have shape (C_out, C_in) or (C_out, C_in, 1, 1), got {weight.shape}"
    raise ValueError(msg)


def pointwise_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Pointwise (1x1) convolution: a per-pixel linear map of the channels.

    Parameters
    ----------
    x
        ``(N, C_in, H, W)``.
    weight
        ``(C_out, C_in)`` or ``(C_out, C_in, 1, 1)``.
    bias
        Optional ``(C_out,)``.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, H, W)``.
    """
    return conv2d(x, _as_pointwise(weight), bias)


def pointwise_conv2d_backward(
    grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`pointwise_conv2d`; the weight gradient has the shape of ``weight``.

    Parameters
    ----------
    grad_output
        ``(N, C_out, H, W)``.
    x, weight
        As given to :func:`pointwise_conv2d`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients with respect to ``x``, ``weight`` and the bias.
    """
    w4 = _as_pointwise(weight)
    gx, gw, gb = conv2d_backward(grad_output, x, w4)
    return gx, gw.reshape(np.shape(weight)), gb


def separable_conv2d(
    x: np.ndarray,
    depthwise_weight: np.ndarray,
    pointwise_weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> np.ndarray:
    """Depthwise-separable convolution (MobileNet, Xception): depthwise, then pointwise.

    Parameters
    ----------
    x
        ``(N, C, H, W)``.
    depthwise_weight
        ``(C * multiplier, 1, kh, kw)``.
    pointwise_weight
        ``(C_out, C * multiplier)`` or ``(C_out, C * multiplier, 1, 1)``.
    bias
        Optional ``(C_out,)``, added after the pointwise stage.
    stride, padding, dilation, padding_mode, method
        Of the depthwise stage, as for :func:`~mnnkit.nn.conv2d`.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, OH, OW)``.
    """
    mid = depthwise_conv2d(x, depthwise_weight, None, stride, padding, dilation, padding_mode, method)
    return pointwise_conv2d(mid, pointwise_weight, bias)


def separable_conv2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    depthwise_weight: np.ndarray,
    pointwise_weight: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`separable_conv2d`.

    Parameters
    ----------
    grad_output
        ``(N, C_out, OH, OW)``.
    x, depthwise_weight, pointwise_weight, stride, padding, dilation, padding_mode, method
        As given to :func:`separable_conv2d`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients with respect to ``x``, ``depthwise_weight``, ``pointwise_weight`` and the bias.
    """
    mid = depthwise_conv2d(x, depthwise_weight, None, stride, padding, dilation, padding_mode, method)
    g_mid, g_pw, g_b = pointwise_conv2d_backward(grad_output, mid, pointwise_weight)
    g_x, g_dw, _ = depthwise_conv2d_backward(
        g_mid, x, depthwise_weight, stride, padding, dilation, padding_mode, method
    )
    return g_x, g_dw, g_pw, g_b


def _split_padding(padding: Any) -> tuple[Any, Any]:
    if isinstance(padding, str):
        return padding, padding
    ph, pw = int_pair(padding, "padding", minimum=0)
    return (ph, 0), (0, pw)


def _stages(stride: Any, padding: Any, dilation: Any) -> tuple[dict, dict]:
    (sh, sw), (dh, dw) = int_pair(stride, "stride", minimum=1), int_pair(dilation, "dilation", minimum=1)
    pad_v, pad_h = _split_padding(padding)
    return (
        {"stride": (sh, 1), "padding": pad_v, "dilation": (dh, 1)},
        {"stride": (1, sw), "padding": pad_h, "dilation": (1, dw)},
    )


def spatially_separable_conv2d(
    x: np.ndarray,
    weight_v: np.ndarray,
    weight_h: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> np.ndarray:
    """Spatially separable convolution: a ``kh x 1`` convolution, then a ``1 x kw`` one.

    With ``groups == C`` (depthwise) and ``weight_v``, ``weight_h`` from :func:`separable_factors`
    of a rank-1 kernel, this equals the ``kh x kw`` convolution for every padding mode and stride,
    at ``kh + kw`` instead of ``kh * kw`` multiplications per pixel.

    Parameters
    ----------
    x
        ``(N, C_in, H, W)``.
    weight_v
        Vertical kernels ``(C_mid, C_in / groups, kh, 1)``.
    weight_h
        Horizontal kernels ``(C_out, C_mid / groups, 1, kw)``.
    bias
        Optional ``(C_out,)``, added after the second stage.
    stride, padding, dilation
        As for the ``kh x kw`` convolution: the row parts go to the vertical stage and the column
        parts to the horizontal one.
    groups, padding_mode, method
        Used by both stages.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, OH, OW)``.
    """
    v, h = _stages(stride, padding, dilation)
    mid = conv2d(x, weight_v, None, groups=groups, padding_mode=padding_mode, method=method, **v)
    return conv2d(mid, weight_h, bias, groups=groups, padding_mode=padding_mode, method=method, **h)


def spatially_separable_conv2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight_v: np.ndarray,
    weight_h: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`spatially_separable_conv2d`.

    Parameters
    ----------
    grad_output
        ``(N, C_out, OH, OW)``.
    x, weight_v, weight_h, stride, padding, dilation, groups, padding_mode, method
        As given to :func:`spatially_separable_conv2d`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients with respect to ``x``, ``weight_v``, ``weight_h`` and the bias.
    """
    v, h = _stages(stride, padding, dilation)
    common = {"groups": groups, "padding_mode": padding_mode, "method": method}
    mid = conv2d(x, weight_v, None, **common, **v)
    g_mid, g_h, g_b = conv2d_backward(grad_output, mid, weight_h, **common, **h)
    g_x, g_v, _ = conv2d_backward(g_mid, x, weight_v, **common, **v)
    return g_x, g_v, g_h, g_b


class SeparableFactors(NamedTuple):
    """Result of :func:`separable_factors`."""

    vertical: np.ndarray
    """``(..., kh, 1)``: the column factor, scaled by the square root of the top singular value."""
    horizontal: np.ndarray
    """``(..., 1, kw)``: the row factor, scaled likewise."""
    error: np.ndarray
    """``(...)``: relative Frobenius error ``||K - v h|| / ||K||`` (0 for a rank-1 kernel)."""


def separable_factors(kernel: np.ndarray) -> SeparableFactors:
    """Factorise ``kh x kw`` kernels into a column times a row by SVD (best rank-1 approximation).

    A kernel is spatially separable when it has rank 1 (a Sobel or Gaussian kernel, for example);
    then ``vertical @ horizontal`` reproduces it exactly. For any other kernel the product is the
    closest rank-1 kernel in the Frobenius norm and ``error`` says how far it is from the kernel.

    Parameters
    ----------
    kernel
        ``(..., kh, kw)``, e.g. a depthwise weight ``(C, 1, kh, kw)``. Not modified.

    Returns
    -------
    SeparableFactors
        ``vertical`` ``(..., kh, 1)`` and ``horizontal`` ``(..., 1, kw)``, ready as ``weight_v``
        and ``weight_h`` of :func:`spatially_separable_conv2d` (with ``groups = C`` for a depthwise
        weight), and ``error`` ``(...)``, the relative error of the factorisation.
    """
    kernel = as_float_array(kernel, "kernel")
    if kernel.ndim < 2:
        msg = f"kernel must have at least 2 dimensions (..., kh, kw), got shape {kernel.shape}"
        raise ValueError(msg)
    u, s, vt = np.linalg.svd(kernel, full_matrices=False)
    root = np.sqrt(s[..., 0])
    col = u[..., :, 0] * root[..., None]
    row = vt[..., 0, :] * root[..., None]
    # fix the sign so that the column's largest-magnitude entry is positive (deterministic factors)
    flip = np.take_along_axis(col, np.abs(col).argmax(axis=-1)[..., None], axis=-1) < 0
    sign = np.where(flip, -1.0, 1.0).astype(kernel.dtype)
    col, row = col * sign, row * sign
    total = np.sqrt(np.sum(s * s, axis=-1))
    rest = np.sqrt(np.sum(s[..., 1:] * s[..., 1:], axis=-1))
    error = np.divide(rest, total, out=np.zeros_like(total), where=total > 0)
    return SeparableFactors(col[..., :, None], row[..., None, :], error)
