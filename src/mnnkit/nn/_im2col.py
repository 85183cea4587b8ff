"""``im2col`` / ``col2im``: sliding windows of an NCHW array laid out as matrix columns.

For an input of height ``H`` padded by ``top`` and ``bottom``, a kernel of height ``k`` with
dilation ``d`` and stride ``s`` gives ``OH = floor((H + top + bottom - d * (k - 1) - 1) / s) + 1``
window positions (the same for the width). :func:`im2col` returns, per image, a matrix with one row
per (channel, kernel row, kernel column) and one column per window position, so a convolution
becomes one matrix product; :func:`col2im` is its adjoint (overlapping windows add up).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit.nn._kernels import col2im_kernel, im2col_kernel
from mnnkit.nn._padding import _pad, _unpad
from mnnkit.nn._phases import from_phases, to_phases, zeros_phases
from mnnkit.nn._threads import run_kernel
from mnnkit.nn._validation import (
    as_float_array,
    as_nchw,
    check_mode_fits,
    check_padding_mode,
    int_pair,
    output_size,
    resolve_padding,
)


def _unfold(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """Return the windows of an already padded array as ``(N, C * kh * kw, OH * OW)``."""
    n, c, hp, wp = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    if kernel == (1, 1) and stride == (1, 1):
        return np.ascontiguousarray(xp).reshape(n, c, hp * wp)
    oh = (hp - dh * (kh - 1) - 1) // sh + 1
    ow = (wp - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, c * kh * kw, oh * ow), dtype=xp.dtype)
    run_kernel(im2col_kernel, out.size, to_phases(xp, sw), kh, kw, sh, sw, dh, dw, oh, ow, out)
    return out


def _fold(
    cols: np.ndarray,
    padded_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """Adjoint of :func:`_unfold`: sum columns back into an array of ``padded_shape``."""
    n, c, hp, wp = padded_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    if kernel == (1, 1) and stride == (1, 1):
        return np.ascontiguousarray(cols).reshape(padded_shape)
    oh = (hp - dh * (kh - 1) - 1) // sh + 1
    ow = (wp - dw * (kw - 1) - 1) // sw + 1
    out = zeros_phases(padded_shape, sw, cols.dtype)
    run_kernel(col2im_kernel, cols.size, np.ascontiguousarray(cols), kh, kw, sh, sw, dh, dw, oh, ow, out)
    return from_phases(out, wp)


def _window_setup(
    height: int, width: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any, padding_mode: str
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int], tuple[int, int], tuple[int, int]]:
    kernel = int_pair(kernel_size, "kernel_size", minimum=1)
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    check_padding_mode(padding_mode)
    pads = resolve_padding(padding, kernel, dilation, stride)
    check_mode_fits(pads, height, width, padding_mode)
    oh = output_size(height, kernel[0], stride[0], dilation[0], pads[0] + pads[1], "height")
    ow = output_size(width, kernel[1], stride[1], dilation[1], pads[2] + pads[3], "width")
    return kernel, stride, pads, dilation, (oh, ow)


def im2col(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Unfold the sliding windows of an NCHW array into columns (PyTorch's ``unfold``).

    Parameters
    ----------
    x
        Array of shape ``(N, C, H, W)``, float32 or float64. Not modified.
    kernel_size
        Window height and width, ``k`` or ``(kh, kw)``.
    stride
        Step between windows, ``s`` or ``(sh, sw)``; positive.
    padding
        ``p``, ``(ph, pw)``, ``"valid"`` (none) or ``"same"`` (stride 1; keeps ``H`` and ``W``).
    dilation
        Spacing between kernel taps, ``d`` or ``(dh, dw)``.
    padding_mode
        ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(N, C * kh * kw, OH * OW)``, where
        ``OH = floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1`` and likewise ``OW``. Row
        ``(c * kh + i) * kw + j`` holds tap ``(i, j)`` of channel ``c``; column ``y * OW + x`` holds
        the window whose top-left corner is at ``(y * sh - ph, x * sw - pw)``.
    """
    x = as_nchw(x, "x")
    kernel, stride, pads, dilation, _ = _window_setup(
        x.shape[2], x.shape[3], kernel_size, stride, padding, dilation, padding_mode
    )
    cols = _unfold(_pad(x, pads, padding_mode), kernel, stride, dilation)
    return cols.copy() if np.shares_memory(cols, x) else cols


def col2im(
    cols: np.ndarray,
    output_size: tuple[int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Fold columns back into an NCHW array, summing overlapping windows (PyTorch's ``fold``).

    This is the adjoint of :func:`im2col` (and the gradient of :func:`im2col` with respect to its
    input): with the same arguments, ``<im2col(x), c> == <x, col2im(c)>``. With a non-zero
    ``padding_mode`` the values that land on the padding are folded back onto the pixels they copy.

    Parameters
    ----------
    cols
        Array of shape ``(N, C * kh * kw, OH * OW)`` (see :func:`im2col` for ``OH`` and ``OW``).
    output_size
        ``(H, W)`` of the array to rebuild.
    kernel_size, stride, padding, dilation, padding_mode
        As for :func:`im2col`.

    Returns
    -------
    numpy.ndarray
        Array of shape ``(N, C, H, W)``.
    """
    cols = as_float_array(cols, "cols", ndim=3, layout="(N, C * kh * kw, OH * OW)")
    height, width = int_pair(output_size, "output_size", minimum=1)
    kernel, stride, pads, dilation, (oh, ow) = _window_setup(
        height, width, kernel_size, stride, padding, dilation, padding_mode
    )
    n, rows, length = cols.shape
    if rows % (kernel[0] * kernel[1]) or length != oh * ow:
        msg = (
            f"cols of shape {cols.shape} does not match kernel_size {kernel} and output_size {(height, width)}: "
            f"expected (N, C * {kernel[0] * kernel[1]}, {oh * ow})"
        )
        raise ValueError(msg)
    channels = rows // (kernel[0] * kernel[1])
    padded = (n, channels, height + pads[0] + pads[1], width + pads[2] + pads[3])
    out = _unpad(_fold(cols, padded, kernel, stride, dilation), pads, padding_mode)
    return out.copy() if np.shares_memory(out, cols) else out
