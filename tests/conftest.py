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

import numpy as np

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
