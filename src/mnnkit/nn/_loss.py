"""Cross-entropy loss of class logits (for training classifiers with :mod:`mnnkit.nn`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mnnkit.nn._softmax import _log_softmax
from mnnkit.nn._validation import as_float_array


def _check(logits: Any, target: Any, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    logits = as_float_array(logits, "logits", ndim=2, layout="(N, n_classes)")
    target = np.asarray(target)
    if target.shape != (logits.shape[0],) or not np.issubdtype(target.dtype, np.integer):
        msg = f"target must be an integer array of shape ({logits.shape[0]},), got {target.dtype} {target.shape}"
        raise ValueError(msg)
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        msg = f"target values must be class indices in [0, {logits.shape[1]}), got [{target.min()}, {target.max()}]"
        raise ValueError(msg)
    if reduction not in ("mean", "sum"):
        msg = f"reduction must be 'mean' or 'sum', got {reduction!r}"
        raise ValueError(msg)
    return logits, target


def cross_entropy(logits: np.ndarray, target: np.ndarray, reduction: str = "mean") -> float:
    """Cross-entropy ``-log softmax(logits)[target]``, averaged (or summed) over the batch.

    Parameters
    ----------
    logits
        ``(N, n_classes)`` unnormalised scores.
    target
        ``(N,)`` integer class indices.
    reduction
        ``"mean"`` or ``"sum"``.

    Returns
    -------
    float
        The loss.
    """
    logits, target = _check(logits, target, reduction)
    picked = _log_softmax(logits, 1)[np.arange(logits.shape[0]), target]
    return float(-picked.mean() if reduction == "mean" else -picked.sum())


def cross_entropy_backward(logits: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    """Gradient of :func:`cross_entropy` with respect to ``logits``: ``softmax(logits) - one_hot(target)``.

    Parameters
    ----------
    logits, target, reduction
        As given to :func:`cross_entropy`.

    Returns
    -------
    numpy.ndarray
        ``(N, n_classes)``, divided by ``N`` for ``reduction="mean"``.
    """
    logits, target = _check(logits, target, reduction)
    grad = np.exp(_log_softmax(logits, 1))
    grad[np.arange(logits.shape[0]), target] -= 1
    if reduction == "mean":
        grad /= logits.dtype.type(logits.shape[0])
    return grad
