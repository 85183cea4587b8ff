"""Max, average and global average pooling of NCHW arrays, forward and backward.

``padding_mode=None`` (the default) follows the usual convention: padded cells never win a max
(they act as ``-inf``) and count as zeros in an average (``count_include_pad=True``) or not at
all (``count_include_pad=False``). ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``
instead pad the image with real values first (see :func:`~mnnkit.nn.pad2d`), which changes what the
border windows of a cell crop see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit.nn._kernels import max_pool_backward_kernel, max_pool_forward_kernel
from mnnkit.nn._padding import _pad, _unpad
from mnnkit.nn._threads import run_kernel
from mnnkit.nn._validation import (
    as_nchw,
    check_mode_fits,
    check_padding_mode,
    check_same_dtype,
    check_shape,
    int_pair,
    output_size,
    resolve_padding,
)

Pads = tuple[int, int, int, int]


def _pool_setup(
    x: np.ndarray, kernel_size: Any, stride: Any, padding: Any, dilation: Any, padding_mode: str | None
) -> tuple[tuple[int, int], tuple[int, int], Pads, tuple[int, int], tuple[int, int]]:
    kernel = int_pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel if stride is None else int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    pads = resolve_padding(padding, kernel, dilation, stride)
    if padding_mode is None:
        for p, k, axis in ((max(pads[:2]), kernel[0], "height"), (max(pads[2:]), kernel[1], "width")):
            if p > k // 2:
                msg = (
                    f"padding ({p}) must be at most half the kernel {axis} ({k} // 2 = {k // 2}) with "
                    "padding_mode=None; pad with a padding_mode to use more"
                )
                raise ValueError(msg)
    else:
        check_padding_mode(padding_mode)
        check_mode_fits(pads, x.shape[2], x.shape[3], padding_mode)
    oh = output_size(x.shape[2], kernel[0], stride[0], dilation[0], pads[0] + pads[1], "height")
    ow = output_size(x.shape[3], kernel[1], stride[1], dilation[1], pads[2] + pads[3], "width")
    return kernel, stride, pads, dilation, (oh, ow)


def _check_grad(grad_output: Any, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    g = as_nchw(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, shape, "grad_output")
    return g


def _max_pool(x, kernel_size, stride, padding, dilation, padding_mode):
    kernel, stride, pads, dilation, (oh, ow) = _pool_setup(x, kernel_size, stride, padding, dilation, padding_mode)
    if padding_mode is None:
        xp = _pad(x, pads, "zeros")
        if any(pads):
            border = np.ones(xp.shape[2:], dtype=bool)
            border[pads[0] : pads[0] + x.shape[2], pads[2] : pads[2] + x.shape[3]] = False
            xp[:, :, border] = -np.inf
    else:
        xp = _pad(x, pads, padding_mode)
    out = np.empty((x.shape[0], x.shape[1], oh, ow), dtype=x.dtype)
    argmax = np.empty(out.shape, dtype=np.int64)
    work = out.size * kernel[0] * kernel[1]
    run_kernel(max_pool_forward_kernel, work, np.ascontiguousarray(xp), *kernel, *stride, *dilation, out, argmax)
    return out, argmax, xp.shape, pads


def max_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str | None = None,
) -> np.ndarray:
    """Max pooling over sliding windows.

    Parameters
    ----------
    x
        ``(N, C, H, W)``, float32 or float64. Not modified.
    kernel_size
        Window ``k`` or ``(kh, kw)``.
    stride
        Step, default ``kernel_size`` (non-overlapping windows).
    padding
        ``p``, ``(ph, pw)``, ``"valid"`` or ``"same"``; at most half the kernel with ``padding_mode=None``.
    dilation
        Spacing between the window's taps.
    padding_mode
        None (padding never wins) or a :func:`~mnnkit.nn.pad2d` mode.

    Returns
    -------
    numpy.ndarray
        ``(N, C, OH, OW)``; a NaN in a window propagates.
    """
    x = as_nchw(x, "x")
    return _max_pool(x, kernel_size, stride, padding, dilation, padding_mode)[0]


def max_pool2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str | None = None,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each window's gradient goes to its (first) maximum.

    Parameters
    ----------
    grad_output
        ``(N, C, OH, OW)``.
    x, kernel_size, stride, padding, dilation, padding_mode
        As given to :func:`max_pool2d`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``, ``(N, C, H, W)``.
    """
    x = as_nchw(x, "x")
    out, argmax, padded_shape, pads = _max_pool(x, kernel_size, stride, padding, dilation, padding_mode)
    g = _check_grad(grad_output, x, out.shape)
    gp = np.zeros(padded_shape, dtype=x.dtype)
    run_kernel(max_pool_backward_kernel, g.size, np.ascontiguousarray(g), argmax, gp)
    return _unpad(gp, pads, padding_mode or "zeros")


def _window_sum(xp: np.ndarray, kernel, stride, out_hw) -> np.ndarray:
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    total = np.zeros((*xp.shape[:2], oh, ow), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
    return total


def _avg_setup(x, kernel_size, stride, padding, padding_mode, count_include_pad):
    kernel, stride, pads, _, out_hw = _pool_setup(x, kernel_size, stride, padding, 1, padding_mode)
    if padding_mode is None and not count_include_pad and any(pads):
        ones = np.ones((1, 1, *x.shape[2:]), dtype=x.dtype)
        count = _window_sum(_pad(ones, pads, "zeros"), kernel, stride, out_hw)
    else:
        count = x.dtype.type(kernel[0] * kernel[1])
    return kernel, stride, pads, out_hw, count


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    padding_mode: str | None = None,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Average pooling over sliding windows.

    Parameters
    ----------
    x
        ``(N, C, H, W)``, float32 or float64. Not modified.
    kernel_size
        Window ``k`` or ``(kh, kw)``.
    stride
        Step, default ``kernel_size``.
    padding
        ``p``, ``(ph, pw)``, ``"valid"`` or ``"same"``; at most half the kernel with ``padding_mode=None``.
    padding_mode
        None (implicit zeros, see ``count_include_pad``) or a :func:`~mnnkit.nn.pad2d` mode.
    count_include_pad
        With ``padding_mode=None``, whether padded cells count in the divisor.

    Returns
    -------
    numpy.ndarray
        ``(N, C, OH, OW)``.
    """
    x = as_nchw(x, "x")
    kernel, stride, pads, out_hw, count = _avg_setup(x, kernel_size, stride, padding, padding_mode, count_include_pad)
    return _window_sum(_pad(x, pads, padding_mode or "zeros"), kernel, stride, out_hw) / count


def avg_pool2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] | str = 0,
    padding_mode: str | None = None,
    count_include_pad: bool = True,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each window spreads its gradient evenly over its cells.

    Parameters
    ----------
    grad_output
        ``(N, C, OH, OW)``.
    x, kernel_size, stride, padding, padding_mode, count_include_pad
        As given to :func:`avg_pool2d` (``x`` for its shape).

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    x = as_nchw(x, "x")
    kernel, stride, pads, out_hw, count = _avg_setup(x, kernel_size, stride, padding, padding_mode, count_include_pad)
    g = _check_grad(grad_output, x, (*x.shape[:2], *out_hw)) / count
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    gp = np.zeros((*x.shape[:2], x.shape[2] + pads[0] + pads[1], x.shape[3] + pads[2] + pads[3]), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            gp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += g
    return _unpad(gp, pads, padding_mode or "zeros")


def global_avg_pool2d(x: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """Mean over height and width of each channel (global average pooling).

    Parameters
    ----------
    x
        ``(N, C, H, W)``.
    keepdims
        Return ``(N, C, 1, 1)`` instead of ``(N, C)``.

    Returns
    -------
    numpy.ndarray
        ``(N, C)`` or ``(N, C, 1, 1)``.
    """
    x = as_nchw(x, "x")
    return x.mean(axis=(2, 3), keepdims=keepdims)


def global_avg_pool2d_backward(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`: ``grad_output / (H * W)`` broadcast over the pixels.

    Parameters
    ----------
    grad_output
        ``(N, C)`` or ``(N, C, 1, 1)``.
    x
        The input given to :func:`global_avg_pool2d` (for its shape).

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)``.
    """
    x = as_nchw(x, "x")
    g = np.asarray(grad_output)
    if g.shape not in (x.shape[:2], (*x.shape[:2], 1, 1)):
        msg = f"grad_output must have shape {x.shape[:2]} or {(*x.shape[:2], 1, 1)}, got {g.shape}"
        raise ValueError(msg)
    check_same_dtype(g, x, "grad_output", "x")
    g = g.reshape(*x.shape[:2], 1, 1) / x.dtype.type(x.shape[2] * x.shape[3])
    return np.broadcast_to(g, x.shape).copy()
