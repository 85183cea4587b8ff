"""Maximum-likelihood fits of count distributions (Poisson, NB, ZIP, ZINB) to one sample.

The sample is reduced to a histogram of its distinct positive values (``O(n)`` time for
``numpy.unique``, ``O(distinct values)`` afterwards) and handed to the same Numba kernels
that :func:`~mnnkit.stats.fit_genes` runs per gene, so the single-sample and per-gene results
are identical.

Negative binomial parametrisation (NB2): mean ``mu`` and dispersion ``alpha >= 0`` with

    Var(X) = mu + alpha mu^2,      P(X = 0) = (1 + alpha mu)^(-1/alpha).

``alpha = 1/theta`` where ``theta`` is R's ``size`` and scipy's ``nbinom`` ``n``
(``nbinom(n=1/alpha, p=1/(1 + alpha mu))``); statsmodels' ``NegativeBinomial`` uses the same
``alpha``. ``alpha = 0`` is the Poisson distribution, the boundary of the parameter space.
Zero-inflated models mix a point mass at zero (probability ``pi``) with the count model.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mnnkit._validation import check_int
from mnnkit._warnings import BoundaryWarning, ConvergenceWarning
from mnnkit.stats import _kernels as K
from mnnkit.stats._result import FitResult
from mnnkit.stats._validate import as_sample, check_tol

__all__ = ["fit_nb", "fit_poisson", "fit_zinb", "fit_zip"]

_NAMES = {K.POISSON: "poisson", K.NB: "nb", K.ZIP: "zip", K.ZINB: "zinb"}
_PARAMS = {K.POISSON: ("mu",), K.NB: ("mu", "alpha"), K.ZIP: ("mu", "pi"), K.ZINB: ("mu", "alpha", "pi")}
_SLOT = {"mu": 0, "alpha": 1, "pi": 2}
_BOUNDARY_TEXT = {
    "mu": "mu = 0 (all counts are zero)",
    "alpha": "alpha = 0 (no overdispersion: the sample variance does not exceed the mean)",
    "pi": "pi = 0 (no excess zeros relative to the count model)",
}


def histogram(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive values (int64, increasing) and their frequencies (float64)."""
    values, freqs = np.unique(counts, return_counts=True)
    keep = values > 0
    return values[keep].astype(np.int64), freqs[keep].astype(np.float64)


def _fit_counts(x: Any, model: int, tol: float, max_iter: int) -> FitResult:
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    y = as_sample(x, kind="count")
    name = _NAMES[model]
    values, freqs = histogram(y)
    if values.size == 0 and model != K.POISSON:
        msg = f"x is all zero: the {name} parameters other than the mean are not identifiable"
        raise ValueError(msg)
    params, cov, loglik, _, n_iter, converged, flags = K.fit_histogram(
        values, freqs, values.size, float(y.size), model, tol, max_iter
    )
    names = _PARAMS[model]
    slots = [_SLOT[p] for p in names]
    boundary = []
    if flags & K.ALL_ZERO:
        boundary.append("mu")
    if flags & K.ALPHA_AT_ZERO:
        boundary.append("alpha")
    if flags & K.PI_AT_ZERO:
        boundary.append("pi")
    if boundary:
        what = "; ".join(_BOUNDARY_TEXT[p] for p in boundary)
        warnings.warn(
            f"fit_{name}: the MLE lies on the boundary of the parameter space ({what}). "
            "The standard error of that parameter is NaN because Wald theory does not apply there; "
            "use likelihood_ratio_test against the nested model instead.",
            BoundaryWarning,
            stacklevel=3,
        )
    if not converged:
        warnings.warn(f"fit_{name} did not converge in {max_iter} iterations.", ConvergenceWarning, stacklevel=3)
    sub = cov[np.ix_(slots, slots)]
    return FitResult(
        distribution=name,
        params={p: float(params[s]) for p, s in zip(names, slots, strict=True)},
        se={p: math.sqrt(sub[i, i]) if sub[i, i] >= 0 else math.nan for i, p in enumerate(names)},
        cov=sub,
        loglik=float(loglik),
        nobs=int(y.size),
        converged=bool(converged),
        n_iter=int(n_iter),
        at_boundary=tuple(boundary),
    )


def fit_poisson(x: Any) -> FitResult:
    """Fit a Poisson distribution by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of non-negative integer counts. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 and reduced to a histogram of its distinct values
        (``O(n)`` memory); the input is not modified.

    Returns
    -------
    FitResult
        Parameter ``mu = mean(x)`` with standard error ``sqrt(mu / n)``. An all-zero sample gives
        ``mu = 0`` on the boundary, a NaN standard error and a :class:`BoundaryWarning`.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or contains NaN/Inf, negative or non-integer values.
    """
    return _fit_counts(x, K.POISSON, 1e-10, 1)


def fit_nb(x: Any, *, tol: float = 1e-10, max_iter: int = 1000) -> FitResult:
    """Fit a negative binomial (NB2) distribution by maximum likelihood.

    Parametrisation: mean ``mu`` and dispersion ``alpha`` with ``Var = mu + alpha mu^2``
    (``alpha = 1/theta``; scipy ``nbinom(n=1/alpha, p=1/(1 + alpha mu))``).

    The mean MLE is the sample mean for every ``alpha``, and the two parameters are
    orthogonal at the optimum (zero cross term in the observed information), so the fit is a
    one-dimensional safeguarded Newton iteration in ``log alpha``. A finite positive ``alpha``
    exists iff the sample variance (divisor ``n``) exceeds the mean (Levin & Reeds, 1977);
    otherwise ``alpha = 0`` (the Poisson limit) is returned with a NaN standard error and a
    :class:`BoundaryWarning`.

    Parameters
    ----------
    x
        1-D array-like of non-negative integer counts, not all zero. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 and reduced to a histogram of its distinct values
        (``O(n)`` memory); the input is not modified.
    tol
        Convergence tolerance on the change in ``log alpha``.
    max_iter
        Maximum number of Newton/bisection steps.

    Returns
    -------
    FitResult
        Parameters ``mu``, ``alpha``; ``se["mu"] = sqrt(mu (1 + alpha mu) / n)``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf, negative or non-integer values, or is all zero
        (the dispersion is then not identifiable).
    """
    return _fit_counts(x, K.NB, tol, max_iter)


def fit_zip(x: Any, *, tol: float = 1e-10, max_iter: int = 1000) -> FitResult:
    """Fit a zero-inflated Poisson distribution by maximum likelihood (EM, then Newton).

    ``P(0) = pi + (1 - pi) exp(-mu)``, ``P(k) = (1 - pi) Poisson(k; mu)`` for ``k > 0``.

    The EM algorithm treats "structural zero" as a latent indicator: the E-step gives each zero
    the posterior probability ``w = pi / (pi + (1 - pi) exp(-mu))`` of being structural, the
    M-step sets ``pi = n0 w / n`` and ``mu = sum(x) / (n - n0 w)``. EM starts from the Poisson
    fit with ``pi`` matching the observed zero fraction and is accelerated by SQUAREM (Varadhan &
    Roland, 2008: squared extrapolation of two EM steps, back-tracked so the log-likelihood never
    decreases), which matters on the flat ridges where plain EM crawls for thousands of
    iterations. Once the log-likelihood changes by less than 1e-8 (relative), Newton's method on
    the observed likelihood finishes the job (plain EM continues if Newton fails). If
    the zeros are not in excess of the Poisson fit (the score for ``pi`` at 0 is not positive),
    the MLE is ``pi = 0`` (boundary; NaN standard error, :class:`BoundaryWarning`).

    Parameters
    ----------
    x
        1-D array-like of non-negative integer counts, not all zero, as for :func:`fit_nb`.
    tol
        Convergence tolerance on the relative parameter change of the final Newton steps.
    max_iter
        Maximum number of EM updates (Newton steps count towards it too).

    Returns
    -------
    FitResult
        Parameters ``mu`` (mean of the Poisson component) and ``pi`` (zero-inflation probability).

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf, negative or non-integer values, or is all zero.
    """
    return _fit_counts(x, K.ZIP, tol, max_iter)


def fit_zinb(x: Any, *, tol: float = 1e-10, max_iter: int = 1000) -> FitResult:
    """Fit a zero-inflated negative binomial (NB2) distribution by maximum likelihood.

    ``P(0) = pi + (1 - pi) (1 + alpha mu)^(-1/alpha)``, ``P(k) = (1 - pi) NB(k; mu, alpha)``.
    EM over the structural-zero indicator as in :func:`fit_zip` (SQUAREM-accelerated, Newton
    polish); the M-step is a weighted NB fit (closed-form mean, Newton for ``alpha`` with the
    zeros down-weighted by ``1 - w``). ``pi = 0`` is returned (boundary) when the NB fit already
    explains the zeros. Otherwise EM runs from two starts, the NB fit and the ZIP fit, and the
    higher likelihood wins: the ZINB likelihood often has a flat ridge between the NB face
    (``pi = 0``) and the ZIP face (``alpha = 0``) along which EM from one end crawls. ``alpha``
    ends at exactly 0 (the ZIP fit, boundary) when the nonzero counts are not overdispersed.

    Parameters
    ----------
    x
        1-D array-like of non-negative integer counts, not all zero, as for :func:`fit_nb`.
    tol
        Convergence tolerance on the relative parameter change.
    max_iter
        Maximum number of EM updates (Newton steps count towards it too).

    Returns
    -------
    FitResult
        Parameters ``mu``, ``alpha`` (of the NB component) and ``pi``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf, negative or non-integer values, or is all zero.
    """
    return _fit_counts(x, K.ZINB, tol, max_iter)
