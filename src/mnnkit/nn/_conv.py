"""2-D convolution and transposed convolution (NCHW), forward and backward.

Two engines compute every convolution: ``"im2col"`` (unfold the windows, then one BLAS matrix
product per image and group) and ``"direct"`` (numba loops over the kernel taps, vectorised along
the image rows). ``method="auto"`` picks the faster one for the case: the direct loops when each
group sees few input channels (depthwise and similar), im2col + BLAS otherwise.

``conv_transpose2d`` is defined as the adjoint of ``conv2d`` with respect to its input, which is
PyTorch's definition for ``padding_mode="zeros"``; for the other padding modes the part of the
output that falls on the padding folds back onto the pixels that padding copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mnnkit._config import NN_CONV_CHUNK_BYTES, NN_DIRECT_MAX_CHANNELS_PER_GROUP
from mnnkit._validation import check_int
from mnnkit.nn._im2col import _fold, _unfold
from mnnkit.nn._kernels import conv_forward_kernel, conv_grad_input_kernel, conv_grad_weight_kernel
from mnnkit.nn._padding import _pad, _unpad
from mnnkit.nn._phases import from_phases, to_phases, zeros_phases
from mnnkit.nn._threads import run_kernel
from mnnkit.nn._validation import (
    as_float_array,
    as_nchw,
    check_mode_fits,
    check_padding_mode,
    check_same_dtype,
    check_shape,
    int_pair,
    output_size,
    resolve_padding,
)

METHODS = ("auto", "im2col", "direct")

Pair = tuple[int, int]


@dataclass(frozen=True)
class _Geometry:
    """Everything a convolution needs besides the arrays (all validated)."""

    stride: Pair
    dilation: Pair
    pads: tuple[int, int, int, int]
    groups: int
    mode: str
    method: str
    out_hw: Pair

    @property
    def kernel_args(self) -> tuple[int, int, int, int]:
        return (self.stride[0], self.stride[1], self.dilation[0], self.dilation[1])


def _check_method(method: Any, channels_per_group: int, groups: int) -> str:
    if method not in METHODS:
        msg = f"method must be one of {METHODS}, got {method!r}"
        raise ValueError(msg)
    if method == "auto":
        direct = groups > 1 and channels_per_group <= NN_DIRECT_MAX_CHANNELS_PER_GROUP
        return "direct" if direct else "im2col"
    return method


def _check_weight(weight: Any, x: np.ndarray, name: str = "weight") -> np.ndarray:
    weight = as_float_array(weight, name, ndim=4, layout="(out_channels, in_channels / groups, kh, kw)")
    check_same_dtype(weight, x, name, "x")
    return weight


def _check_bias(bias: Any, x: np.ndarray, channels: int) -> np.ndarray | None:
    if bias is None:
        return None
    bias = as_float_array(bias, "bias", ndim=1, layout=f"({channels},)")
    check_same_dtype(bias, x, "bias", "x")
    check_shape(bias, (channels,), "bias")
    return bias


def _check_groups(groups: Any, in_channels: int, out_channels: int, in_name: str, out_name: str) -> int:
    groups = check_int(groups, "groups", minimum=1)
    if in_channels % groups:
        msg = f"{in_name} ({in_channels}) must be divisible by groups ({groups})"
        raise ValueError(msg)
    if out_channels % groups:
        msg = f"{out_name} ({out_channels}) must be divisible by groups ({groups})"
        raise ValueError(msg)
    return groups


def _conv_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
    method: str,
) -> _Geometry:
    n_in = x.shape[1]
    n_out, cg, kh, kw = weight.shape
    groups = _check_groups(groups, n_in, n_out, "in_channels (x.shape[1])", "out_channels (weight.shape[0])")
    if cg * groups != n_in:
        msg = (
            f"weight.shape[1] ({cg}) must equal in_channels / groups ({n_in} / {groups} = {n_in // groups}); "
            f"weight has shape {weight.shape}"
        )
        raise ValueError(msg)
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    check_padding_mode(padding_mode)
    pads = resolve_padding(padding, (kh, kw), dilation, stride)
    check_mode_fits(pads, x.shape[2], x.shape[3], padding_mode)
    oh = output_size(x.shape[2], kh, stride[0], dilation[0], pads[0] + pads[1], "height")
    ow = output_size(x.shape[3], kw, stride[1], dilation[1], pads[2] + pads[3], "width")
    method = _check_method(method, cg, groups)
    return _Geometry(stride, dilation, pads, groups, padding_mode, method, (oh, ow))


# --- engines ------------------------------------------------------------------------------------
#
# They take unpadded arrays and pad inside. Both engines walk the batch in chunks of images whose
# unfolded columns (im2col) or padded copy (direct) take about NN_CONV_CHUNK_BYTES, so the temporaries
# stay cache-sized and are reused rather than freshly mapped for every call.


def _chunks(n: int, per_image_bytes: int) -> list[slice]:
    step = max(1, NN_CONV_CHUNK_BYTES // max(per_image_bytes, 1))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _padded_bytes(in_shape: tuple[int, ...], geo: _Geometry, itemsize: int) -> int:
    _, c, h, w = in_shape
    return c * (h + geo.pads[0] + geo.pads[1]) * (w + geo.pads[2] + geo.pads[3]) * itemsize


def _col_bytes(w_shape: tuple[int, ...], geo: _Geometry, itemsize: int) -> int:
    _, cg, kh, kw = w_shape
    return geo.groups * cg * kh * kw * geo.out_hw[0] * geo.out_hw[1] * itemsize


def _forward(x: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Cross-correlate ``x`` (padded as ``geo`` says) with ``w``: ``(N, O, OH, OW)``."""
    n = x.shape[0]
    n_out, cg, kh, kw = w.shape
    oh, ow = geo.out_hw
    if geo.method == "direct":
        out = np.zeros((n, n_out, oh, ow), dtype=x.dtype)
        wc = np.ascontiguousarray(w)
        for sl in _chunks(n, _padded_bytes(x.shape, geo, x.itemsize)):
            xq = to_phases(_pad(x[sl], geo.pads, geo.mode), geo.stride[1])
            run_kernel(conv_forward_kernel, out[sl].size * w[0].size, xq, wc, *geo.kernel_args, geo.groups, out[sl])
        return out
    g, k = geo.groups, cg * kh * kw
    wg = w.reshape(g, n_out // g, k)
    out = np.empty((n, g, n_out // g, oh * ow), dtype=x.dtype)
    for sl in _chunks(n, _col_bytes(w.shape, geo, x.itemsize)):
        cols = _unfold(_pad(x[sl], geo.pads, geo.mode), (kh, kw), geo.stride, geo.dilation)
        np.matmul(wg, cols.reshape(-1, g, k, oh * ow), out=out[sl])
    return out.reshape(n, n_out, oh, ow)


def _grad_input(gy: np.ndarray, w: np.ndarray, in_shape: tuple[int, ...], geo: _Geometry) -> np.ndarray:
    """Gradient with respect to the (unpadded) input of :func:`_forward`, shape ``in_shape``."""
    n = gy.shape[0]
    n_out, cg, kh, kw = w.shape
    g = geo.groups
    pads = geo.pads
    padded = (in_shape[0], in_shape[1], in_shape[2] + pads[0] + pads[1], in_shape[3] + pads[2] + pads[3])
    if geo.method == "direct":
        out = np.empty(in_shape, dtype=gy.dtype)
        gyc, wc = np.ascontiguousarray(gy), np.ascontiguousarray(w)
        for sl in _chunks(n, _padded_bytes(in_shape, geo, gy.itemsize)):
            outq = zeros_phases((gyc[sl].shape[0], *padded[1:]), geo.stride[1], gy.dtype)
            run_kernel(conv_grad_input_kernel, gyc[sl].size * w[0].size, gyc[sl], wc, *geo.kernel_args, g, outq)
            out[sl] = _unpad(from_phases(outq, padded[3]), pads, geo.mode)
        return out
    length = gy.shape[2] * gy.shape[3]
    k = cg * kh * kw
    wt = w.reshape(g, n_out // g, k).transpose(0, 2, 1)
    gy4 = gy.reshape(n, g, n_out // g, length)
    out = np.empty(in_shape, dtype=gy.dtype)
    for sl in _chunks(n, _col_bytes(w.shape, geo, gy.itemsize)):
        cols = np.matmul(wt, gy4[sl]).reshape(-1, g * k, length)
        chunk = (cols.shape[0], *padded[1:])
        out[sl] = _unpad(_fold(cols, chunk, (kh, kw), geo.stride, geo.dilation), pads, geo.mode)
    return out


def _grad_weight(gy: np.ndarray, x: np.ndarray, w_shape: tuple[int, ...], geo: _Geometry) -> np.ndarray:
    """Gradient with respect to the weight, ``(O, C / groups, kh, kw)``, for input ``x``."""
    return _forward_and_grad_weight(x, None, gy, w_shape, geo)[1]


def _forward_and_grad_weight(
    x: np.ndarray, w: np.ndarray | None, gy: np.ndarray, w_shape: tuple[int, ...], geo: _Geometry
) -> tuple[np.ndarray | None, np.ndarray]:
    """The forward pass of ``x`` with ``w`` (skipped when ``w`` is None) and the weight gradient for ``gy``.

    Both read the same windows of ``x``, so the im2col engine unfolds each chunk once for both.
    """
    n = gy.shape[0]
    n_out, cg, kh, kw = w_shape
    g = geo.groups
    if geo.method == "direct":
        grad = np.zeros(w_shape, dtype=gy.dtype)
        part = np.empty(w_shape, dtype=gy.dtype)
        gyc = np.ascontiguousarray(gy)
        out = None if w is None else np.zeros((x.shape[0], n_out, *geo.out_hw), dtype=x.dtype)
        for sl in _chunks(n, _padded_bytes(x.shape, geo, x.itemsize)):
            xq = to_phases(_pad(x[sl], geo.pads, geo.mode), geo.stride[1])
            run_kernel(conv_grad_weight_kernel, gyc[sl].size * part[0].size, gyc[sl], xq, *geo.kernel_args, g, part)
            grad += part
            if w is not None:
                wc = np.ascontiguousarray(w)
                run_kernel(conv_forward_kernel, out[sl].size * w[0].size, xq, wc, *geo.kernel_args, g, out[sl])
        return out, grad
    length = gy.shape[2] * gy.shape[3]
    k = cg * kh * kw
    gy4 = gy.reshape(n, g, n_out // g, length)
    grad = np.zeros((g, n_out // g, k), dtype=gy.dtype)
    out = None if w is None else np.empty((n, g, n_out // g, length), dtype=x.dtype)
    for sl in _chunks(n, _col_bytes(w_shape, geo, gy.itemsize)):
        cols = _unfold(_pad(x[sl], geo.pads, geo.mode), (kh, kw), geo.stride, geo.dilation).reshape(-1, g, k, length)
        grad += np.matmul(gy4[sl], cols.transpose(0, 1, 3, 2)).sum(axis=0)
        if w is not None:
            np.matmul(w.reshape(g, n_out // g, k), cols, out=out[sl])
    if out is not None:
        out = out.reshape(n, n_out, *geo.out_hw)
    return out, grad.reshape(w_shape)


# --- conv2d -------------------------------------------------------------------------------------


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> np.ndarray:
    """2-D convolution (cross-correlation, as in deep-learning frameworks) of an NCHW batch.

    Parameters
    ----------
    x
        Input of shape ``(N, C_in, H, W)``, float32 or float64. Not modified.
    weight
        Kernels of shape ``(C_out, C_in / groups, kh, kw)``, same dtype as ``x``.
    bias
        Optional ``(C_out,)`` added to every output pixel.
    stride
        ``s`` or ``(sh, sw)``, positive.
    padding
        ``p``, ``(ph, pw)``, ``"valid"`` (no padding) or ``"same"`` (stride 1 only; output keeps
        ``H`` and ``W``; an odd total puts the extra pixel at the bottom/right).
    dilation
        ``d`` or ``(dh, dw)``: spacing between kernel taps.
    groups
        Split the channels into this many independent groups (``groups == C_in`` is depthwise).
    padding_mode
        ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"`` (see :func:`pad2d`).
    method
        ``"auto"``, ``"im2col"`` (unfold + BLAS) or ``"direct"`` (numba loops). Same result up to rounding.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, OH, OW)`` with ``OH = floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1``.
    """
    x = as_nchw(x, "x")
    weight = _check_weight(weight, x)
    bias = _check_bias(bias, x, weight.shape[0])
    geo = _conv_geometry(x, weight, stride, padding, dilation, groups, padding_mode, method)
    out = _forward(x, weight, geo)
    if bias is not None:
        out += bias[:, None, None]
    return out


def conv2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output
        Gradient of the loss with respect to the output of :func:`conv2d`, ``(N, C_out, OH, OW)``.
    x, weight, stride, padding, dilation, groups, padding_mode, method
        As given to :func:`conv2d`.
    input_grad
        Whether to compute the input gradient (skip it for the first layer of a network).

    Returns
    -------
    grad_input : numpy.ndarray or None
        ``(N, C_in, H, W)`` (None when ``input_grad`` is false).
    grad_weight : numpy.ndarray
        ``(C_out, C_in / groups, kh, kw)``.
    grad_bias : numpy.ndarray
        ``(C_out,)``, the output gradient summed over batch and pixels.
    """
    x = as_nchw(x, "x")
    weight = _check_weight(weight, x)
    geo = _conv_geometry(x, weight, stride, padding, dilation, groups, padding_mode, method)
    gy = as_nchw(grad_output, "grad_output")
    check_same_dtype(gy, x, "grad_output", "x")
    check_shape(gy, (x.shape[0], weight.shape[0], *geo.out_hw), "grad_output")
    grad_weight = _grad_weight(gy, x, weight.shape, geo)
    grad_input = _grad_input(gy, weight, x.shape, geo) if input_grad else None
    return grad_input, grad_weight, gy.sum(axis=(0, 2, 3))


# --- conv_transpose2d ---------------------------------------------------------------------------


def _transpose_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
    method: str,
) -> tuple[_Geometry, tuple[int, int, int, int]]:
    """Geometry of the convolution whose input-adjoint is this transposed convolution."""
    n_in = x.shape[1]
    if weight.shape[0] != n_in:
        msg = (
            f"weight.shape[0] ({weight.shape[0]}) must equal in_channels (x.shape[1] = {n_in}); a transposed "
            "convolution's weight has shape (in_channels, out_channels / groups, kh, kw)"
        )
        raise ValueError(msg)
    groups = _check_groups(groups, n_in, n_in, "in_channels (x.shape[1])", "in_channels")
    kh, kw = weight.shape[2:]
    stride = int_pair(stride, "stride", minimum=1)
    dilation = int_pair(dilation, "dilation", minimum=1)
    if isinstance(padding, str):
        if padding != "valid":
            msg = f"padding of conv_transpose2d must be an int, a pair of ints or 'valid'; got {padding!r}"
            raise ValueError(msg)
        padding = 0
    ph, pw = int_pair(padding, "padding", minimum=0)
    oph, opw = int_pair(output_padding, "output_padding", minimum=0)
    for op, s, axis in ((oph, stride[0], "height"), (opw, stride[1], "width")):
        if op >= s:
            msg = f"output_padding ({op}) must be smaller than stride ({s}) along the {axis}"
            raise ValueError(msg)
    check_padding_mode(padding_mode)
    out_h = (x.shape[2] - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1
    out_w = (x.shape[3] - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1
    if out_h < 1 or out_w < 1:
        msg = f"padding {(ph, pw)} is too large: the transposed convolution's output would be {(out_h, out_w)}"
        raise ValueError(msg)
    pads = (ph, ph, pw, pw)
    check_mode_fits(pads, out_h, out_w, padding_mode)
    method = _check_method(method, weight.shape[1], groups)
    geo = _Geometry(stride, dilation, pads, groups, padding_mode, method, (x.shape[2], x.shape[3]))
    out_shape = (x.shape[0], weight.shape[1] * groups, out_h, out_w)
    return geo, out_shape


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> np.ndarray:
    """Transposed 2-D convolution (the input-gradient of :func:`conv2d`), e.g. for learned upsampling.

    Parameters
    ----------
    x
        Input of shape ``(N, C_in, H, W)``, float32 or float64. Not modified.
    weight
        ``(C_in, C_out / groups, kh, kw)``, same dtype as ``x`` (PyTorch's layout).
    bias
        Optional ``(C_out,)``.
    stride, padding, dilation, groups
        As for the :func:`conv2d` this transposes; ``padding`` crops ``dilation * (k - 1) - padding``
        less from each side of the full output.
    output_padding
        Extra rows/columns at the bottom/right, ``0 <= output_padding < stride``: it picks which of the
        ``stride`` input sizes that a strided convolution maps to ``H`` this one returns.
    padding_mode
        ``"zeros"`` (PyTorch's ``conv_transpose2d``), or ``"reflect"``, ``"replicate"``, ``"circular"``:
        the adjoint of :func:`conv2d` with that padding mode.
    method
        ``"auto"``, ``"im2col"`` or ``"direct"``.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, OH, OW)`` with
        ``OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding + 1`` (likewise ``OW``).
    """
    x = as_nchw(x, "x")
    weight = _check_weight(weight, x)
    geo, out_shape = _transpose_geometry(
        x, weight, stride, padding, output_padding, dilation, groups, padding_mode, method
    )
    bias = _check_bias(bias, x, out_shape[1])
    out = _grad_input(x, weight, out_shape, geo)
    if bias is not None:
        out += bias[:, None, None]
    return out


def conv_transpose2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv_transpose2d` with respect to its input, weight and bias.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output of :func:`conv_transpose2d`, ``(N, C_out, OH, OW)``.
    x, weight, stride, padding, output_padding, dilation, groups, padding_mode, method
        As given to :func:`conv_transpose2d`.
    input_grad
        Whether to compute the input gradient.

    Returns
    -------
    grad_input : numpy.ndarray or None
        ``(N, C_in, H, W)``: the :func:`conv2d` of ``grad_output`` with ``weight``.
    grad_weight : numpy.ndarray
        ``(C_in, C_out / groups, kh, kw)``.
    grad_bias : numpy.ndarray
        ``(C_out,)``.
    """
    x = as_nchw(x, "x")
    weight = _check_weight(weight, x)
    geo, out_shape = _transpose_geometry(
        x, weight, stride, padding, output_padding, dilation, groups, padding_mode, method
    )
    gy = as_nchw(grad_output, "grad_output")
    check_same_dtype(gy, x, "grad_output", "x")
    check_shape(gy, out_shape, "grad_output")
    # both gradients read the windows of the output gradient: one pass computes them together
    grad_input, grad_weight = _forward_and_grad_weight(gy, weight if input_grad else None, x, weight.shape, geo)
    return grad_input, grad_weight, gy.sum(axis=(0, 2, 3))
