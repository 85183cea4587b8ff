"""Inverted dropout: zero each value with probability ``p`` and scale the rest by ``1 / (1 - p)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit._random import RngLike, as_generator, check_rng
from mnnkit.nn._validation import as_float_array, check_shape


def _check_p(p: Any) -> float:
    p = float(p)
    if not 0 <= p <= 1:
        msg = f"dropout probability p must be in [0, 1], got {p}"
        raise ValueError(msg)
    return p


def _scale(p: float, dtype: np.dtype) -> Any:
    return dtype.type(0 if p == 1 else 1 / (1 - p))


def dropout_mask(shape: tuple[int, ...], p: float = 0.5, rng: RngLike = None) -> np.ndarray:
    """Boolean keep-mask: each entry True with probability ``1 - p``.

    Parameters
    ----------
    shape
        Shape of the mask.
    p
        Drop probability, in ``[0, 1]``.
    rng
        Randomness of the mask: an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances) or None (fresh entropy from the operating system: a different result on every call).

    Returns
    -------
    numpy.ndarray
        Boolean array of ``shape``.
    """
    p = _check_p(p)
    return as_generator(rng).random(shape) >= p


def dropout(
    x: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    rng: RngLike = None,
    mask: np.ndarray | None = None,
    return_mask: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Inverted dropout: in training, keep each value with probability ``1 - p`` and rescale it.

    The expected value of every output equals its input, so evaluation (``training=False``) is the
    identity.

    Parameters
    ----------
    x
        Float array of any shape. Not modified.
    p
        Drop probability, in ``[0, 1]``.
    training
        Apply dropout (True) or return a copy of ``x`` (False).
    rng
        Randomness of the mask (checked, then unused when ``mask`` is given or ``training`` is False): an int seed >= 0
        (same seed, same result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh
        entropy from the operating system: a different result on every call).
    mask
        Optional boolean keep-mask shaped like ``x`` (e.g. from :func:`dropout_mask`).
    return_mask
        Also return the keep-mask, for :func:`dropout_backward`.

    Returns
    -------
    numpy.ndarray or tuple
        The output, and the mask when ``return_mask`` (all True in evaluation mode).
    """
    x = as_float_array(x, "x")
    p = _check_p(p)
    check_rng(rng)
    if not training:
        out = x.copy()
        keep = np.ones(x.shape, dtype=bool)
    else:
        if mask is None:
            keep = dropout_mask(x.shape, p, rng)
        else:
            keep = np.asarray(mask, dtype=bool)
            check_shape(keep, x.shape, "mask")
        out = np.where(keep, x * _scale(p, x.dtype), x.dtype.type(0))
    return (out, keep) if return_mask else out


def dropout_backward(grad_output: np.ndarray, mask: np.ndarray, p: float = 0.5, training: bool = True) -> np.ndarray:
    """Gradient of :func:`dropout`: the output gradient through the same mask and scale.

    Parameters
    ----------
    grad_output
        Gradient with respect to the output.
    mask
        The keep-mask of the forward pass.
    p, training
        As given to :func:`dropout`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to ``x``.
    """
    g = as_float_array(grad_output, "grad_output")
    p = _check_p(p)
    if not training:
        return g.copy()
    keep = np.asarray(mask, dtype=bool)
    check_shape(keep, g.shape, "mask")
    return np.where(keep, g * _scale(p, g.dtype), g.dtype.type(0))
