"""The one randomness policy of mnnkit: what ``rng`` means in every function that takes it.

Every stochastic function (randomized SVD and PCA, pynndescent searches, var.adj samples, Gaussian
mixtures, the ``nn`` initialisers and dropout, metrics that cluster or search) takes ``rng``, which is

``int`` (>= 0)
    A fixed seed: the same seed and input give the same output, bit for bit. Functions whose promise
    is reproducibility default to ``rng=0``.
:class:`numpy.random.Generator`
    Used as given (SPEC 7): drawing from it advances the caller's stream, so two calls with the same
    Generator object give different, but reproducible, results.
``None``
    Fresh entropy from the operating system: a different result on every call.

Components that need an integer seed rather than a Generator (pynndescent's ``random_state``, seeds
handed to numba kernels) get :func:`as_seed`: the int itself, or one drawn from the Generator (or
from fresh entropy for ``None``).
"""

from __future__ import annotations

import numbers
from typing import TypeAlias

import numpy as np

__all__ = ["RngLike", "as_generator", "as_seed", "check_rng", "keyed_generator"]

#: What ``rng`` parameters accept.
RngLike: TypeAlias = int | np.integer | np.random.Generator | None

#: Integer seeds handed to other libraries lie in ``[0, SEED_BOUND)`` (what every consumer accepts).
SEED_BOUND = 2**31 - 1


def check_rng(rng: object, name: str = "rng") -> None:
    """Raise a TypeError/ValueError unless ``rng`` is a seed >= 0, a Generator or None."""
    if rng is None or isinstance(rng, np.random.Generator):
        return
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        msg = f"{name} must be an int seed, a numpy.random.Generator or None, got {type(rng).__name__}"
        raise TypeError(msg)
    if rng < 0:
        msg = f"{name} must be a non-negative int seed, got {rng}"
        raise ValueError(msg)


def as_generator(rng: RngLike, name: str = "rng") -> np.random.Generator:
    """A Generator following the policy above (``rng`` itself when it is one)."""
    check_rng(rng, name)
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(None if rng is None else int(rng))


def keyed_generator(seed: int, *key: int) -> np.random.Generator:
    """The Generator of one part (``key``, e.g. a label's code) of a computation seeded with ``seed``.

    Seeded with numpy's SeedSequence of the entropy ``(seed, *key)``: the parts' streams are independent
    of each other and of the order in which the parts run, and the same seed gives the same streams.
    ``seed`` is an int seed, as :func:`as_seed` returns.
    """
    return np.random.default_rng((int(seed), *(int(part) for part in key)))


def as_seed(rng: RngLike, name: str = "rng") -> int:
    """An integer seed in ``[0, SEED_BOUND)``: an int seed itself (reduced modulo the bound), or one drawn."""
    check_rng(rng, name)
    if rng is None or isinstance(rng, np.random.Generator):
        return int(as_generator(rng).integers(0, SEED_BOUND))
    return int(rng) % SEED_BOUND
