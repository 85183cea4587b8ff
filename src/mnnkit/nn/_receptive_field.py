"""Receptive field of a stack of convolution / pooling layers.

For layer ``l`` with kernel ``k``, stride ``s``, dilation ``d`` and leading padding ``p``, and
``k' = d * (k - 1) + 1`` its effective kernel::

    size_l  = size_{l-1} + (k' - 1) * jump_{l-1}
    jump_l  = jump_{l-1} * s
    start_l = start_{l-1} + ((k' - 1) / 2 - p) * jump_{l-1}

starting from ``size_0 = 1``, ``jump_0 = 1``, ``start_0 = 0``: ``size`` is how many input pixels
one output unit sees, ``jump`` the input distance between neighbouring output units and
``start`` the input coordinate of the centre of the first output unit's field (pixel centres at
0, 1, 2, ...; negative when the field starts in the padding).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mnnkit.nn._validation import int_pair, resolve_padding


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field after one layer, per axis ``(height, width)``."""

    size: tuple[int, int]
    """Input pixels seen by one output unit."""
    jump: tuple[int, int]
    """Input distance between neighbouring output units (the product of the strides so far)."""
    start: tuple[float, float]
    """Input coordinate of the centre of the first output unit's field."""


def _layer_spec(layer: Any, index: int) -> tuple[Any, Any, Any, Any]:
    if isinstance(layer, dict):
        unknown = set(layer) - {"kernel_size", "stride", "dilation", "padding"}
        if unknown or "kernel_size" not in layer:
            msg = f"layer {index}: a dict needs 'kernel_size' and may have 'stride', 'dilation', 'padding'; got {layer}"
            raise ValueError(msg)
        stride = layer.get("stride", 1)
        return layer["kernel_size"], stride, layer.get("dilation", 1), layer.get("padding", 0)
    if isinstance(layer, (tuple, list)):
        if not 1 <= len(layer) <= 4:
            msg = f"layer {index}: a tuple is (kernel_size, stride, dilation, padding) (trailing items optional)"
            raise ValueError(msg)
        kernel, stride, dilation, padding = (*layer, *(1, 1, 0)[len(layer) - 1 :])
        return kernel, stride, dilation, padding
    if hasattr(layer, "kernel_size"):
        stride = getattr(layer, "stride", 1)
        stride = layer.kernel_size if stride is None else stride
        return layer.kernel_size, stride, getattr(layer, "dilation", 1), getattr(layer, "padding", 0)
    msg = f"layer {index}: expected a (kernel_size, stride, dilation, padding) tuple, a dict or a layer, got {layer!r}"
    raise TypeError(msg)


def receptive_field(layers: Iterable[Any]) -> list[ReceptiveField]:
    """Receptive field after each layer of a stack.

    Parameters
    ----------
    layers
        Layers in order, each a tuple ``(kernel_size, stride, dilation, padding)`` (trailing items
        optional: stride 1, dilation 1, padding 0), a dict with those keys, or a layer object with
        ``kernel_size`` (and ``stride``, ``dilation``, ``padding``) attributes such as
        :class:`~mnnkit.nn.Conv2d` or :class:`~mnnkit.nn.MaxPool2d`. Each value is an int or a
        ``(height, width)`` pair; ``padding`` may be ``"same"`` or ``"valid"``.

    Returns
    -------
    list of ReceptiveField
        One per layer. Three stacked 3x3 convolutions with dilation 1, 2 and 4 give sizes 3, 7, 15.
    """
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    fields = []
    for index, layer in enumerate(layers):
        kernel, stride, dilation, padding = _layer_spec(layer, index)
        kernel = int_pair(kernel, "kernel_size", minimum=1)
        stride = int_pair(stride, "stride", minimum=1)
        dilation = int_pair(dilation, "dilation", minimum=1)
        pads = resolve_padding(padding, kernel, dilation, stride)
        for axis, lead in ((0, pads[0]), (1, pads[2])):
            span = dilation[axis] * (kernel[axis] - 1)
            start[axis] += (span / 2 - lead) * jump[axis]
            size[axis] += span * jump[axis]
            jump[axis] *= stride[axis]
        fields.append(ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1])))
    return fields
