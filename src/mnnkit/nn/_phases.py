"""Phase layout of image rows for strided sliding windows (see :mod:`mnnkit.nn._kernels`).

``to_phases(x, s)`` stores column ``p + s * m`` of every row at ``[..., p, m]``, so that the
columns a strided window tap touches are contiguous; ``from_phases`` is its inverse (and, since
the map only moves values, also its adjoint).
"""

from __future__ import annotations

import numpy as np


def to_phases(x: np.ndarray, stride: int) -> np.ndarray:
    """Return ``x`` (N, C, H, W) as a C-contiguous ``(N, C, H, stride, ceil(W / stride))`` array."""
    n, c, h, w = x.shape
    if stride == 1:
        return np.ascontiguousarray(x).reshape(n, c, h, 1, w)
    m = -(-w // stride)
    out = np.zeros((n, c, h, stride, m), dtype=x.dtype)
    for p in range(min(stride, w)):
        cols = x[..., p::stride]
        out[..., p, : cols.shape[-1]] = cols
    return out


def zeros_phases(shape: tuple[int, ...], stride: int, dtype: np.dtype) -> np.ndarray:
    """Return a zero array in the phase layout of an ``(N, C, H, W)`` array."""
    n, c, h, w = shape
    return np.zeros((n, c, h, stride, -(-w // stride)), dtype=dtype)


def from_phases(xq: np.ndarray, width: int) -> np.ndarray:
    """Return the ``(N, C, H, width)`` array stored in phase layout ``xq``."""
    n, c, h, stride, m = xq.shape
    if stride == 1:
        return xq.reshape(n, c, h, m)
    out = np.empty((n, c, h, width), dtype=xq.dtype)
    for p in range(min(stride, width)):
        cols = out[..., p::stride]
        cols[...] = xq[..., p, : cols.shape[-1]]
    return out
