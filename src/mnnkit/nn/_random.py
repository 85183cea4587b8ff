"""Seeded randomness: every stochastic function takes ``rng`` (a seed or a NumPy Generator)."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_generator(rng: Any) -> np.random.Generator:
    """Return a Generator: ``rng`` itself, or one seeded with ``rng`` (an int or SeedSequence; None is unseeded)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    msg = f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}"
    raise TypeError(msg)
