"""2-D multi-head self-attention with relative position encodings (the core of BoTNet).

Every pixel of an ``H x W`` map attends to every other. The logit of query pixel ``(i, j)`` for
key pixel ``(k, l)`` in one head is ``q_ij . k_kl + q_ij . (r^h_{k-i} + r^w_{l-j})``: content
plus a learned embedding of the relative offset, ``rel_h`` holding the ``2H - 1`` vertical and
``rel_w`` the ``2W - 1`` horizontal offsets (Srinivas et al. 2021, after Bello et al. 2019).
Queries are scaled by ``1 / sqrt(head_dim)``; queries, keys and values are 1x1 convolutions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator
from mnnkit._validation import check_int
from mnnkit.nn._init import init_weight
from mnnkit.nn._module import Module, Parameter
from mnnkit.nn._softmax import _softmax, _softmax_grad
from mnnkit.nn._validation import as_float_array, as_nchw, check_same_dtype, check_shape


def _check(x, w_qkv, rel_h, rel_w, heads):
    x = as_nchw(x, "x")
    n, c, h, w = x.shape
    heads = check_int(heads, "heads", minimum=1)
    if c % heads:
        msg = f"channels ({c}) must be divisible by heads ({heads})"
        raise ValueError(msg)
    d = c // heads
    w_qkv = as_float_array(w_qkv, "w_qkv", ndim=2, layout="(3 * C, C)")
    check_shape(w_qkv, (3 * c, c), "w_qkv")
    rel_h = as_float_array(rel_h, "rel_h", ndim=2, layout="(2 * H - 1, head_dim)")
    check_shape(rel_h, (2 * h - 1, d), "rel_h")
    rel_w = as_float_array(rel_w, "rel_w", ndim=2, layout="(2 * W - 1, head_dim)")
    check_shape(rel_w, (2 * w - 1, d), "rel_w")
    for a, name in ((w_qkv, "w_qkv"), (rel_h, "rel_h"), (rel_w, "rel_w")):
        check_same_dtype(a, x, name, "x")
    return x, w_qkv, rel_h, rel_w, heads


def _offsets(size: int) -> np.ndarray:
    """``[i, k] -> k - i + size - 1``: the row of the relative table for query i and key k."""
    idx = np.arange(size)
    return idx[None, :] - idx[:, None] + size - 1


def _forward_parts(x, w_qkv, rel_h, rel_w, heads):
    n, c, h, w = x.shape
    d, length = c // heads, h * w
    qkv = np.matmul(w_qkv, x.reshape(n, c, length)).reshape(n, 3, heads, d, length)
    scale = x.dtype.type(d**-0.5)
    q = qkv[:, 0].transpose(0, 1, 3, 2) * scale  # (n, heads, L, d), scaled
    k, v = qkv[:, 1], qkv[:, 2]  # (n, heads, d, L)
    table_h, table_w = rel_h[_offsets(h)], rel_w[_offsets(w)]  # (H, H, d), (W, W, d)
    q6 = q.reshape(n, heads, h, w, d)
    logits = np.matmul(q, k).reshape(n, heads, h, w, h, w)
    logits += np.einsum("nyxd,ykd->nyxk", q6.reshape(-1, h, w, d), table_h).reshape(n, heads, h, w, h)[..., None]
    logits += np.einsum("nyxd,xld->nyxl", q6.reshape(-1, h, w, d), table_w).reshape(n, heads, h, w, 1, w)
    attn = _softmax(logits.reshape(n, heads, length, length), 3)
    out = np.matmul(attn, v.transpose(0, 1, 3, 2))  # (n, heads, L, d)
    return qkv, q, k, v, table_h, table_w, attn, out


def mhsa2d(x: np.ndarray, w_qkv: np.ndarray, rel_h: np.ndarray, rel_w: np.ndarray, heads: int) -> np.ndarray:
    """2-D multi-head self-attention with relative position logits.

    Parameters
    ----------
    x
        ``(N, C, H, W)``. Not modified.
    w_qkv
        ``(3 * C, C)``: the 1x1 projections to queries, keys and values (in that order, each split
        into ``heads`` consecutive blocks of ``C / heads`` channels).
    rel_h, rel_w
        ``(2 * H - 1, C / heads)`` and ``(2 * W - 1, C / heads)`` relative position embeddings,
        row ``o + H - 1`` for a vertical offset ``o`` (key row minus query row); shared by the heads.
    heads
        Number of heads (divides ``C``).

    Returns
    -------
    numpy.ndarray
        ``(N, C, H, W)``: per head, the attention-weighted values; heads stacked along channels.
    """
    x, w_qkv, rel_h, rel_w, heads = _check(x, w_qkv, rel_h, rel_w, heads)
    out = _forward_parts(x, w_qkv, rel_h, rel_w, heads)[-1]
    n, c, h, w = x.shape
    return np.ascontiguousarray(out.transpose(0, 1, 3, 2)).reshape(n, c, h, w)


def mhsa2d_backward(
    grad_output: np.ndarray, x: np.ndarray, w_qkv: np.ndarray, rel_h: np.ndarray, rel_w: np.ndarray, heads: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`mhsa2d` with respect to ``x``, ``w_qkv``, ``rel_h`` and ``rel_w``.

    Parameters
    ----------
    grad_output
        ``(N, C, H, W)``.
    x, w_qkv, rel_h, rel_w, heads
        As given to :func:`mhsa2d`.

    Returns
    -------
    tuple of numpy.ndarray
        Gradients shaped like ``x``, ``w_qkv``, ``rel_h`` and ``rel_w``.
    """
    x, w_qkv, rel_h, rel_w, heads = _check(x, w_qkv, rel_h, rel_w, heads)
    g = as_nchw(grad_output, "grad_output")
    check_same_dtype(g, x, "grad_output", "x")
    check_shape(g, x.shape, "grad_output")
    n, c, h, w = x.shape
    d, length = c // heads, h * w
    qkv, q, k, v, table_h, table_w, attn, _ = _forward_parts(x, w_qkv, rel_h, rel_w, heads)
    g_out = g.reshape(n, heads, d, length).transpose(0, 1, 3, 2)  # (n, heads, L, d)
    g_v = np.matmul(g_out.transpose(0, 1, 3, 2), attn)  # (n, heads, d, L)
    g_logits = _softmax_grad(np.matmul(g_out, v), attn, 3)  # (n, heads, L, L)
    g_q = np.matmul(g_logits, k.transpose(0, 1, 3, 2))  # (n, heads, L, d)
    g_k = np.matmul(q.transpose(0, 1, 3, 2), g_logits)  # (n, heads, d, L)
    g6 = g_logits.reshape(-1, h, w, h, w)
    q6 = q.reshape(-1, h, w, d)
    g_rows = g6.sum(axis=4)  # (n * heads, H, W, H): query (y, x), key row k
    g_cols = g6.sum(axis=3)  # (n * heads, H, W, W): query (y, x), key column l
    g_q += (np.einsum("nyxk,ykd->nyxd", g_rows, table_h) + np.einsum("nyxl,xld->nyxd", g_cols, table_w)).reshape(
        n, heads, length, d
    )
    g_rel_h = np.zeros_like(rel_h)
    np.add.at(g_rel_h, _offsets(h), np.einsum("nyxk,nyxd->ykd", g_rows, q6))
    g_rel_w = np.zeros_like(rel_w)
    np.add.at(g_rel_w, _offsets(w), np.einsum("nyxl,nyxd->xld", g_cols, q6))
    g_q *= x.dtype.type(d**-0.5)
    g_qkv = np.stack([g_q.transpose(0, 1, 3, 2), g_k, g_v], axis=1).reshape(n, 3 * c, length)
    x2 = x.reshape(n, c, length)
    g_w = np.matmul(g_qkv, x2.transpose(0, 2, 1)).sum(axis=0)
    g_x = np.matmul(w_qkv.T, g_qkv).reshape(x.shape)
    return g_x, g_w, g_rel_h, g_rel_w


class MultiHeadSelfAttention2d(Module):
    """Layer of :func:`mhsa2d`: 2-D multi-head self-attention over a fixed ``height x width`` map.

    Parameters
    ----------
    channels
        Number of channels ``C`` (in and out).
    heads
        Number of heads (divides ``C``).
    height, width
        Size of the feature maps it will see (the relative position tables depend on it).
    rng
        Randomness of the initial weights (Glorot-uniform projections; position embeddings normal with standard
        deviation ``head_dim ** -0.5``): an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator`
        (used as given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).
    dtype
        float32 (default) or float64.
    """

    def __init__(
        self, channels: int, heads: int, height: int, width: int, rng: RngLike = None, dtype: Any = np.float32
    ):
        channels, heads = check_int(channels, "channels", minimum=1), check_int(heads, "heads", minimum=1)
        if channels % heads:
            msg = f"channels ({channels}) must be divisible by heads ({heads})"
            raise ValueError(msg)
        height, width = check_int(height, "height", minimum=1), check_int(width, "width", minimum=1)
        gen = as_generator(rng)
        d = channels // heads
        self.heads = heads
        self.w_qkv = Parameter(init_weight((3 * channels, channels), "glorot_uniform", gen, dtype))
        self.rel_h = Parameter((gen.standard_normal((2 * height - 1, d)) * d**-0.5).astype(dtype))
        self.rel_w = Parameter((gen.standard_normal((2 * width - 1, d)) * d**-0.5).astype(dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return mhsa2d(x, self.w_qkv.data, self.rel_h.data, self.rel_w.data, self.heads)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, gw, gh, gwid = mhsa2d_backward(
            grad_output, self._cached(), self.w_qkv.data, self.rel_h.data, self.rel_w.data, self.heads
        )
        self.w_qkv.grad += gw
        self.rel_h.grad += gh
        self.rel_w.grad += gwid
        return gx

    def extra_repr(self) -> str:
        """Describe the settings."""
        size = ((self.rel_h.data.shape[0] + 1) // 2, (self.rel_w.data.shape[0] + 1) // 2)
        return f"{self.w_qkv.data.shape[1]}, heads={self.heads}, size={size}"
