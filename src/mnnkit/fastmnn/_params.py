"""Validation of :func:`mnnkit.fast_mnn`'s scalar parameters (before any data is touched)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnnkit.fastmnn._core import FastParams
from mnnkit.mnn._input import check_k, check_prop_k, is_int, is_real

SVD_SOLVERS = ("randomized", "exact")
NEIGHBORS = ("exact", "pynndescent")
RECONSTRUCT = (None, "factors", "layer")
#: batchelor's default number of PCs.
DEFAULT_D = 50


@dataclass(frozen=True)
class Options:
    """Everything but the merge-loop parameters."""

    d: int | None
    cos_norm: bool | None
    svd_solver: str
    neighbors: str
    reconstruct: str | None
    key_added: str
    seed: int


def seed_of(rng) -> int:
    """An integer seed from an int, a numpy Generator or None (None means 0: results stay reproducible)."""
    if rng is None:
        return 0
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**31 - 1))
    if is_int(rng) and rng >= 0:
        return int(rng)
    msg = f"rng must be a non-negative int seed, a numpy Generator or None, got {rng!r}"
    raise TypeError(msg)


def check_params(
    *, d, k, prop_k, ndist, cos_norm, min_batch_skip, svd_solver, neighbors, reconstruct, key_added, rng
) -> tuple[FastParams, Options]:
    """Check every scalar parameter; raise a ValueError/TypeError naming the first bad one."""
    if d is not None and (not is_int(d) or d < 1):
        msg = f"d must be None or a positive integer (number of principal components), got {d!r}"
        raise ValueError(msg)
    check_k("k", k)
    check_prop_k(prop_k)
    if not is_real(ndist) or ndist <= 0:
        msg = f"ndist must be a positive finite number, got {ndist!r}"
        raise ValueError(msg)
    if cos_norm is not None and not isinstance(cos_norm, bool | np.bool_):
        msg = f"cos_norm must be None, True or False, got {cos_norm!r}"
        raise TypeError(msg)
    if not is_real(min_batch_skip) or min_batch_skip < 0:
        msg = f"min_batch_skip must be a finite number >= 0, got {min_batch_skip!r}"
        raise ValueError(msg)
    if svd_solver not in SVD_SOLVERS:
        msg = f"svd_solver must be one of {SVD_SOLVERS}, got {svd_solver!r}"
        raise ValueError(msg)
    if neighbors not in NEIGHBORS:
        msg = f"neighbors must be one of {NEIGHBORS}, got {neighbors!r}"
        raise ValueError(msg)
    if reconstruct not in RECONSTRUCT:
        msg = f"reconstruct must be one of {RECONSTRUCT}, got {reconstruct!r}"
        raise ValueError(msg)
    if not isinstance(key_added, str) or not key_added:
        msg = f"key_added must be a non-empty string, got {key_added!r}"
        raise ValueError(msg)
    params = FastParams(
        k=int(k),
        prop_k=None if prop_k is None else float(prop_k),
        ndist=float(ndist),
        min_batch_skip=float(min_batch_skip),
    )
    options = Options(
        d=None if d is None else int(d),
        cos_norm=None if cos_norm is None else bool(cos_norm),
        svd_solver=svd_solver,
        neighbors=neighbors,
        reconstruct=reconstruct,
        key_added=key_added,
        seed=seed_of(rng),
    )
    return params, options
