"""Numba kernels of :mod:`mnnkit.nn` (sliding windows over padded NCHW arrays).

These speak plain, already padded, C-contiguous arrays only; all checks happen in the public
functions before a kernel runs. Outputs are allocated by the caller and passed in, so one kernel
serves float32 and float64.

The convolution kernels read and write the padded image in *phase layout* ``(N, C, Hp, S, M)``:
column ``p + S * m`` of a row is stored at ``[p, m]``, where ``S`` is the horizontal stride (see
``to_phases`` in :mod:`mnnkit.nn._conv`). A kernel tap ``j`` then reads a contiguous run
``[(j * dw) % S, (j * dw) // S + x]`` for output columns ``x``, whatever the stride, so the
innermost loop over the output width is a unit-stride loop that LLVM vectorises. Reductions
accumulate into a row buffer in a fixed order, so results are deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def im2col_kernel(xq, kh, kw, sh, sw, dh, dw, oh, ow, out):
    """Unfold the windows of phase-layout ``xq`` into ``out`` (N, C*kh*kw, oh*ow), rows ordered (c, i, j)."""
    n_img, n_ch = xq.shape[0], xq.shape[1]
    for t in prange(n_img * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(kh):
            for j in range(kw):
                p = (j * dw) % sw
                q = (j * dw) // sw
                dst_rows = out[n, (c * kh + i) * kw + j]
                for y in range(oh):
                    dst = dst_rows[y * ow : (y + 1) * ow]
                    src = xq[n, c, y * sh + i * dh, p, q : q + ow]
                    for x in range(ow):
                        dst[x] = src[x]


@njit(cache=True, parallel=True)
def col2im_kernel(cols, kh, kw, sh, sw, dh, dw, oh, ow, out):
    """Fold ``cols`` (N, C*kh*kw, oh*ow) into zero-initialised phase-layout ``out``, summing overlaps."""
    n_img, n_ch = out.shape[0], out.shape[1]
    for t in prange(n_img * n_ch):
        n = t // n_ch
        c = t % n_ch
        for i in range(kh):
            for j in range(kw):
                p = (j * dw) % sw
                q = (j * dw) // sw
                src_rows = cols[n, (c * kh + i) * kw + j]
                for y in range(oh):
                    src = src_rows[y * ow : (y + 1) * ow]
                    dst = out[n, c, y * sh + i * dh, p, q : q + ow]
                    for x in range(ow):
                        dst[x] += src[x]


@njit(cache=True, parallel=True)
def conv_forward_kernel(xq, w, sh, sw, dh, dw, groups, out):
    """Accumulate the grouped cross-correlation of phase-layout ``xq`` with ``w`` into ``out`` (N, O, OH, OW)."""
    n_img = xq.shape[0]
    n_out, cg, kh, kw = w.shape
    og = n_out // groups
    oh, ow = out.shape[2], out.shape[3]
    for t in prange(n_img * n_out):
        n = t // n_out
        o = t % n_out
        c0 = (o // og) * cg
        for y in range(oh):
            dst = out[n, o, y]
            for c in range(cg):
                for i in range(kh):
                    row = xq[n, c0 + c, y * sh + i * dh]
                    for j in range(kw):
                        wv = w[o, c, i, j]
                        q = (j * dw) // sw
                        src = row[(j * dw) % sw, q : q + ow]
                        for x in range(ow):
                            dst[x] += wv * src[x]


@njit(cache=True, parallel=True)
def conv_grad_input_kernel(gy, w, sh, sw, dh, dw, groups, out):
    """Accumulate the gradient of the padded input into zero-initialised phase-layout ``out``."""
    n_img, n_ch = out.shape[0], out.shape[1]
    n_out, cg, kh, kw = w.shape
    og = n_out // groups
    oh, ow = gy.shape[2], gy.shape[3]
    for t in prange(n_img * n_ch):
        n = t // n_ch
        ch = t % n_ch
        g = ch // cg
        c = ch % cg
        for y in range(oh):
            for i in range(kh):
                row = out[n, ch, y * sh + i * dh]
                for oo in range(og):
                    o = g * og + oo
                    src = gy[n, o, y]
                    for j in range(kw):
                        wv = w[o, c, i, j]
                        q = (j * dw) // sw
                        dst = row[(j * dw) % sw, q : q + ow]
                        for x in range(ow):
                            dst[x] += wv * src[x]


@njit(cache=True, parallel=True)
def conv_grad_weight_kernel(gy, xq, sh, sw, dh, dw, groups, out):
    """Write the weight gradient ``sum_{n,y,x} gy[n,o,y,x] * xp[n, g*cg+c, y*sh+i*dh, x*sw+j*dw]`` to ``out``."""
    n_img = xq.shape[0]
    n_out, cg, kh, kw = out.shape
    og = n_out // groups
    oh, ow = gy.shape[2], gy.shape[3]
    for t in prange(n_out * cg):
        o = t // cg
        c = t % cg
        ch = (o // og) * cg + c
        acc = np.zeros((kh, kw, ow), dtype=out.dtype)
        for n in range(n_img):
            for y in range(oh):
                gyr = gy[n, o, y]
                for i in range(kh):
                    row = xq[n, ch, y * sh + i * dh]
                    for j in range(kw):
                        dst = acc[i, j]
                        q = (j * dw) // sw
                        src = row[(j * dw) % sw, q : q + ow]
                        for x in range(ow):
                            dst[x] += gyr[x] * src[x]
        for i in range(kh):
            for j in range(kw):
                total = acc[i, j, 0]
                for x in range(1, ow):
                    total += acc[i, j, x]
                out[o, c, i, j] = total


@njit(cache=True, parallel=True)
def max_pool_forward_kernel(xp, kh, kw, sh, sw, dh, dw, out, argmax):
    """Write window maxima to ``out`` and their flat positions (row * Wp + col) in ``xp`` to ``argmax``."""
    # a NaN wins (propagates); otherwise the first maximum in row-major window order, as in PyTorch
    n_img, n_ch = xp.shape[0], xp.shape[1]
    wp = xp.shape[3]
    oh, ow = out.shape[2], out.shape[3]
    for t in prange(n_img * n_ch):
        n = t // n_ch
        c = t % n_ch
        for y in range(oh):
            for x in range(ow):
                best = xp[n, c, y * sh, x * sw]
                where = (y * sh) * wp + x * sw
                for i in range(kh):
                    r = y * sh + i * dh
                    for j in range(kw):
                        col = x * sw + j * dw
                        v = xp[n, c, r, col]
                        if v > best or np.isnan(v):
                            best = v
                            where = r * wp + col
                out[n, c, y, x] = best
                argmax[n, c, y, x] = where


@njit(cache=True, parallel=True)
def max_pool_backward_kernel(gy, argmax, out):
    """Route each output gradient to its window's maximum in zero-initialised ``out`` (N, C, Hp, Wp)."""
    n_img, n_ch = out.shape[0], out.shape[1]
    wp = out.shape[3]
    oh, ow = gy.shape[2], gy.shape[3]
    for t in prange(n_img * n_ch):
        n = t // n_ch
        c = t % n_ch
        for y in range(oh):
            for x in range(ow):
                k = argmax[n, c, y, x]
                out[n, c, k // wp, k % wp] += gy[n, c, y, x]
