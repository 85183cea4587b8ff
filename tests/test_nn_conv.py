"""mnnkit.nn convolutions against PyTorch (the test-only oracle), forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn
from tests.conftest import close

torch = pytest.importorskip("torch", reason="torch is the test oracle for mnnkit.nn (pip install torch, CPU build)")
F = torch.nn.functional
torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

DTYPES = [np.float32, np.float64]
METHODS = ["im2col", "direct"]
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def t(a, grad=True):
    return torch.tensor(a, requires_grad=grad)


def torch_conv(x, w, b, stride, padding, dilation, groups, mode):
    """PyTorch's conv2d, through nn.Conv2d for the padding modes other than zeros."""
    if mode == "zeros":
        return F.conv2d(x, w, b, stride, padding, dilation, groups)
    conv = torch.nn.Conv2d(
        w.shape[1] * groups, w.shape[0], w.shape[2:], stride, padding, dilation, groups, b is not None, mode
    )
    return conv._conv_forward(x, w, b)


# each parameter value appears in at least one case; odd image sizes throughout
CONV_CASES = [
    # (x shape, weight shape, stride, padding, dilation, groups, mode)
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1, 1, 1, "zeros"),
    ((1, 4, 11, 6), (6, 2, 3, 2), 2, (2, 1), 1, 2, "zeros"),
    ((2, 6, 9, 10), (6, 2, 2, 3), 1, "same", (2, 1), 3, "reflect"),
    ((1, 3, 10, 9), (3, 1, 3, 3), 3, "valid", 2, 3, "zeros"),
    ((2, 4, 8, 7), (8, 1, 3, 3), 1, "same", (1, 3), 4, "replicate"),
    ((1, 2, 9, 9), (5, 2, 5, 4), 2, 2, 1, 1, "circular"),
    ((2, 5, 6, 7), (3, 5, 1, 1), 1, 0, 1, 1, "zeros"),
    ((1, 4, 9, 8), (4, 4, 3, 3), (1, 2), (1, 2), (2, 1), 1, "reflect"),
    ((2, 3, 5, 6), (2, 3, 3, 3), 2, 1, 2, 1, "circular"),
    ((1, 6, 7, 7), (6, 3, 4, 4), 1, "same", 1, 2, "zeros"),
    ((2, 2, 6, 5), (4, 1, 2, 2), 2, 1, 1, 2, "replicate"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(CONV_CASES)))
def test_conv2d_matches_torch(index, dtype, method):
    xs, ws, stride, padding, dilation, groups, mode = CONV_CASES[index]
    rng = np.random.default_rng(index)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    x0 = x.copy()
    y = mnn.conv2d(x, w, b, stride, padding, dilation, groups, mode, method)
    tx, tw, tb = t(x), t(w), t(b)
    ty = torch_conv(tx, tw, tb, stride, padding, dilation, groups, mode)
    close(y, ty, dtype, "forward")
    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gw, gb = mnn.conv2d_backward(gy, x, w, stride, padding, dilation, groups, mode, method)
    close(gx, tx.grad, dtype, "grad input")
    close(gw, tw.grad, dtype, "grad weight")
    close(gb, tb.grad, dtype, "grad bias")
    np.testing.assert_array_equal(x, x0)  # the caller's data is not modified


def torch_conv_transpose(x, w, b, stride, padding, output_padding, dilation, groups, mode, out_hw):
    """PyTorch's conv_transpose2d for zeros; for other modes the input-vjp of the padded conv2d."""
    if mode == "zeros":
        return F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
    z = torch.zeros((x.shape[0], w.shape[1] * groups, *out_hw), dtype=x.dtype, requires_grad=True)
    y = torch_conv(z, w, None, stride, padding, dilation, groups, mode)
    (out,) = torch.autograd.grad(y, z, grad_outputs=x, create_graph=True)
    return out + b[:, None, None]


TRANSPOSE_CASES = [
    # (x shape, weight shape, stride, padding, output_padding, dilation, groups, mode)
    ((2, 4, 5, 4), (4, 3, 3, 3), 2, 1, 1, 1, 1, "zeros"),
    ((1, 6, 4, 5), (6, 2, 3, 2), 3, 0, 2, 2, 3, "zeros"),
    ((2, 4, 3, 4), (4, 1, 4, 3), (2, 1), (1, 0), (1, 0), (1, 2), 4, "zeros"),
    ((1, 2, 5, 5), (2, 3, 3, 3), 1, 1, 0, 1, 1, "reflect"),
    ((2, 4, 4, 3), (4, 2, 3, 3), 2, 1, 1, 1, 2, "replicate"),
    ((1, 3, 4, 4), (3, 2, 2, 3), 2, (0, 1), 0, 1, 1, "circular"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", range(len(TRANSPOSE_CASES)))
def test_conv_transpose2d_matches_torch(index, dtype, method):
    xs, ws, stride, padding, output_padding, dilation, groups, mode = TRANSPOSE_CASES[index]
    rng = np.random.default_rng(100 + index)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * groups).astype(dtype)
    y = mnn.conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups, mode, method)
    tx, tw, tb = t(x), t(w), t(b)
    ty = torch_conv_transpose(tx, tw, tb, stride, padding, output_padding, dilation, groups, mode, y.shape[2:])
    close(y, ty, dtype, "forward")
    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gw, gb = mnn.conv_transpose2d_backward(
        gy, x, w, stride, padding, output_padding, dilation, groups, mode, method
    )
    close(gx, tx.grad, dtype, "grad input")
    close(gw, tw.grad, dtype, "grad weight")
    close(gb, tb.grad, dtype, "grad bias")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "mode"),
    [
        (3, 1, 1, 1, "zeros"),
        ((2, 3), (2, 1), (1, 2), (1, 2), "zeros"),
        (3, 2, 2, 1, "reflect"),
        (2, 3, 1, 2, "circular"),
    ],
)
def test_im2col_col2im_match_unfold_fold(dtype, kernel, stride, padding, dilation, mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8)).astype(dtype)
    cols = mnn.im2col(x, kernel, stride, padding, dilation, mode)
    tx = t(x)
    pads = padding if isinstance(padding, tuple) else (padding, padding)
    if mode == "zeros":
        tc = F.unfold(tx, kernel, dilation, padding, stride)
    else:
        tp = F.pad(tx, (pads[1], pads[1], pads[0], pads[0]), mode=TORCH_MODE[mode])
        tc = F.unfold(tp, kernel, dilation, 0, stride)
    close(cols, tc, dtype, "im2col")
    g = rng.standard_normal(cols.shape).astype(dtype)
    tc.backward(torch.tensor(g))
    close(mnn.col2im(g, (7, 8), kernel, stride, padding, dilation, mode), tx.grad, dtype, "col2im")
    if mode == "zeros":
        close(
            mnn.col2im(g, (7, 8), kernel, stride, padding, dilation),
            F.fold(torch.tensor(g), (7, 8), kernel, dilation, padding, stride),
            dtype,
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 0), (0, 3, 1, 2), (3, 4, 5, 2)])
def test_pad2d_matches_torch(dtype, mode, padding):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 6)).astype(dtype)
    if isinstance(padding, int):
        top = bottom = left = right = padding
    elif len(padding) == 2:
        top = bottom = padding[0]
        left = right = padding[1]
    else:
        top, bottom, left, right = padding
    y = mnn.pad2d(x, padding, mode)
    tx = t(x)
    ty = F.pad(tx, (left, right, top, bottom), mode=TORCH_MODE[mode])
    close(y, ty, dtype)
    g = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(g))
    close(mnn.pad2d_backward(g, padding, mode), tx.grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depthwise_pointwise_separable_match_torch(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 7)).astype(dtype)
    wd = rng.standard_normal((6, 1, 3, 3)).astype(dtype)  # channel multiplier 2
    wp = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    tx, twd, twp, tb = t(x), t(wd), t(wp), t(b)
    ty = F.conv2d(F.conv2d(tx, twd, None, 2, 1, 1, 3), twp[:, :, None, None], tb)
    y = mnn.separable_conv2d(x, wd, wp, b, stride=2, padding=1)
    close(y, ty, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    gx, gwd, gwp, gb = mnn.separable_conv2d_backward(gy, x, wd, wp, stride=2, padding=1)
    for ours, theirs in ((gx, tx.grad), (gwd, twd.grad), (gwp, twp.grad), (gb, tb.grad)):
        close(ours, theirs, dtype)
    # the stages on their own
    tdw = F.conv2d(t(x, False), t(wd, False), None, 1, "same", 1, 3)
    close(mnn.depthwise_conv2d(x, wd, padding="same"), tdw, dtype)
    gyd = rng.standard_normal(tdw.shape).astype(dtype)
    txd, twd2 = t(x), t(wd)
    F.conv2d(txd, twd2, None, 1, "same", 1, 3).backward(torch.tensor(gyd))
    gxd, gwd2, _ = mnn.depthwise_conv2d_backward(gyd, x, wd, padding="same")
    close(gxd, txd.grad, dtype)
    close(gwd2, twd2.grad, dtype)
    txp, twp4 = t(x), t(wp[:, :3, None, None].copy())
    typ = F.conv2d(txp, twp4)
    close(mnn.pointwise_conv2d(x, wp[:, :3].copy()), typ, dtype)
    gyp = rng.standard_normal(typ.shape).astype(dtype)
    typ.backward(torch.tensor(gyp))
    gxp, gwp2, _ = mnn.pointwise_conv2d_backward(gyp, x, wp[:, :3].copy())
    assert gwp2.shape == (5, 3)
    close(gxp, txp.grad, dtype)
    close(gwp2, twp4.grad[:, :, 0, 0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_spatially_separable_matches_torch(dtype, mode):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
    wv = rng.standard_normal((6, 2, 3, 1)).astype(dtype)
    wh = rng.standard_normal((4, 3, 1, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    tx, twv, twh, tb = t(x), t(wv), t(wh), t(b)
    mid = torch_conv(tx, twv, None, (2, 1), (1, 0), (1, 1), 2, mode)
    ty = torch_conv(mid, twh, tb, (1, 2), (0, 2), (1, 2), 2, mode)
    kw = {"stride": 2, "padding": (1, 2), "dilation": (1, 2), "groups": 2, "padding_mode": mode}
    y = mnn.spatially_separable_conv2d(x, wv, wh, b, **kw)
    close(y, ty, dtype)
    gy = rng.standard_normal(y.shape).astype(dtype)
    ty.backward(torch.tensor(gy))
    grads = mnn.spatially_separable_conv2d_backward(gy, x, wv, wh, **kw)
    for ours, theirs in zip(grads, (tx.grad, twv.grad, twh.grad, tb.grad), strict=True):
        close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_shuffle_matches_torch(dtype):
    x = np.arange(2 * 6 * 2 * 3, dtype=dtype).reshape(2, 6, 2, 3)
    close(mnn.channel_shuffle(x, 3), F.channel_shuffle(torch.tensor(x), 3), dtype)
    tx = t(x)
    g = np.random.default_rng(7).standard_normal(x.shape).astype(dtype)
    F.channel_shuffle(tx, 2).backward(torch.tensor(g))
    close(mnn.channel_shuffle_backward(g, 2), tx.grad, dtype)
