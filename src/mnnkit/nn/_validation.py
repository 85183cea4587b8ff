"""Argument checks shared by the ``mnnkit.nn`` primitives.

Every public function runs these in Python before any numba kernel sees the data, so that bad
input fails with a message that names the parameter and the problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._validation import is_int

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
NCHW = "(N, C, H, W) (NCHW layout: batch, channels, height, width)"


def as_float_array(x: Any, name: str, *, ndim: int | None = None, layout: str | None = None) -> np.ndarray:
    """Return ``x`` as a float32/float64 ndarray (no copy), checking its number of dimensions."""
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple)) or hasattr(x, "__array__"):
            x = np.asarray(x)
        else:
            msg = f"{name} must be a NumPy array, got {type(x).__name__}"
            raise TypeError(msg)
    if x.dtype not in FLOAT_DTYPES:
        msg = f"{name} must be a float32 or float64 array, got dtype {x.dtype}"
        raise TypeError(msg)
    if ndim is not None and x.ndim != ndim:
        shape = f"of shape {layout}" if layout else f"with {ndim} dimensions"
        hint = " (add a batch axis with x[None] for a single image)" if layout == NCHW and x.ndim == 3 else ""
        msg = f"{name} must be a {ndim}-D array {shape}; got a {x.ndim}-D array of shape {x.shape}{hint}"
        raise ValueError(msg)
    return x


def as_nchw(x: Any, name: str = "input") -> np.ndarray:
    """Return ``x`` as a 4-D float array, with an error that states the NCHW layout otherwise."""
    return as_float_array(x, name, ndim=4, layout=NCHW)


def check_same_dtype(array: np.ndarray, reference: np.ndarray, name: str, reference_name: str = "input") -> None:
    """Raise TypeError if ``array`` and ``reference`` have different dtypes."""
    if array.dtype != reference.dtype:
        msg = (
            f"{name} has dtype {array.dtype} but {reference_name} has dtype {reference.dtype}; "
            "cast one of them so both are float32 or both float64"
        )
        raise TypeError(msg)


def check_shape(array: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    """Raise ValueError if ``array.shape`` differs from ``shape``."""
    if tuple(array.shape) != tuple(shape):
        msg = f"{name} must have shape {tuple(shape)}, got {tuple(array.shape)}"
        raise ValueError(msg)


def int_pair(value: Any, name: str, *, minimum: int) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as a pair, each at least ``minimum``."""
    if is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        pair = (int(value[0]), int(value[1]))
    else:
        msg = f"{name} must be an int or a pair of ints, got {value!r}"
        raise TypeError(msg)
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        msg = f"{name} must be {what}, got {value!r}"
        raise ValueError(msg)
    return pair


def check_padding_mode(mode: Any) -> str:
    """Return ``mode`` if it is one of :data:`PADDING_MODES`."""
    if mode not in PADDING_MODES:
        msg = f"padding_mode must be one of {PADDING_MODES}, got {mode!r}"
        raise ValueError(msg)
    return mode


def resolve_padding(
    padding: Any, kernel_size: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Turn a conv/pool ``padding`` argument into ``(top, bottom, left, right)``.

    ``"valid"`` is no padding; ``"same"`` (stride 1 only) pads ``dilation * (k - 1)`` in total per axis,
    the odd pixel going to the bottom/right as in PyTorch.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                msg = f"padding='same' needs stride 1 (got stride {stride}); give explicit padding instead"
                raise ValueError(msg)
            pads = []
            for k, d in zip(kernel_size, dilation, strict=True):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return (pads[0], pads[1], pads[2], pads[3])
        msg = f"padding must be an int, a pair of ints, 'same' or 'valid'; got unknown string {padding!r}"
        raise ValueError(msg)
    ph, pw = int_pair(padding, "padding", minimum=0)
    return (ph, ph, pw, pw)


def check_mode_fits(pads: tuple[int, int, int, int], height: int, width: int, mode: str) -> None:
    """Raise ValueError if ``mode`` cannot pad an image of this size by ``pads``."""
    for before, after, size, axis in ((pads[0], pads[1], height, "height"), (pads[2], pads[3], width, "width")):
        largest = max(before, after)
        if mode == "reflect" and largest >= size:
            msg = f"padding_mode='reflect' needs padding smaller than the input {axis} (pad {largest} >= {size})"
            raise ValueError(msg)
        if mode == "circular" and largest > size:
            msg = f"padding_mode='circular' needs padding at most the input {axis} (pad {largest} > {size})"
            raise ValueError(msg)


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_total: int, axis: str) -> int:
    """Output length of a sliding window; raises if the kernel does not fit in the padded input."""
    span = dilation * (kernel - 1) + 1
    padded = size + pad_total
    if span > padded:
        dil = f" with dilation {dilation} spans {span} pixels and" if dilation > 1 else ""
        msg = f"kernel {axis} {kernel}{dil} is larger than the padded input {axis} ({padded} = {size} + padding)"
        raise ValueError(msg)
    return (padded - span) // stride + 1
