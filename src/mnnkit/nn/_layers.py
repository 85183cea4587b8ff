"""Layer classes: thin stateful wrappers of the functional primitives.

Each layer keeps its parameters (:class:`~mnnkit.nn.Parameter`, initialised from ``rng``, a seed
or Generator) and caches its input in ``forward`` for ``backward``. Weights default to float32;
pass ``dtype=np.float64`` for double precision (the input must match).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator
from mnnkit._validation import check_int
from mnnkit.nn import _activations as act
from mnnkit.nn._conv import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from mnnkit.nn._dropout import dropout, dropout_backward
from mnnkit.nn._init import init_weight
from mnnkit.nn._linear import linear, linear_backward
from mnnkit.nn._module import Module, Parameter
from mnnkit.nn._norm import batch_norm, batch_norm_backward, local_response_norm, local_response_norm_backward
from mnnkit.nn._pool import (
    avg_pool2d,
    avg_pool2d_backward,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
from mnnkit.nn._shuffle import channel_shuffle, channel_shuffle_backward
from mnnkit.nn._squeeze_excitation import squeeze_excitation, squeeze_excitation_backward
from mnnkit.nn._validation import int_pair


def _bias(size: int, bias: bool, dtype: Any) -> Parameter | None:
    return Parameter(np.zeros(size, dtype=dtype)) if bias else None


def _add_grad(param: Parameter | None, grad: np.ndarray) -> None:
    if param is not None:
        param.grad += grad


class Conv2d(Module):
    """2-D convolution layer (see :func:`~mnnkit.nn.conv2d`).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts (both divisible by ``groups``).
    kernel_size, stride, padding, dilation, groups, padding_mode, method
        As for :func:`~mnnkit.nn.conv2d`.
    bias
        Whether to learn a bias (initialised to 0).
    init
        ``"he_uniform"`` (default), ``"he_normal"``, ``"glorot_uniform"`` or ``"glorot_normal"``.
    rng
        Randomness of the initial weights: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator`
        (used as given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).
    dtype
        float32 (default) or float64.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        init: str = "he_uniform",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        groups = check_int(groups, "groups", minimum=1)
        in_channels = check_int(in_channels, "in_channels", minimum=1)
        out_channels = check_int(out_channels, "out_channels", minimum=1)
        if in_channels % groups or out_channels % groups:
            msg = (
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
            raise ValueError(msg)
        kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
        self.kernel_size, self.stride, self.padding, self.dilation = (kh, kw), stride, padding, dilation
        self.groups, self.padding_mode, self.method = groups, padding_mode, method
        self.weight = Parameter(init_weight((out_channels, in_channels // groups, kh, kw), init, rng, dtype))
        self.bias = _bias(out_channels, bias, dtype)
        #: set False on a network's first layer to skip the unused input gradient
        self.input_grad = True

    def _kw(self) -> dict:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.padding_mode,
            "method": self.method,
        }

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return conv2d(x, self.weight.data, None if self.bias is None else self.bias.data, **self._kw())

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, gw, gb = conv2d_backward(
            grad_output, self._cached(), self.weight.data, input_grad=self.input_grad, **self._kw()
        )
        self.weight.grad += gw
        _add_grad(self.bias, gb)
        return gx

    def extra_repr(self) -> str:
        """Describe the settings."""
        o, i, kh, kw = self.weight.data.shape
        shape = f"{i * self.groups}, {o}, kernel_size={(kh, kw)}"
        return f"{shape}, stride={self.stride}, padding={self.padding!r}, groups={self.groups}"


class ConvTranspose2d(Module):
    """Transposed convolution layer (see :func:`~mnnkit.nn.conv_transpose2d`), e.g. for upsampling.

    Parameters
    ----------
    in_channels, out_channels
        Channel counts (both divisible by ``groups``).
    kernel_size, stride, padding, output_padding, dilation, groups, padding_mode, method
        As for :func:`~mnnkit.nn.conv_transpose2d`.
    bias, init, rng, dtype
        As for :class:`Conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        init: str = "he_uniform",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        groups = check_int(groups, "groups", minimum=1)
        if in_channels % groups or out_channels % groups:
            msg = (
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
            raise ValueError(msg)
        kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
        self.kernel_size, self.stride, self.padding, self.dilation = (kh, kw), stride, padding, dilation
        self.output_padding, self.groups, self.padding_mode, self.method = output_padding, groups, padding_mode, method
        self.weight = Parameter(init_weight((in_channels, out_channels // groups, kh, kw), init, rng, dtype))
        self.bias = _bias(out_channels, bias, dtype)

    def _kw(self) -> dict:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.padding_mode,
            "method": self.method,
        }

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return conv_transpose2d(x, self.weight.data, None if self.bias is None else self.bias.data, **self._kw())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, gw, gb = conv_transpose2d_backward(grad_output, self._cached(), self.weight.data, **self._kw())
        self.weight.grad += gw
        _add_grad(self.bias, gb)
        return gx


class SeparableConv2d(Module):
    """Depthwise-separable convolution: a depthwise ``k x k`` stage, then a pointwise ``1 x 1`` stage.

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size, stride, padding, dilation, padding_mode, method
        Of the depthwise stage, as for :func:`~mnnkit.nn.conv2d`.
    multiplier
        Depthwise kernels per input channel.
    bias, init, rng, dtype
        As for :class:`Conv2d` (one bias, after the pointwise stage).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        multiplier: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        init: str = "he_uniform",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        gen = as_generator(rng)
        mid = in_channels * check_int(multiplier, "multiplier", minimum=1)
        common = {"padding_mode": padding_mode, "method": method, "init": init, "rng": gen, "dtype": dtype}
        self.depthwise = Conv2d(in_channels, mid, kernel_size, stride, padding, dilation, in_channels, False, **common)
        self.pointwise = Conv2d(mid, out_channels, 1, bias=bias, **common)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        return self.pointwise.forward(self.depthwise.forward(x))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return self.depthwise.backward(self.pointwise.backward(grad_output))


class SpatiallySeparableConv2d(Module):
    """A ``kh x 1`` convolution followed by a ``1 x kw`` one (see :func:`~mnnkit.nn.spatially_separable_conv2d`).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts; the intermediate has ``out_channels`` channels.
    kernel_size, stride, padding, dilation
        Of the equivalent ``kh x kw`` convolution, split between the two stages.
    groups, bias, padding_mode, method, init, rng, dtype
        As for :class:`Conv2d`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        method: str = "auto",
        init: str = "he_uniform",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        from mnnkit.nn._separable import _stages

        gen = as_generator(rng)
        kh, kw = int_pair(kernel_size, "kernel_size", minimum=1)
        v, h = _stages(stride, padding, dilation)
        common = {
            "groups": groups,
            "padding_mode": padding_mode,
            "method": method,
            "init": init,
            "rng": gen,
            "dtype": dtype,
        }
        self.vertical = Conv2d(in_channels, out_channels, (kh, 1), bias=False, **v, **common)
        self.horizontal = Conv2d(out_channels, out_channels, (1, kw), bias=bias, **h, **common)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        return self.horizontal.forward(self.vertical.forward(x))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return self.vertical.backward(self.horizontal.backward(grad_output))


class Linear(Module):
    """Dense layer ``x @ weight.T + bias``.

    Parameters
    ----------
    in_features, out_features
        Sizes of the last axis before and after.
    bias, init, rng, dtype
        As for :class:`Conv2d`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "he_uniform",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        in_features = check_int(in_features, "in_features", minimum=1)
        out_features = check_int(out_features, "out_features", minimum=1)
        self.weight = Parameter(init_weight((out_features, in_features), init, rng, dtype))
        self.bias = _bias(out_features, bias, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, gw, gb = linear_backward(grad_output, self._cached(), self.weight.data)
        self.weight.grad += gw
        _add_grad(self.bias, gb)
        return gx

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f"{self.weight.data.shape[1]}, {self.weight.data.shape[0]}"


class BatchNorm2d(Module):
    """Batch normalisation over every axis but the channels (axis 1), with running statistics.

    Works for ``(N, C, H, W)`` maps and for ``(N, C)`` features. In training mode it normalises by
    the batch statistics and updates the running ones; after :meth:`eval` it uses the running ones.

    Parameters
    ----------
    num_features
        Number of channels ``C``.
    eps
        Added to the variance.
    momentum
        Weight of each batch in the running statistics.
    affine
        Learn a per-channel scale (initialised to 1) and shift (0).
    dtype
        float32 (default) or float64.
    """

    _buffers = ("running_mean", "running_var")

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True, dtype: Any = np.float32
    ):
        c = check_int(num_features, "num_features", minimum=1)
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = Parameter(np.ones(c, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype=dtype)) if affine else None
        self.running_mean = np.zeros(c, dtype=dtype)
        self.running_var = np.ones(c, dtype=dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        return batch_norm(x, w, b, self.running_mean, self.running_var, self.training, self.momentum, self.eps)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        w = None if self.weight is None else self.weight.data
        gx, gw, gb = batch_norm_backward(
            grad_output, self._cached(), w, self.running_mean, self.running_var, self.training, self.eps
        )
        _add_grad(self.weight, gw)
        _add_grad(self.bias, gb)
        return gx

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f"{self.running_mean.shape[0]}, eps={self.eps}, momentum={self.momentum}"


class _Elementwise(Module):
    """An activation without parameters: ``forward = f(x, **kw)``, ``backward = f_backward(g, x, **kw)``."""

    _name = ""

    def __init__(self, **kw: Any):
        self._kw = kw

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return getattr(act, self._name)(x, **self._kw)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return getattr(act, f"{self._name}_backward")(grad_output, self._cached(), **self._kw)

    def extra_repr(self) -> str:
        """Describe the settings."""
        return ", ".join(f"{k}={v}" for k, v in self._kw.items())


class ReLU(_Elementwise):
    """ReLU layer (see :func:`~mnnkit.nn.relu`)."""

    _name = "relu"

    def __init__(self):
        super().__init__()


class LeakyReLU(_Elementwise):
    """Leaky ReLU layer (see :func:`~mnnkit.nn.leaky_relu`).

    Parameters
    ----------
    negative_slope
        Slope for negative inputs.
    """

    _name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01):
        super().__init__(negative_slope=negative_slope)


class ELU(_Elementwise):
    """ELU layer (see :func:`~mnnkit.nn.elu`).

    Parameters
    ----------
    alpha
        Negative saturation value.
    """

    _name = "elu"

    def __init__(self, alpha: float = 1.0):
        super().__init__(alpha=alpha)


class Softplus(_Elementwise):
    """SoftPlus layer (see :func:`~mnnkit.nn.softplus`).

    Parameters
    ----------
    beta, threshold
        As for :func:`~mnnkit.nn.softplus`.
    """

    _name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(beta=beta, threshold=threshold)


class Sigmoid(_Elementwise):
    """Sigmoid layer."""

    _name = "sigmoid"

    def __init__(self):
        super().__init__()


class Tanh(_Elementwise):
    """Tanh layer."""

    _name = "tanh"

    def __init__(self):
        super().__init__()


class PReLU(Module):
    """Parametric ReLU with a learnable negative slope, shared or one per channel.

    Parameters
    ----------
    num_parameters
        1 (one slope shared by all channels) or the number of channels.
    init
        Initial slope.
    dtype
        float32 (default) or float64.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = np.float32):
        self.weight = Parameter(np.full(check_int(num_parameters, "num_parameters", minimum=1), init, dtype=dtype))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return act.prelu(x, self.weight.data)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, gw = act.prelu_backward(grad_output, self._cached(), self.weight.data)
        self.weight.grad += gw
        return gx


class Dropout(Module):
    """Inverted dropout: active in training mode, the identity after :meth:`eval`.

    Parameters
    ----------
    p
        Drop probability.
    rng
        Randomness of the masks: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances) or None (fresh entropy from the operating system: a different result on every call).
        Each training forward pass draws a new mask from it.
    """

    def __init__(self, p: float = 0.5, rng: RngLike = None):
        self.p = float(p)
        self._rng = as_generator(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        y, self._mask = dropout(x, self.p, self.training, self._rng, return_mask=True)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return dropout_backward(grad_output, self._cached("_mask"), self.p, self.training)

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f"p={self.p}"


class MaxPool2d(Module):
    """Max pooling layer (see :func:`~mnnkit.nn.max_pool2d`).

    Parameters
    ----------
    kernel_size, stride, padding, dilation, padding_mode
        As for :func:`~mnnkit.nn.max_pool2d`.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str | None = None,
    ):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.padding_mode = dilation, padding_mode

    def _args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.dilation, self.padding_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return max_pool2d(x, *self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return max_pool2d_backward(grad_output, self._cached(), *self._args())

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class AvgPool2d(Module):
    """Average pooling layer (see :func:`~mnnkit.nn.avg_pool2d`).

    Parameters
    ----------
    kernel_size, stride, padding, padding_mode, count_include_pad
        As for :func:`~mnnkit.nn.avg_pool2d`.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] | str = 0,
        padding_mode: str | None = None,
        count_include_pad: bool = True,
    ):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.padding_mode, self.count_include_pad = padding_mode, count_include_pad

    def _args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.padding_mode, self.count_include_pad)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return avg_pool2d(x, *self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return avg_pool2d_backward(grad_output, self._cached(), *self._args())

    def extra_repr(self) -> str:
        """Describe the settings."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}"


class GlobalAvgPool2d(Module):
    """Global average pooling ``(N, C, H, W) -> (N, C)``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return global_avg_pool2d(x)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return global_avg_pool2d_backward(grad_output, self._cached())


class Flatten(Module):
    """Flatten all axes but the first: ``(N, ...) -> (N, prod(...))``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._shape = np.shape(x)
        return np.reshape(x, (self._shape[0], -1))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return np.reshape(grad_output, self._cached("_shape"))


class Identity(Module):
    """Pass the input through unchanged."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return grad_output


class LocalResponseNorm(Module):
    """Local response normalisation layer (see :func:`~mnnkit.nn.local_response_norm`).

    Parameters
    ----------
    size, alpha, beta, k
        As for :func:`~mnnkit.nn.local_response_norm`.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        self.args = (size, alpha, beta, k)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return local_response_norm(x, *self.args)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return local_response_norm_backward(grad_output, self._cached(), *self.args)


class ChannelShuffle(Module):
    """Channel shuffle layer (see :func:`~mnnkit.nn.channel_shuffle`).

    Parameters
    ----------
    groups
        Number of groups to interleave.
    """

    def __init__(self, groups: int):
        self.groups = check_int(groups, "groups", minimum=1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        return channel_shuffle(x, self.groups)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        return channel_shuffle_backward(grad_output, self.groups)


class SqueezeExcitation(Module):
    """Squeeze-and-excitation block (see :func:`~mnnkit.nn.squeeze_excitation`).

    Parameters
    ----------
    channels
        Number of channels ``C``.
    reduction
        The hidden layer has ``max(1, C // reduction)`` units.
    rng, dtype
        As for :class:`Conv2d`.
    """

    def __init__(self, channels: int, reduction: int = 4, rng: RngLike = None, dtype: Any = np.float32):
        gen = as_generator(rng)
        hidden = max(1, check_int(channels, "channels", minimum=1) // check_int(reduction, "reduction", minimum=1))
        self.w1 = Parameter(init_weight((hidden, channels), "he_uniform", gen, dtype))
        self.b1 = Parameter(np.zeros(hidden, dtype=dtype))
        self.w2 = Parameter(init_weight((channels, hidden), "glorot_uniform", gen, dtype))
        self.b2 = Parameter(np.zeros(channels, dtype=dtype))

    def _params(self) -> tuple:
        return (self.w1.data, self.b1.data, self.w2.data, self.b2.data)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        self._input = x
        return squeeze_excitation(x, *self._params())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        gx, *grads = squeeze_excitation_backward(grad_output, self._cached(), *self._params())
        for p, g in zip((self.w1, self.b1, self.w2, self.b2), grads, strict=True):
            p.grad += g
        return gx


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Parameters
    ----------
    *layers
        Modules.
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                msg = f"layer {i} is not a Module: {layer!r}"
                raise TypeError(msg)
        self.layers = list(layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer (the input is cached for :meth:`backward`)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray | None:
        """Accumulate the parameter gradients and return the input gradient."""
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output
