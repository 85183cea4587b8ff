"""Bad input to mnnkit.nn fails early with a clear message (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.nn as mnn

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 6, 6))
W = RNG.standard_normal((4, 4, 3, 3))


def test_wrong_number_of_dimensions_names_the_layout():
    with pytest.raises(
        ValueError, match=r"x must be a 4-D array of shape \(N, C, H, W\) \(NCHW layout.*3-D.*x\[None\]"
    ):
        mnn.conv2d(X[0], W)
    with pytest.raises(ValueError, match=r"weight must be a 4-D array of shape \(out_channels, in_channels / groups"):
        mnn.conv2d(X, W[0])
    with pytest.raises(ValueError, match="NCHW"):
        mnn.pad2d(np.zeros((3, 3)), 1)


def test_dtype_and_type_errors():
    with pytest.raises(TypeError, match="x must be a float32 or float64 array, got dtype int64"):
        mnn.conv2d(X.astype(np.int64), W)
    with pytest.raises(TypeError, match="weight has dtype float32 but x has dtype float64"):
        mnn.conv2d(X, W.astype(np.float32))
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints"):
        mnn.conv2d(X, W, stride=1.5)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"in_channels \(x.shape\[1\]\) \(4\) must be divisible by groups \(3\)"):
        mnn.conv2d(X, W[:3, :1], groups=3)
    with pytest.raises(ValueError, match=r"out_channels \(weight.shape\[0\]\) \(3\) must be divisible by groups \(2\)"):
        mnn.conv2d(X, W[:3, :2], groups=2)
    with pytest.raises(ValueError, match=r"weight.shape\[1\] \(4\) must equal in_channels / groups"):
        mnn.conv2d(X, W, groups=2)
    with pytest.raises(ValueError, match=r"channels \(4\) must be divisible by groups \(3\)"):
        mnn.channel_shuffle(X, 3)


def test_kernel_larger_than_padded_input():
    with pytest.raises(
        ValueError, match=r"kernel height 9 is larger than the padded input height \(8 = 6 \+ padding\)"
    ):
        mnn.conv2d(X, RNG.standard_normal((4, 4, 9, 3)), padding=1)
    with pytest.raises(ValueError, match="with dilation 4 spans 9 pixels and is larger than the padded input width"):
        mnn.conv2d(X, W, dilation=(1, 4))


@pytest.mark.parametrize("stride", [0, -1, (1, 0)])
def test_stride_must_be_positive(stride):
    with pytest.raises(ValueError, match="stride must be positive"):
        mnn.conv2d(X, W, stride=stride)
    with pytest.raises(ValueError, match="stride must be positive"):
        mnn.conv_transpose2d(X, W, stride=stride)


def test_output_padding_must_be_smaller_than_stride():
    with pytest.raises(ValueError, match=r"output_padding \(2\) must be smaller than stride \(2\) along the height"):
        mnn.conv_transpose2d(X, W, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding \(1\) must be smaller than stride \(1\) along the width"):
        mnn.conv_transpose2d(X, W, stride=(2, 1), output_padding=(0, 1))
    with pytest.raises(ValueError, match="output_padding must be >= 0"):
        mnn.conv_transpose2d(X, W, stride=2, output_padding=-1)


def test_unknown_padding_string_and_mode():
    with pytest.raises(
        ValueError, match="padding must be an int, a pair of ints, 'same' or 'valid'; got unknown string 'full'"
    ):
        mnn.conv2d(X, W, padding="full")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        mnn.conv2d(X, W, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        mnn.conv2d(X, W, padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding_mode='reflect' needs padding smaller than the input height"):
        mnn.conv2d(X, W, padding=6, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding of conv_transpose2d must be an int, a pair of ints or 'valid'"):
        mnn.conv_transpose2d(X, W, padding="same")
    with pytest.raises(ValueError, match="method must be one of"):
        mnn.conv2d(X, W, method="fft")


def test_shape_mismatches():
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        mnn.conv2d(X, W, np.zeros(3))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 4, 4, 4\)"):
        mnn.conv2d_backward(np.zeros((2, 4, 6, 6)), X, W)
    with pytest.raises(ValueError, match=r"weight.shape\[0\] \(3\) must equal in_channels"):
        mnn.conv_transpose2d(X, W[:3])
    with pytest.raises(ValueError, match="depthwise weight must have shape"):
        mnn.depthwise_conv2d(X, W)
    with pytest.raises(ValueError, match="pointwise weight must have shape"):
        mnn.pointwise_conv2d(X, W)
    with pytest.raises(ValueError, match="cols of shape"):
        mnn.col2im(np.zeros((1, 9, 10)), (6, 6), 3)


def test_batch_norm_rejects_nan_and_bad_statistics():
    x = RNG.standard_normal((4, 3, 2, 2))
    x[1, 2, 0, 1] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN and 0 infinite values; batch_norm needs finite input"):
        mnn.batch_norm(x)
    with pytest.raises(ValueError, match="NaN"):
        mnn.batch_norm_backward(np.ones_like(x), x)
    with pytest.raises(ValueError, match="evaluation mode .* needs running_mean and running_var"):
        mnn.batch_norm(X, training=False)
    with pytest.raises(ValueError, match="more than one value per channel"):
        mnn.batch_norm(X[:1, :, :1, :1])
    with pytest.raises(ValueError, match=r"running_mean must have shape \(4,\)"):
        mnn.batch_norm(X, running_mean=np.zeros(3), running_var=np.ones(3))
    with pytest.raises(ValueError, match="momentum must be in"):
        mnn.batch_norm(X, momentum=2)


def test_other_primitives_reject_bad_arguments():
    with pytest.raises(ValueError, match="dropout probability p must be in"):
        mnn.dropout(X, 1.5)
    with pytest.raises(TypeError, match="rng must be an int seed, a numpy.random.Generator or None"):
        mnn.dropout(X, 0.5, rng="seed")
    with pytest.raises(ValueError, match="axis must be an int"):
        mnn.softmax(X, axis=4)
    with pytest.raises(ValueError, match="tau must be positive"):
        mnn.gumbel_softmax(X, tau=0)
    with pytest.raises(ValueError, match=r"sim must be a 2-D array of shape \(n_rows, n_cols\)"):
        mnn.dual_softmax(X)
    with pytest.raises(ValueError, match=r"weight must have shape \(1,\) \(shared slope\) or \(4,\)"):
        mnn.prelu(X, np.ones(3))
    with pytest.raises(ValueError, match="padding .* must be at most half the kernel"):
        mnn.max_pool2d(X, 2, padding=2)
    with pytest.raises(ValueError, match="kernel height 7 is larger than the padded input"):
        mnn.max_pool2d(X, 7)
    with pytest.raises(ValueError, match=r"target must be an integer array of shape \(2,\)"):
        mnn.cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"weight.shape\[1\] \(3\) must equal in_features"):
        mnn.linear(np.zeros((2, 4)), np.zeros((5, 3)))
