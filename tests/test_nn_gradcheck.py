"""Finite-difference checks of every mnnkit.nn backward (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn
from mnnkit.nn import numerical_gradient

RTOL = 1e-6
ATOL = 1e-7


def check(forward, backward_grads, inputs, seed=0):
    """Compare analytic gradients of ``sum(forward(*inputs) * g)`` with central differences.

    ``backward_grads(g, *inputs)`` returns one gradient per input (None to skip one).
    """
    rng = np.random.default_rng(seed)
    out = forward(*inputs)
    g = rng.standard_normal(np.shape(out))
    grads = backward_grads(g, *inputs)
    assert len(grads) == len(inputs)
    for k, (inp, grad) in enumerate(zip(inputs, grads, strict=True)):
        if grad is None:
            continue

        def loss(v, k=k):
            args = list(inputs)
            args[k] = v
            return float(np.sum(forward(*args) * g))

        num = numerical_gradient(loss, inp)
        np.testing.assert_allclose(grad, num, rtol=RTOL, atol=ATOL, err_msg=f"gradient of input {k}")


def test_numerical_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**3), x), 3 * x**2, rtol=1e-8)
    x0 = x.copy()
    numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("method", ["im2col", "direct"])
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "mode"),
    [(1, 1, 1, 1, "zeros"), (2, (1, 2), (2, 1), 2, "reflect"), ((1, 2), "same", 1, 1, "circular")],
)
def test_conv2d_gradients(method, stride, padding, dilation, groups, mode):
    if padding == "same":
        stride = 1
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 6, 5))
    w = rng.standard_normal((4, 4 // groups, 3, 2))
    b = rng.standard_normal(4)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "padding_mode": mode}
    check(
        lambda x, w, b: mnn.conv2d(x, w, b, method=method, **kw),
        lambda g, x, w, b: mnn.conv2d_backward(g, x, w, method=method, **kw),
        [x, w, b],
    )


@pytest.mark.parametrize("method", ["im2col", "direct"])
@pytest.mark.parametrize(("mode", "stride", "output_padding"), [("zeros", 2, 1), ("replicate", (2, 3), (0, 2))])
def test_conv_transpose2d_gradients(method, mode, stride, output_padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(6)
    kw = {"stride": stride, "padding": 1, "output_padding": output_padding, "groups": 2, "padding_mode": mode}
    check(
        lambda x, w, b: mnn.conv_transpose2d(x, w, b, method=method, **kw),
        lambda g, x, w, b: mnn.conv_transpose2d_backward(g, x, w, method=method, **kw),
        [x, w, b],
    )


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_pad2d_and_im2col_gradients(mode):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 4))
    check(lambda x: mnn.pad2d(x, (2, 1, 3, 0), mode), lambda g, x: [mnn.pad2d_backward(g, (2, 1, 3, 0), mode)], [x])
    args = {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1, "dilation": (1, 2), "padding_mode": mode}
    check(lambda x: mnn.im2col(x, **args), lambda g, x: [mnn.col2im(g, (5, 4), **args)], [x])


def test_separable_convolutions_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5))
    wd = rng.standard_normal((6, 1, 3, 3))
    wp = rng.standard_normal((4, 6))
    b = rng.standard_normal(4)
    kw = {"stride": (1, 2), "padding": 1, "padding_mode": "reflect"}
    check(
        lambda x, wd, wp, b: mnn.separable_conv2d(x, wd, wp, b, **kw),
        lambda g, x, wd, wp, b: mnn.separable_conv2d_backward(g, x, wd, wp, **kw),
        [x, wd, wp, b],
    )
    wv = rng.standard_normal((3, 1, 3, 1))
    wh = rng.standard_normal((3, 1, 1, 3))
    kw = {"stride": 2, "padding": "valid", "dilation": (2, 1), "groups": 3}
    check(
        lambda x, wv, wh: mnn.spatially_separable_conv2d(x, wv, wh, **kw),
        lambda g, x, wv, wh: mnn.spatially_separable_conv2d_backward(g, x, wv, wh, **kw)[:3],
        [x, wv, wh],
    )
    check(lambda x: mnn.channel_shuffle(x, 3), lambda g, x: [mnn.channel_shuffle_backward(g, 3)], [x])


@pytest.mark.parametrize("mode", [None, "reflect"])
def test_pooling_gradients(mode):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 6, 5))
    kw = {"kernel_size": 3, "stride": 2, "padding": 1, "padding_mode": mode}
    check(lambda x: mnn.max_pool2d(x, **kw), lambda g, x: [mnn.max_pool2d_backward(g, x, **kw)], [x])
    check(lambda x: mnn.avg_pool2d(x, **kw), lambda g, x: [mnn.avg_pool2d_backward(g, x, **kw)], [x])
    check(mnn.global_avg_pool2d, lambda g, x: [mnn.global_avg_pool2d_backward(g, x)], [x])


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("relu", {}),
        ("leaky_relu", {"negative_slope": 0.1}),
        ("elu", {"alpha": 1.5}),
        ("softplus", {"beta": 0.5}),
        ("sigmoid", {}),
        ("tanh", {}),
    ],
)
def test_activation_gradients(name, kw):
    x = np.random.default_rng(6).standard_normal((3, 4)) * 3
    check(lambda x: getattr(mnn, name)(x, **kw), lambda g, x: [getattr(mnn, f"{name}_backward")(g, x, **kw)], [x])


def test_prelu_batch_norm_lrn_gradients():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 2, 3))
    check(mnn.prelu, mnn.prelu_backward, [x, rng.uniform(0.1, 0.3, 4)])
    check(mnn.prelu, mnn.prelu_backward, [x, np.array([0.2])])
    w, b = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    check(lambda x, w, b: mnn.batch_norm(x, w, b), lambda g, x, w, b: mnn.batch_norm_backward(g, x, w), [x, w, b])
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)

    def bn_eval(x, w, b):
        return mnn.batch_norm(x, w, b, rm, rv, training=False)

    check(bn_eval, lambda g, x, w, b: mnn.batch_norm_backward(g, x, w, rm, rv, training=False), [x, w, b])
    check(
        lambda x: mnn.local_response_norm(x, 3, 0.3, 0.6, 1.5),
        lambda g, x: [mnn.local_response_norm_backward(g, x, 3, 0.3, 0.6, 1.5)],
        [x],
    )


def test_dropout_softmax_family_gradients():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 5))
    mask = mnn.dropout_mask(x.shape, 0.4, rng=3)
    check(lambda x: mnn.dropout(x, 0.4, mask=mask), lambda g, x: [mnn.dropout_backward(g, mask, 0.4)], [x])
    check(lambda x: mnn.softmax(x, 0), lambda g, x: [mnn.softmax_backward(g, x, 0)], [x])
    check(lambda x: mnn.log_softmax(x, 1), lambda g, x: [mnn.log_softmax_backward(g, x, 1)], [x])
    for log in (False, True):
        check(
            lambda s, log=log: mnn.dual_softmax(s, 0.7, log),
            lambda g, s, log=log: [mnn.dual_softmax_backward(g, s, 0.7, log)],
            [x],
        )
    noise = mnn.gumbel_noise(x.shape, rng=4)
    check(
        lambda z: mnn.gumbel_softmax(z, 0.8, noise=noise),
        lambda g, z: [mnn.gumbel_softmax_backward(g, z, noise, 0.8)],
        [x],
    )
    target = np.array([0, 4, 2, 2])
    grad = mnn.cross_entropy_backward(x, target)
    np.testing.assert_allclose(
        grad, numerical_gradient(lambda z: mnn.cross_entropy(z, target), x), rtol=RTOL, atol=ATOL
    )


def test_linear_and_squeeze_excitation_gradients():
    rng = np.random.default_rng(9)
    lin = [rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)]
    check(mnn.linear, lambda g, x, w, b: mnn.linear_backward(g, x, w), lin)
    x = rng.standard_normal((2, 6, 3, 3))
    params = [rng.standard_normal((3, 6)), rng.standard_normal(3), rng.standard_normal((6, 3)), rng.standard_normal(6)]
    check(mnn.squeeze_excitation, mnn.squeeze_excitation_backward, [x, *params])


def test_mhsa2d_gradients():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 4, 2, 3))
    params = [rng.standard_normal((12, 4)) * 0.5, rng.standard_normal((3, 2)), rng.standard_normal((5, 2))]
    check(
        lambda x, w, rh, rw: mnn.mhsa2d(x, w, rh, rw, 2),
        lambda g, x, w, rh, rw: mnn.mhsa2d_backward(g, x, w, rh, rw, 2),
        [x, *params],
    )


def check_module(model, x, seed=11):
    """Finite differences through a module's forward for its input and every parameter."""
    g = np.random.default_rng(seed).standard_normal(model.forward(x).shape)
    model.zero_grad()
    gx = model.backward(g)
    np.testing.assert_allclose(gx, numerical_gradient(lambda v: np.sum(model.forward(v) * g), x), rtol=RTOL, atol=ATOL)
    for name, p in model.named_parameters():
        analytic = p.grad.copy()
        keep = p.data.copy()

        def loss(v, p=p):
            p.data[...] = v
            return float(np.sum(model.forward(x) * g))

        numeric = numerical_gradient(loss, keep)
        p.data[...] = keep
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: mnn.Bottleneck(4, 2, 4, stride=1, rng=0, dtype=np.float64),
        lambda: mnn.Bottleneck(2, 2, 4, stride=2, padding_mode="replicate", rng=1, dtype=np.float64),
        lambda: mnn.BottleneckTransformer(4, 2, 2, 3, heads=2, out_channels=4, rng=2, dtype=np.float64),
        lambda: mnn.InceptionBlock(2, 1, 1, 2, 1, 1, 1, rng=3, dtype=np.float64),
        lambda: mnn.GatedConv2d(2, 2, 3, activation="elu", rng=4, dtype=np.float64),
        lambda: mnn.Sequential(
            mnn.SeparableConv2d(2, 3, 3, padding=1, rng=5, dtype=np.float64),
            mnn.PReLU(3, dtype=np.float64),
            mnn.ConvTranspose2d(3, 2, 2, stride=2, rng=6, dtype=np.float64),
            mnn.SqueezeExcitation(2, 1, rng=7, dtype=np.float64),
        ),
    ],
    ids=["bottleneck", "bottleneck-projection", "botnet", "inception", "gated", "sequential"],
)
def test_module_gradients(make):
    model = make()
    in_channels = {"BottleneckTransformer": 4, "Bottleneck": 4}.get(type(model).__name__, 2)
    if isinstance(model, mnn.Bottleneck) and isinstance(model.shortcut, mnn.Sequential):
        in_channels = 2
    check_module(model, np.random.default_rng(12).standard_normal((2, in_channels, 2, 3)))
