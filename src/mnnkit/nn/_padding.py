"""Spatial padding of NCHW arrays (zeros, reflect, replicate, circular) and its adjoint.

The border of a cell crop is where padding matters: zeros darken it, ``reflect`` mirrors the
interior without repeating the edge pixel, ``replicate`` repeats the edge pixel and ``circular``
wraps the opposite edge around (a periodic tile). Every convolution and pooling in
:mod:`mnnkit.nn` pads through :func:`pad2d`, and its gradient goes back through
:func:`pad2d_backward`, the exact adjoint (border gradients fold back onto the pixels they copy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._validation import is_int
from mnnkit.nn._validation import as_nchw, check_mode_fits, check_padding_mode, int_pair

Pads = tuple[int, int, int, int]


def _source_index(size: int, before: int, after: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices of the input pixels copied into the ``before`` and ``after`` borders along one axis."""
    head = np.arange(before)
    tail = np.arange(after)
    if mode == "reflect":
        return before - head, size - 2 - tail
    if mode == "replicate":
        return np.zeros(before, dtype=np.intp), np.full(after, size - 1, dtype=np.intp)
    # circular
    return size - before + head, tail


def _index(axis: int, region: Any, ndim: int) -> tuple:
    key = [slice(None)] * ndim
    key[axis] = region
    return tuple(key)


def _pad_axis(x: np.ndarray, before: int, after: int, mode: str, axis: int) -> np.ndarray:
    if before == 0 and after == 0:
        return x
    size = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = size + before + after
    nd = x.ndim
    if mode == "zeros":
        out = np.zeros(shape, dtype=x.dtype)
        out[_index(axis, slice(before, before + size), nd)] = x
        return out
    out = np.empty(shape, dtype=x.dtype)
    out[_index(axis, slice(before, before + size), nd)] = x
    head, tail = _source_index(size, before, after, mode)
    if before:
        out[_index(axis, slice(0, before), nd)] = np.take(x, head, axis=axis)
    if after:
        out[_index(axis, slice(before + size, None), nd)] = np.take(x, tail, axis=axis)
    return out


def _unpad_axis(g: np.ndarray, before: int, after: int, mode: str, axis: int) -> np.ndarray:
    if before == 0 and after == 0:
        return g
    size = g.shape[axis] - before - after
    nd = g.ndim
    out = np.array(g[_index(axis, slice(before, before + size), nd)], copy=True)
    if mode == "zeros":
        return out
    head, tail = _source_index(size, before, after, mode)
    for idx, region in ((head, slice(0, before)), (tail, slice(before + size, None))):
        if idx.size == 0:
            continue
        part = g[_index(axis, region, nd)]
        if mode == "replicate":
            out[_index(axis, slice(idx[0], idx[0] + 1), nd)] += part.sum(axis=axis, keepdims=True)
        else:  # reflect and circular copy distinct pixels (pad < size and pad <= size)
            out[_index(axis, idx, nd)] += part
    return out


def _pad(x: np.ndarray, pads: Pads, mode: str) -> np.ndarray:
    """Pad the last two axes by ``(top, bottom, left, right)``; no checks (callers validated)."""
    return _pad_axis(_pad_axis(x, pads[0], pads[1], mode, x.ndim - 2), pads[2], pads[3], mode, x.ndim - 1)


def _unpad(g: np.ndarray, pads: Pads, mode: str) -> np.ndarray:
    """Adjoint of :func:`_pad`: fold the border gradients back onto the pixels they were copied from."""
    return _unpad_axis(_unpad_axis(g, pads[2], pads[3], mode, g.ndim - 1), pads[0], pads[1], mode, g.ndim - 2)


def _as_pads(padding: Any) -> Pads:
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        if not all(is_int(p) for p in padding):
            msg = f"padding must be an int, a pair or a 4-tuple (top, bottom, left, right) of ints, got {padding!r}"
            raise TypeError(msg)
        if min(padding) < 0:
            msg = f"padding must be >= 0, got {padding!r}"
            raise ValueError(msg)
        return (int(padding[0]), int(padding[1]), int(padding[2]), int(padding[3]))
    ph, pw = int_pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def pad2d(x: np.ndarray, padding: int | tuple[int, ...], mode: str = "zeros") -> np.ndarray:
    """Pad the height and width of an NCHW array.

    Parameters
    ----------
    x
        Array of shape ``(N, C, H, W)``, float32 or float64. Not modified.
    padding
        ``p`` (all four sides), ``(ph, pw)`` (top/bottom and left/right) or ``(top, bottom, left, right)``.
    mode
        ``"zeros"``, ``"reflect"`` (mirror without repeating the edge; padding < size),
        ``"replicate"`` (repeat the edge pixel) or ``"circular"`` (wrap around; padding <= size).

    Returns
    -------
    numpy.ndarray
        Array of shape ``(N, C, top + H + bottom, left + W + right)`` and the dtype of ``x``.
    """
    x = as_nchw(x)
    mode = check_padding_mode(mode)
    pads = _as_pads(padding)
    check_mode_fits(pads, x.shape[2], x.shape[3], mode)
    return _pad(x, pads, mode)


def pad2d_backward(grad_output: np.ndarray, padding: int | tuple[int, ...], mode: str = "zeros") -> np.ndarray:
    """Gradient of :func:`pad2d` with respect to its input (the adjoint of the padding).

    Parameters
    ----------
    grad_output
        Gradient with respect to the padded array, shape ``(N, C, H + top + bottom, W + left + right)``.
    padding, mode
        As given to :func:`pad2d`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the unpadded input, shape ``(N, C, H, W)``.
    """
    g = as_nchw(grad_output, "grad_output")
    mode = check_padding_mode(mode)
    pads = _as_pads(padding)
    height, width = g.shape[2] - pads[0] - pads[1], g.shape[3] - pads[2] - pads[3]
    if height < 1 or width < 1:
        msg = f"grad_output of shape {g.shape} is too small for padding {pads}"
        raise ValueError(msg)
    check_mode_fits(pads, height, width, mode)
    return _unpad(g, pads, mode)
