"""Validation of :func:`mnnkit.fast_mnn`'s scalar parameters (before any data is touched)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnnkit._random import as_seed
from mnnkit._validation import check_choice, check_k, check_key_added, check_prop_k, check_real, is_int
from mnnkit.correction.fast._engine import FastParams

SVD_SOLVERS = ("randomized", "exact")
NEIGHBORS = ("auto", "exact", "partition", "pynndescent")
RECONSTRUCT = (None, "factors", "layer")
FLAVORS = ("batchelor", "robust")
PAIRINGS = ("mutual", "dual_softmax")
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


def check_params(
    *,
    d,
    k,
    prop_k,
    ndist,
    cos_norm,
    min_batch_skip,
    svd_solver,
    neighbors,
    reconstruct,
    key_added,
    rng,
    flavor="batchelor",
    pairing="mutual",
) -> tuple[FastParams, Options]:
    """Check every scalar parameter; raise a ValueError/TypeError naming the first bad one."""
    if d is not None and (not is_int(d) or d < 1):
        msg = f"d must be None or a positive integer (number of principal components), got {d!r}"
        raise ValueError(msg)
    check_k("k", k)
    check_prop_k(prop_k)
    check_real(ndist, "ndist", positive=True)
    if cos_norm is not None and not isinstance(cos_norm, bool | np.bool_):
        msg = f"cos_norm must be None, True or False, got {cos_norm!r}"
        raise TypeError(msg)
    check_real(min_batch_skip, "min_batch_skip", minimum=0.0)
    check_choice(svd_solver, "svd_solver", SVD_SOLVERS)
    check_choice(neighbors, "neighbors", NEIGHBORS)
    check_choice(reconstruct, "reconstruct", RECONSTRUCT)
    check_key_added(key_added)
    check_choice(flavor, "flavor", FLAVORS)
    check_choice(pairing, "pairing", PAIRINGS)
    if pairing != "mutual" and flavor != "robust":
        msg = f"pairing={pairing!r} needs flavor='robust' (flavor='batchelor' reproduces batchelor's MNN pairs)"
        raise ValueError(msg)
    seed = as_seed(rng)
    params = FastParams(
        k=int(k),
        prop_k=None if prop_k is None else float(prop_k),
        ndist=float(ndist),
        min_batch_skip=float(min_batch_skip),
        flavor=flavor,
        pairing=pairing,
    )
    options = Options(
        d=None if d is None else int(d),
        cos_norm=None if cos_norm is None else bool(cos_norm),
        svd_solver=svd_solver,
        neighbors=neighbors,
        reconstruct=reconstruct,
        key_added=key_added,
        seed=seed,
    )
    return params, options
