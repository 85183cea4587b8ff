"""Helpers and fixtures shared by mnnkit's test modules, defined once.

Test modules import what they need explicitly (``from tests.conftest import close, num_hessian``)
and never import one another.

Contents
--------
Comparisons
    :data:`TOL` and :func:`close`: our array against a reference (PyTorch tensor or array) at the
    tolerance of its floating-point type.
Numerical derivatives
    :func:`num_hessian`: a central-difference Hessian, the oracle for the standard errors of the
    ``stats`` fits.
Data makers
    The section at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
import pytest

# --- Comparisons ---------------------------------------------------------------------------------

#: Relative (and absolute) tolerance of a comparison against a reference, by floating-point type.
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def close(ours, theirs, dtype, what: str = "", *, scaled: bool = False) -> None:
    """Assert that ``ours`` has type ``dtype`` and matches ``theirs`` within ``TOL[dtype]``.

    Parameters
    ----------
    ours
        Our result (array-like).
    theirs
        The reference: a PyTorch tensor (detached here) or anything :func:`numpy.asarray` accepts.
    dtype
        ``np.float32`` or ``np.float64``: the type ``ours`` must have, and the key of :data:`TOL`.
    what
        Named in the failure message.
    scaled
        Scale the absolute tolerance by the largest entry of ``theirs`` (when above 1). For results
        that chain several operations (a block of batch norms, say), whose float32 rounding grows
        with the largest entries.
    """
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert np.asarray(ours).dtype == np.dtype(dtype), what
    atol = TOL[dtype] * (max(1.0, float(np.abs(theirs).max())) if scaled else 1.0)
    np.testing.assert_allclose(ours, theirs, rtol=TOL[dtype], atol=atol, err_msg=what)


# --- Numerical derivatives -----------------------------------------------------------------------


def num_hessian(f: Callable[[np.ndarray], float], theta, rel_step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (independent of the code under test).

    The step of parameter ``i`` is ``rel_step * max(|theta_i|, 1e-3)``: relative to the parameter,
    with a floor so that parameters at or near zero still get a usable step.
    """
    theta = np.asarray(theta, dtype=float)
    k = theta.size
    h = rel_step * np.maximum(np.abs(theta), 1e-3)
    out = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i] = h[i]
            ej[j] = h[j]
            out[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)) / (
                4 * h[i] * h[j]
            )
    return out


# --- Data makers ---------------------------------------------------------------------------------
# Shared synthetic data sets (batches, AnnData objects) go here.


def three_batches(seed: int = 0, n=(50, 40, 45), genes: int = 24) -> list[np.ndarray]:
    """Three batches sharing two cell types, each batch with its own gene-wise shift."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, size=(2, genes)) + 4
    out = []
    for size in n:
        shift = rng.normal(0, 0.7, size=genes)
        types = rng.integers(0, 2, size=size)
        out.append(np.clip(centres[types] + shift + rng.normal(0, 0.4, size=(size, genes)), 0, None))
    return out


def to_adata(batches: list[np.ndarray]) -> ad.AnnData:
    """One AnnData of the batches in order: ``obs["batch"]`` categorical ``b0, b1, ...``, cells ``c0, c1, ...``."""
    x = np.vstack(batches)
    names = [f"b{i}" for i, b in enumerate(batches) for _ in range(b.shape[0])]
    obs = pd.DataFrame({"batch": pd.Categorical(names)}, index=[f"c{i}" for i in range(x.shape[0])])
    return ad.AnnData(x, obs=obs)


def make_batches(sizes=(70, 60, 80, 50), genes=30, seed=0, shift=1.0) -> ad.AnnData:
    """Batches of four cell types, batch shifts growing with position; ``var["hvg"]`` marks 2/3 of the genes."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(2.0, 0.7, size=(4, genes))
    blocks, labels = [], []
    for b, n in enumerate(sizes):
        types = rng.integers(0, 4, n)
        x = centres[types] + rng.normal(0, shift * (b + 1) / len(sizes), genes) + rng.normal(0, 0.3, (n, genes))
        blocks.append(np.clip(x, 0, None))
        labels += [f"b{b}"] * n
    obs = pd.DataFrame({"batch": pd.Categorical(labels)}, index=[f"c{i}" for i in range(sum(sizes))])
    var = pd.DataFrame(index=[f"g{g}" for g in range(genes)])
    var["hvg"] = np.arange(genes) % 3 != 0
    return ad.AnnData(np.vstack(blocks), obs=obs, var=var)


@pytest.fixture
def no_pairs_in_step_two(monkeypatch):
    """Make the fast method's exact search find no MNN pairs in its second merge step (a skipped step)."""
    from mnnkit.correction.fast._search import ExactSearch

    real = ExactSearch.mnn_pairs
    calls = []

    def patched(self, *args):
        calls.append(1)
        pairs = real(self, *args)
        return pairs[:0] if len(calls) == 2 else pairs

    monkeypatch.setattr(ExactSearch, "mnn_pairs", patched)
