"""ShuffleNet's channel shuffle, which lets information cross the groups of grouped convolutions."""

from __future__ import annotations

import numpy as np

from mnnkit._validation import check_int
from mnnkit.nn._validation import as_nchw


def _shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    n, c, h, w = x.shape
    if c % groups:
        msg = f"channels ({c}) must be divisible by groups ({groups})"
        raise ValueError(msg)
    return np.ascontiguousarray(x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4)).reshape(n, c, h, w)


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """Interleave the channels of ``groups`` groups (ShuffleNet).

    Channel ``g * (C / groups) + k`` moves to position ``k * groups + g``, so that a grouped
    convolution after the shuffle sees channels from every group of the one before it.

    Parameters
    ----------
    x
        ``(N, C, H, W)`` with ``C`` divisible by ``groups``. Not modified.
    groups
        Number of groups.

    Returns
    -------
    numpy.ndarray
        The shuffled array (a new array).
    """
    return _shuffle(as_nchw(x, "x"), check_int(groups, "groups", minimum=1))


def channel_shuffle_backward(grad_output: np.ndarray, groups: int) -> np.ndarray:
    """Gradient of :func:`channel_shuffle`: the inverse shuffle (``C / groups`` groups).

    Parameters
    ----------
    grad_output
        ``(N, C, H, W)``.
    groups
        As given to :func:`channel_shuffle`.

    Returns
    -------
    numpy.ndarray
        Gradient with respect to the input of :func:`channel_shuffle`.
    """
    g = as_nchw(grad_output, "grad_output")
    groups = check_int(groups, "groups", minimum=1)
    if g.shape[1] % groups:
        msg = f"channels ({g.shape[1]}) must be divisible by groups ({groups})"
        raise ValueError(msg)
    return _shuffle(g, g.shape[1] // groups)
