"""Convolution and activation primitives for image-based single-cell data, with forward and backward.

NumPy/Numba building blocks for small networks on cell-painting crops or spatial tiles (NCHW
arrays, float32 or float64), trainable without a deep-learning framework. Every primitive ``f``
has an ``f_backward`` that returns the gradients with respect to its inputs and parameters; the
layer classes (:class:`Conv2d`, :class:`Sequential`, ...) keep parameters and gradients, and the
optimisers (:class:`SGD`, :class:`Adam`) update them.

This module is not imported by ``import mnnkit``; it loads on first access to ``mnnkit.nn``.
"""

from __future__ import annotations

from mnnkit.nn._activations import (
    elu,
    elu_backward,
    leaky_relu,
    leaky_relu_backward,
    prelu,
    prelu_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softplus,
    softplus_backward,
    tanh,
    tanh_backward,
)
from mnnkit.nn._attention import MultiHeadSelfAttention2d, mhsa2d, mhsa2d_backward
from mnnkit.nn._blocks import Bottleneck, BottleneckTransformer, GatedConv2d, InceptionBlock
from mnnkit.nn._conv import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from mnnkit.nn._dropout import dropout, dropout_backward, dropout_mask
from mnnkit.nn._gradcheck import numerical_gradient
from mnnkit.nn._im2col import col2im, im2col
from mnnkit.nn._init import glorot_normal, glorot_uniform, he_normal, he_uniform
from mnnkit.nn._layers import (
    ELU,
    AvgPool2d,
    BatchNorm2d,
    ChannelShuffle,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Identity,
    LeakyReLU,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    PReLU,
    ReLU,
    SeparableConv2d,
    Sequential,
    Sigmoid,
    Softplus,
    SpatiallySeparableConv2d,
    SqueezeExcitation,
    Tanh,
)
from mnnkit.nn._linear import linear, linear_backward
from mnnkit.nn._loss import cross_entropy, cross_entropy_backward
from mnnkit.nn._module import Module, Parameter
from mnnkit.nn._norm import batch_norm, batch_norm_backward, local_response_norm, local_response_norm_backward
from mnnkit.nn._optim import SGD, Adam, Optimizer
from mnnkit.nn._padding import pad2d, pad2d_backward
from mnnkit.nn._pool import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from mnnkit.nn._receptive_field import ReceptiveField, receptive_field
from mnnkit.nn._separable import (
    SeparableFactors,
    depthwise_conv2d,
    depthwise_conv2d_backward,
    pointwise_conv2d,
    pointwise_conv2d_backward,
    separable_conv2d,
    separable_conv2d_backward,
    separable_factors,
    spatially_separable_conv2d,
    spatially_separable_conv2d_backward,
)
from mnnkit.nn._shuffle import channel_shuffle, channel_shuffle_backward
from mnnkit.nn._softmax import (
    dual_softmax,
    dual_softmax_backward,
    gumbel_noise,
    gumbel_softmax,
    gumbel_softmax_backward,
    log_softmax,
    log_softmax_backward,
    softmax,
    softmax_backward,
)
from mnnkit.nn._squeeze_excitation import squeeze_excitation, squeeze_excitation_backward

__all__ = [
    "Adam",
    "AvgPool2d",
    "BatchNorm2d",
    "Bottleneck",
    "BottleneckTransformer",
    "ChannelShuffle",
    "Conv2d",
    "ConvTranspose2d",
    "Dropout",
    "ELU",
    "Flatten",
    "GatedConv2d",
    "GlobalAvgPool2d",
    "Identity",
    "InceptionBlock",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MaxPool2d",
    "Module",
    "MultiHeadSelfAttention2d",
    "Optimizer",
    "PReLU",
    "Parameter",
    "ReLU",
    "ReceptiveField",
    "SGD",
    "SeparableConv2d",
    "SeparableFactors",
    "Sequential",
    "Sigmoid",
    "Softplus",
    "SpatiallySeparableConv2d",
    "SqueezeExcitation",
    "Tanh",
    "avg_pool2d",
    "avg_pool2d_backward",
    "batch_norm",
    "batch_norm_backward",
    "channel_shuffle",
    "channel_shuffle_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "depthwise_conv2d",
    "depthwise_conv2d_backward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "dual_softmax",
    "dual_softmax_backward",
    "elu",
    "elu_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "glorot_normal",
    "glorot_uniform",
    "gumbel_noise",
    "gumbel_softmax",
    "gumbel_softmax_backward",
    "he_normal",
    "he_uniform",
    "im2col",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "local_response_norm",
    "local_response_norm_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "mhsa2d",
    "mhsa2d_backward",
    "numerical_gradient",
    "pad2d",
    "pad2d_backward",
    "pointwise_conv2d",
    "pointwise_conv2d_backward",
    "prelu",
    "prelu_backward",
    "receptive_field",
    "relu",
    "relu_backward",
    "separable_conv2d",
    "separable_conv2d_backward",
    "separable_factors",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "softplus",
    "softplus_backward",
    "spatially_separable_conv2d",
    "spatially_separable_conv2d_backward",
    "squeeze_excitation",
    "squeeze_excitation_backward",
    "tanh",
    "tanh_backward",
]
