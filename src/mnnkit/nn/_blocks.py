"""Composite blocks built from the layers, each a :class:`~mnnkit.nn.Module` with forward and backward.

ResNet bottleneck, Bottleneck Transformer (BoTNet), Inception module and gated convolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator
from mnnkit._validation import check_int
from mnnkit.nn import _activations as act
from mnnkit.nn._attention import MultiHeadSelfAttention2d
from mnnkit.nn._layers import AvgPool2d, BatchNorm2d, Conv2d, Identity, MaxPool2d, ReLU, Sequential
from mnnkit.nn._module import Module
from mnnkit.nn._validation import as_nchw


class _Residual(Module):
    """``relu(main(x) + shortcut(x))``, the shape shared by the two bottleneck blocks."""

    main: Sequential
    shortcut: Module

    def _make_shortcut(self, in_channels, out_channels, stride, projection, gen, dtype) -> Module:
        if projection is None:
            projection = in_channels != out_channels or stride != 1
        if not projection:
            if in_channels != out_channels or stride != 1:
                msg = "an identity shortcut needs in_channels == out_channels and stride 1; use projection=True"
                raise ValueError(msg)
            return Identity()
        return Sequential(
            Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=gen, dtype=dtype),
            BatchNorm2d(out_channels, dtype=dtype),
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the block (intermediate values are cached for :meth:`backward`)."""
        self._sum = self.main.forward(x) + self.shortcut.forward(x)
        return np.maximum(self._sum, 0)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        g = act.relu_backward(grad_output, self._cached("_sum"))
        return self.main.backward(g) + self.shortcut.backward(g)


class Bottleneck(_Residual):
    """ResNet bottleneck: 1x1 (reduce), 3x3 (stride), 1x1 (expand), each with batch norm, plus a shortcut.

    ``relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))``, the shortcut being the
    identity or, when the shape changes (or ``projection=True``), a strided 1x1 convolution with
    batch norm (He et al. 2016; stride on the 3x3 convolution, as in ResNet v1.5).

    Parameters
    ----------
    in_channels
        Input channels.
    mid_channels
        Channels of the 3x3 convolution.
    out_channels
        Output channels (default ``4 * mid_channels``).
    stride
        Stride of the 3x3 convolution and of the projection.
    groups
        Groups of the 3x3 convolution (ResNeXt).
    projection
        Force (True) or forbid (False) the projection shortcut; None decides from the shapes.
    padding_mode
        Padding of the 3x3 convolution.
    rng
        Randomness of the initial weights: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator`
        (used as given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).
    dtype
        Their dtype.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int | None = None,
        stride: int = 1,
        groups: int = 1,
        projection: bool | None = None,
        padding_mode: str = "zeros",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        gen = as_generator(rng)
        out_channels = 4 * mid_channels if out_channels is None else out_channels
        c = {"bias": False, "rng": gen, "dtype": dtype}
        self.main = Sequential(
            Conv2d(in_channels, mid_channels, 1, **c),
            BatchNorm2d(mid_channels, dtype=dtype),
            ReLU(),
            Conv2d(mid_channels, mid_channels, 3, stride, 1, groups=groups, padding_mode=padding_mode, **c),
            BatchNorm2d(mid_channels, dtype=dtype),
            ReLU(),
            Conv2d(mid_channels, out_channels, 1, **c),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        self.shortcut = self._make_shortcut(in_channels, out_channels, stride, projection, gen, dtype)


class BottleneckTransformer(_Residual):
    """Bottleneck Transformer block (BoTNet, Srinivas et al. 2021).

    A :class:`Bottleneck` whose 3x3 convolution is replaced by 2-D multi-head self-attention with
    relative position encodings (:class:`MultiHeadSelfAttention2d`); with ``stride=2`` a 2x2
    average pooling follows the attention, as in the paper.

    Parameters
    ----------
    in_channels, mid_channels, out_channels, projection, rng, dtype
        As for :class:`Bottleneck` (``mid_channels`` divisible by ``heads``).
    height, width
        Size of the input feature maps (the attention's position tables depend on it).
    heads
        Attention heads.
    stride
        1 or 2.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        height: int,
        width: int,
        heads: int = 4,
        out_channels: int | None = None,
        stride: int = 1,
        projection: bool | None = None,
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        if stride not in (1, 2):
            msg = f"stride of a BottleneckTransformer must be 1 or 2, got {stride}"
            raise ValueError(msg)
        gen = as_generator(rng)
        out_channels = 4 * mid_channels if out_channels is None else out_channels
        c = {"bias": False, "rng": gen, "dtype": dtype}
        attention: list[Module] = [MultiHeadSelfAttention2d(mid_channels, heads, height, width, gen, dtype)]
        if stride == 2:
            attention.append(AvgPool2d(2))
        self.main = Sequential(
            Conv2d(in_channels, mid_channels, 1, **c),
            BatchNorm2d(mid_channels, dtype=dtype),
            ReLU(),
            *attention,
            BatchNorm2d(mid_channels, dtype=dtype),
            ReLU(),
            Conv2d(mid_channels, out_channels, 1, **c),
            BatchNorm2d(out_channels, dtype=dtype),
        )
        self.shortcut = self._make_shortcut(in_channels, out_channels, stride, projection, gen, dtype)


class InceptionBlock(Module):
    """Inception module (GoogLeNet): parallel 1x1, 3x3, 5x5 and pooling branches, concatenated.

    Branches (each convolution followed by ReLU): ``1x1``; ``1x1 -> 3x3``; ``1x1 -> 5x5``;
    ``3x3 max pool (stride 1) -> 1x1``. All keep the height and width; the output has
    ``c1 + c3 + c5 + pool_proj`` channels, in that order.

    Parameters
    ----------
    in_channels
        Input channels.
    c1
        Output channels of the 1x1 branch.
    c3_reduce, c3
        Reduction and output channels of the 3x3 branch.
    c5_reduce, c5
        Reduction and output channels of the 5x5 branch.
    pool_proj
        Output channels of the pooling branch.
    padding_mode
        Padding of the 3x3 and 5x5 convolutions and of the pooling.
    rng
        Randomness of the initial weights: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator`
        (used as given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).
    dtype
        Their dtype.
    """

    def __init__(
        self,
        in_channels: int,
        c1: int,
        c3_reduce: int,
        c3: int,
        c5_reduce: int,
        c5: int,
        pool_proj: int,
        padding_mode: str = "zeros",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        gen = as_generator(rng)
        c = {"rng": gen, "dtype": dtype}
        pm = {"padding_mode": padding_mode}
        self.branches = [
            Sequential(Conv2d(in_channels, c1, 1, **c), ReLU()),
            Sequential(
                Conv2d(in_channels, c3_reduce, 1, **c), ReLU(), Conv2d(c3_reduce, c3, 3, padding=1, **pm, **c), ReLU()
            ),
            Sequential(
                Conv2d(in_channels, c5_reduce, 1, **c), ReLU(), Conv2d(c5_reduce, c5, 5, padding=2, **pm, **c), ReLU()
            ),
            Sequential(
                MaxPool2d(3, 1, 1, padding_mode=None if padding_mode == "zeros" else padding_mode),
                Conv2d(in_channels, pool_proj, 1, **c),
                ReLU(),
            ),
        ]
        self._widths = [c1, c3, c5, pool_proj]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the block (intermediate values are cached for :meth:`backward`)."""
        return np.concatenate([b.forward(x) for b in self.branches], axis=1)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        cuts = np.cumsum(self._widths)[:-1]
        parts = np.split(grad_output, cuts, axis=1)
        grads = [b.backward(np.ascontiguousarray(g)) for b, g in zip(self.branches, parts, strict=True)]
        return sum(grads[1:], grads[0])


_GATED_ACTIVATIONS = ("elu", "leaky_relu", "relu", "tanh", None)


class GatedConv2d(Module):
    """Gated convolution: ``act(conv_f(x)) * sigmoid(conv_g(x))``, a learned soft mask per pixel and channel.

    The features and the gate come from one convolution with ``2 * out_channels`` outputs (the
    first half features, the second half gate); ``activation=None`` gives a gated linear unit
    (Dauphin et al. 2017), ``"elu"`` the gated convolution of free-form inpainting (Yu et al. 2019).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size, stride, padding, dilation, padding_mode
        As for :class:`Conv2d`.
    activation
        ``"elu"`` (default), ``"leaky_relu"``, ``"relu"``, ``"tanh"`` or None (identity) on the features.
    rng
        Randomness of the initial weights: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator`
        (used as given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).
    dtype
        Their dtype.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = "same",
        dilation: int | tuple[int, int] = 1,
        activation: str | None = "elu",
        padding_mode: str = "zeros",
        rng: RngLike = None,
        dtype: Any = np.float32,
    ):
        if activation not in _GATED_ACTIVATIONS:
            msg = f"activation must be one of {_GATED_ACTIVATIONS}, got {activation!r}"
            raise ValueError(msg)
        self.activation = activation
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)
        self.conv = Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            padding_mode=padding_mode,
            rng=rng,
            dtype=dtype,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the block (intermediate values are cached for :meth:`backward`)."""
        z = self.conv.forward(as_nchw(x, "x"))
        f, gate = z[:, : self.out_channels], z[:, self.out_channels :]
        a = f if self.activation is None else getattr(act, self.activation)(f)
        s = act.sigmoid(gate)
        self._parts = (f, gate, a, s)
        return a * s

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Accumulate the parameter gradients and return the input gradient."""
        f, gate, a, s = self._cached("_parts")
        g_a = grad_output * s
        g_f = g_a if self.activation is None else getattr(act, f"{self.activation}_backward")(g_a, f)
        g_gate = act.sigmoid_backward(grad_output * a, gate)
        return self.conv.backward(np.concatenate([g_f, g_gate], axis=1))
