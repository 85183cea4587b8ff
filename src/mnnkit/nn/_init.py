"""Seeded parameter initialisation: He (Kaiming) and Glorot (Xavier), uniform or normal.

Fans follow PyTorch: for a weight of shape ``(a, b, *kernel)``, ``fan_in = b * prod(kernel)`` and
``fan_out = a * prod(kernel)``; for ``(out_features, in_features)`` they are ``in_features`` and
``out_features``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator

INITS = ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` of a weight shape."""
    if len(shape) < 2:
        msg = f"fans need a weight with at least 2 dimensions, got shape {shape}"
        raise ValueError(msg)
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _draw(shape, rng, dtype, *, bound=None, std=None) -> np.ndarray:
    gen = as_generator(rng)
    if bound is not None:
        values = gen.uniform(-bound, bound, size=shape)
    else:
        values = gen.normal(0.0, std, size=shape)
    return values.astype(dtype)


def he_uniform(
    shape: tuple[int, ...], rng: RngLike = None, dtype: Any = np.float32, gain: float = math.sqrt(2)
) -> np.ndarray:
    """He (Kaiming) uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan_in)``.

    Parameters
    ----------
    shape
        Weight shape, ``(out, in, *kernel)``.
    rng
        Randomness of the weights: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances) or None (fresh entropy from the operating system: a different result on every call).
        The same seed gives the same weights bit for bit.
    dtype
        float32 or float64.
    gain
        ``sqrt(2)`` for ReLU (the default), 1 for linear layers.

    Returns
    -------
    numpy.ndarray
        The initial weight.
    """
    return _draw(shape, rng, dtype, bound=gain * math.sqrt(3 / fans(shape)[0]))


def he_normal(
    shape: tuple[int, ...], rng: RngLike = None, dtype: Any = np.float32, gain: float = math.sqrt(2)
) -> np.ndarray:
    """He (Kaiming) normal: ``N(0, std**2)`` with ``std = gain / sqrt(fan_in)``.

    Parameters
    ----------
    shape, rng, dtype, gain
        As for :func:`he_uniform`.

    Returns
    -------
    numpy.ndarray
        The initial weight.
    """
    return _draw(shape, rng, dtype, std=gain / math.sqrt(fans(shape)[0]))


def glorot_uniform(
    shape: tuple[int, ...], rng: RngLike = None, dtype: Any = np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot (Xavier) uniform: ``U(-b, b)`` with ``b = gain * sqrt(6 / (fan_in + fan_out))``.

    Parameters
    ----------
    shape, rng, dtype
        As for :func:`he_uniform`.
    gain
        Scale factor (1 for tanh/sigmoid/linear).

    Returns
    -------
    numpy.ndarray
        The initial weight.
    """
    fan_in, fan_out = fans(shape)
    return _draw(shape, rng, dtype, bound=gain * math.sqrt(6 / (fan_in + fan_out)))


def glorot_normal(
    shape: tuple[int, ...], rng: RngLike = None, dtype: Any = np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot (Xavier) normal: ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    Parameters
    ----------
    shape, rng, dtype, gain
        As for :func:`glorot_uniform`.

    Returns
    -------
    numpy.ndarray
        The initial weight.
    """
    fan_in, fan_out = fans(shape)
    return _draw(shape, rng, dtype, std=gain * math.sqrt(2 / (fan_in + fan_out)))


def init_weight(shape: tuple[int, ...], init: str, rng: RngLike, dtype: Any) -> np.ndarray:
    """Dispatch on the name of an initialiser (one of :data:`INITS`)."""
    table = {
        "he_uniform": he_uniform,
        "he_normal": he_normal,
        "glorot_uniform": glorot_uniform,
        "glorot_normal": glorot_normal,
    }
    if init not in table:
        msg = f"init must be one of {INITS}, got {init!r}"
        raise ValueError(msg)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        msg = f"dtype must be float32 or float64, got {dtype}"
        raise TypeError(msg)
    return table[init](shape, rng, dtype)
