"""Dot products shared by the stages of a classic merge step, when they fit in a fixed budget.

The exact neighbour search needs ``right . left`` for every pair of cells, the kernel smoothing
``right . right`` (between right cells and MNN cells), and var.adj both again (for the distances of
every cell to each right cell). Computed once per step they save up to half of the step's BLAS work.
They take ``8 n_right (n_left + n_right)`` bytes, so they are kept only up to
``mnnkit._config.GRAM_CACHE_BYTES`` (512 MiB): larger steps compute what they need in bounded chunks,
as before. Values differ from the chunked products only by rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnnkit import _config


@dataclass(frozen=True)
class StepGram:
    """Dot products of every right cell with every left cell and every right cell.

    Attributes
    ----------
    right_left
        ``(n_right, n_left)``: ``right @ left.T``.
    right_right
        ``(n_right, n_right)``: ``right @ right.T``.
    """

    right_left: np.ndarray
    right_right: np.ndarray


def step_gram(left: np.ndarray, right: np.ndarray) -> StepGram | None:
    """Both products of a merge step (float64, C order), or None if they exceed the budget."""
    n_left, n_right = left.shape[0], right.shape[0]
    if 8 * n_right * (n_left + n_right) > _config.GRAM_CACHE_BYTES:
        return None
    left64 = np.ascontiguousarray(left, dtype=np.float64)
    right64 = np.ascontiguousarray(right, dtype=np.float64)
    return StepGram(right64 @ left64.T, right64 @ right64.T)
