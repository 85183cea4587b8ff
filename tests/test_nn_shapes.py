"""Shape arithmetic against hand-worked cases, separable factorisation and seeded determinism (no torch)."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "output_padding", "dilation", "expected"),
    [
        # (in - 1) * stride - 2 * pad + dilation * (k - 1) + output_padding + 1, worked by hand
        (4, 3, 1, 0, 0, 1, 6),  # 3 + 0 + 2 + 0 + 1
        (4, 3, 2, 1, 1, 1, 8),  # 6 - 2 + 2 + 1 + 1: doubles the size
        (5, 4, 2, 1, 0, 1, 10),  # 8 - 2 + 3 + 0 + 1
        (3, 3, 3, 0, 2, 2, 13),  # 6 + 4 + 2 + 1
        (1, 1, 1, 0, 0, 1, 1),
        (7, 5, 1, 2, 0, 1, 7),  # 'same'-like
    ],
)
def test_conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation, expected):
    x = np.ones((1, 1, size, size + 1))
    w = np.ones((1, 2, kernel, kernel))
    y = mnn.conv_transpose2d(x, w, None, stride, padding, output_padding, dilation)
    assert y.shape == (1, 2, expected, expected + stride)
    # a strided conv2d of that output size maps back to the input size
    back = mnn.conv2d(y, w, None, stride, padding, dilation)
    assert back.shape[2:] == (size, size + 1)


def test_conv_transpose_is_the_adjoint_of_conv():
    rng = np.random.default_rng(0)
    for mode in ("zeros", "reflect", "replicate", "circular"):
        w = rng.standard_normal((3, 2, 3, 2))
        z = rng.standard_normal((2, 2, 7, 6))  # conv2d input
        kw = {"stride": 2, "padding": 1, "dilation": (1, 2), "padding_mode": mode}
        y = mnn.conv2d(z, w, **kw)
        x = rng.standard_normal(y.shape)  # conv_transpose2d input
        zt = mnn.conv_transpose2d(x, w, output_padding=(0, 1), **kw)
        assert zt.shape == z.shape
        assert np.isclose(np.sum(y * x), np.sum(z * zt), rtol=1e-12)  # <Az, x> == <z, A^T x>


@pytest.mark.parametrize(
    ("layers", "sizes", "jumps"),
    [
        ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], [3, 7, 15], [1, 1, 1]),  # dilated stack: 1 + 2 + 4 + 8
        ([(3, 1, 1)] * 3, [3, 5, 7], [1, 1, 1]),  # three 3x3 = one 7x7 (VGG)
        ([(7, 2, 1, 3), (3, 2, 1, 1), (3, 1, 1, 1)], [7, 11, 19], [2, 4, 4]),  # ResNet stem: conv7/2, pool3/2, conv3
        ([(2, 2), (2, 2), (2, 2)], [2, 4, 8], [2, 4, 8]),
        ([(5, 1, 3), (1, 1, 1)], [13, 13], [1, 1]),
    ],
)
def test_receptive_field_hand_worked(layers, sizes, jumps):
    fields = mnn.receptive_field(layers)
    assert [f.size for f in fields] == [(s, s) for s in sizes]
    assert [f.jump for f in fields] == [(j, j) for j in jumps]


def test_receptive_field_start_and_layer_formats():
    # a 3x3 'valid' conv: first output centred on input pixel 1; padding 1 centres it on pixel 0
    assert mnn.receptive_field([(3,)])[0].start == (1.0, 1.0)
    assert mnn.receptive_field([{"kernel_size": 3, "padding": 1}])[0].start == (0.0, 0.0)
    # stride 2 conv then a 3x3: field 3 + 2 * 2 = 7 rows, kernel (1, 3) keeps 3 + 0 columns
    fields = mnn.receptive_field([{"kernel_size": 3, "stride": 2}, {"kernel_size": (3, 1), "padding": "same"}])
    assert fields[-1].size == (7, 3)
    assert fields[-1].start == (1.0, 1.0)
    with pytest.raises(ValueError, match="kernel_size"):
        mnn.receptive_field([{"stride": 2}])
    with pytest.raises(TypeError, match="expected a"):
        mnn.receptive_field([3])


def test_receptive_field_is_the_support_of_the_gradient():
    # independent check: the pixels whose perturbation changes the centre output of a dilated stack
    x = np.zeros((1, 1, 33, 33))
    w = np.ones((1, 1, 3, 3))
    g = np.zeros((1, 1, 33, 33))
    g[0, 0, 16, 16] = 1.0
    grads = [g]
    for d in (4, 2, 1):  # backward through the stack dilation 1, 2, 4, last layer first
        grads.append(mnn.conv2d_backward(grads[-1], x, w, padding="same", dilation=d)[0])
    rows = np.flatnonzero(grads[-1][0, 0].any(axis=1))
    assert rows.max() - rows.min() + 1 == mnn.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])[-1].size[0] == 15


def test_separable_factors_rank_one_and_error():
    sobel = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    v, h, err = mnn.separable_factors(sobel)
    np.testing.assert_allclose(v @ h, sobel, atol=1e-12)
    assert v.shape == (3, 1) and h.shape == (1, 3)
    assert err < 1e-12
    # a kernel of rank 2 (singular values 3 and 1): relative error sqrt(1 / (9 + 1))
    k = np.diag([3.0, 1.0, 0.0])
    assert np.isclose(mnn.separable_factors(k).error, np.sqrt(0.1))
    # a stack of depthwise kernels, then the two 1-D convolutions equal the 2-D one
    rng = np.random.default_rng(1)
    w = np.einsum("ci,cj->cij", rng.standard_normal((3, 5)), rng.standard_normal((3, 3)))[:, None]
    fac = mnn.separable_factors(w)
    assert fac.vertical.shape == (3, 1, 5, 1) and fac.horizontal.shape == (3, 1, 1, 3)
    np.testing.assert_allclose(fac.error, 0, atol=1e-12)
    x = rng.standard_normal((2, 3, 9, 8))
    for mode in ("zeros", "reflect", "replicate", "circular"):
        kw = {"stride": (2, 1), "padding": (2, 1), "padding_mode": mode}
        full = mnn.conv2d(x, w, groups=3, **kw)
        sep = mnn.spatially_separable_conv2d(x, fac.vertical, fac.horizontal, groups=3, **kw)
        np.testing.assert_allclose(sep, full, atol=1e-12)


def test_seeded_randomness_is_reproducible():
    x = np.random.default_rng(0).standard_normal((20, 30)).astype(np.float32)
    a = mnn.dropout(x, 0.5, rng=3)
    np.testing.assert_array_equal(a, mnn.dropout(x, 0.5, rng=3))
    np.testing.assert_array_equal(a, mnn.dropout(x, 0.5, rng=np.random.default_rng(3)))
    assert not np.array_equal(a, mnn.dropout(x, 0.5, rng=4))
    np.testing.assert_array_equal(mnn.gumbel_softmax(x, rng=5, hard=True), mnn.gumbel_softmax(x, rng=5, hard=True))
    np.testing.assert_array_equal(mnn.gumbel_noise((3, 4), rng=6), mnn.gumbel_noise((3, 4), rng=6))


def test_dropout_statistics_and_modes():
    x = np.ones((200, 500))
    y, mask = mnn.dropout(x, 0.25, rng=0, return_mask=True)
    assert abs(1 - mask.mean() - 0.25) < 0.01  # drop rate
    assert abs(y.mean() - 1) < 0.02  # inverted scaling keeps the mean
    np.testing.assert_array_equal(mnn.dropout(x, 0.25, training=False), x)
    assert np.all(mnn.dropout(x, 1.0, rng=0) == 0)
    np.testing.assert_array_equal(mnn.dropout(x, 0.0, rng=0), x)


def test_gumbel_softmax_hard_is_one_hot_and_matches_categorical():
    logits = np.log(np.array([[0.1, 0.6, 0.3]]))
    rng = np.random.default_rng(0)
    draws = np.concatenate([mnn.gumbel_softmax(np.repeat(logits, 4000, 0), hard=True, rng=rng) for _ in range(2)])
    assert set(np.unique(draws)) == {0.0, 1.0}
    np.testing.assert_array_equal(draws.sum(axis=1), 1)
    np.testing.assert_allclose(draws.mean(axis=0), [0.1, 0.6, 0.3], atol=0.015)  # Gumbel-max trick


def test_dual_softmax_rows_sum_to_one_and_damp_popular_columns():
    sim = np.array([[0.9, 0.8], [0.1, 0.85]])
    out = mnn.dual_softmax(sim, temperature=0.1)
    np.testing.assert_allclose(out.sum(axis=1), 1)
    # column 1 is liked by both rows, so row 0 moves towards its exclusive match, column 0
    assert out[0, 0] > mnn.softmax(sim, axis=1)[0, 0]


@pytest.mark.parametrize("method", ["im2col", "direct"])
def test_chunked_engines_match_one_chunk(monkeypatch, method):
    from mnnkit.nn import _conv

    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    kw = {"stride": (2, 1), "padding": 1, "groups": 2, "padding_mode": "reflect", "method": method}
    wt = rng.standard_normal((4, 3, 3, 3))
    kt = {"stride": 2, "padding": 1, "output_padding": 1, "method": method}
    gy = rng.standard_normal(mnn.conv2d(x, w, **kw).shape)
    gt = rng.standard_normal(mnn.conv_transpose2d(x, wt, **kt).shape)

    def everything():
        return [
            mnn.conv2d(x, w, **kw),
            *mnn.conv2d_backward(gy, x, w, **kw),
            mnn.conv_transpose2d(x, wt, **kt),
            *mnn.conv_transpose2d_backward(gt, x, wt, **kt),
        ]

    whole = everything()
    monkeypatch.setattr(_conv, "NN_CONV_CHUNK_BYTES", 1)  # one image per chunk
    assert len(_conv._chunks(5, 100)) == 5
    for a, b in zip(everything(), whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_small_kernels_run_single_threaded():
    import numba

    from mnnkit._config import NN_PARALLEL_MIN_WORK
    from mnnkit.nn._threads import run_kernel

    seen = []
    before = numba.get_num_threads()
    run_kernel(lambda: seen.append(numba.get_num_threads()), 10)
    run_kernel(lambda: seen.append(numba.get_num_threads()), NN_PARALLEL_MIN_WORK)
    assert seen == [1, before]
    assert numba.get_num_threads() == before
