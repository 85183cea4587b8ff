"""Maximum-likelihood fits of continuous and binary distributions to one sample.

All functions take a 1-D array-like, copy it to float64 (``O(n)`` memory) and return a
:class:`~mnnkit.stats.FitResult`. Estimates are closed-form except the gamma shape (Newton).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import special

from mnnkit._validation import check_int
from mnnkit._warnings import BoundaryWarning, ConvergenceWarning
from mnnkit.stats._result import FitResult
from mnnkit.stats._validate import as_sample, check_tol

__all__ = ["fit_bernoulli", "fit_binomial", "fit_exponential", "fit_gamma", "fit_lognormal", "fit_normal"]

_LOG_2PI = math.log(2.0 * math.pi)


def _gaussian_fit(y: np.ndarray, name: str, what: str) -> tuple[float, float, float]:
    n = y.size
    mu = float(np.mean(y))
    sigma = math.sqrt(float(np.mean((y - mu) ** 2)))
    if sigma == 0.0:
        msg = f"{name} is constant{what}: the maximum-likelihood sigma is 0 and the likelihood is unbounded"
        raise ValueError(msg)
    loglik = -0.5 * n * (_LOG_2PI + 2.0 * math.log(sigma) + 1.0)
    return mu, sigma, loglik


def _gaussian_result(dist: str, mu: float, sigma: float, loglik: float, n: int) -> FitResult:
    cov = np.diag([sigma**2 / n, sigma**2 / (2.0 * n)])
    return FitResult(
        distribution=dist,
        params={"mu": mu, "sigma": sigma},
        se={"mu": sigma / math.sqrt(n), "sigma": sigma / math.sqrt(2.0 * n)},
        cov=cov,
        loglik=loglik,
        nobs=n,
    )


def fit_normal(x: Any) -> FitResult:
    """Fit a normal distribution N(mu, sigma^2) by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of finite reals with at least 2 distinct values. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.

    Returns
    -------
    FitResult
        Parameters ``mu`` (sample mean) and ``sigma`` (the MLE, i.e. the standard deviation with
        divisor ``n``, not ``n - 1``); standard errors ``sigma/sqrt(n)`` and ``sigma/sqrt(2n)``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, has fewer than 2 values, contains NaN/Inf or is constant.
    """
    y = as_sample(x, kind="real", min_size=2)
    mu, sigma, loglik = _gaussian_fit(y, "x", "")
    return _gaussian_result("normal", mu, sigma, loglik, y.size)


def fit_lognormal(x: Any) -> FitResult:
    """Fit a log-normal distribution (``log x ~ N(mu, sigma^2)``) by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of finite positive reals, not all equal, at least 2 values. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.

    Returns
    -------
    FitResult
        Parameters ``mu`` and ``sigma`` on the log scale (scipy's ``lognorm(s=sigma,
        scale=exp(mu))``); the log-likelihood is that of ``x`` (Jacobian ``-sum(log x)`` included).

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf or non-positive values, or is constant.
    """
    y = np.log(as_sample(x, kind="positive", min_size=2))
    mu, sigma, loglik = _gaussian_fit(y, "x", " (on the log scale)")
    return _gaussian_result("lognormal", mu, sigma, loglik - float(np.sum(y)), y.size)


def fit_exponential(x: Any) -> FitResult:
    """Fit an exponential distribution with density ``rate * exp(-rate x)`` by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of finite non-negative reals, not all zero. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.

    Returns
    -------
    FitResult
        Parameter ``rate = 1/mean(x)`` (scipy's ``expon(scale=1/rate)``) with standard error
        ``rate/sqrt(n)``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf or negative values, or is all zero.
    """
    y = as_sample(x, kind="nonnegative")
    n = y.size
    mean = float(np.mean(y))
    if mean == 0.0:
        msg = "x is all zero: the exponential rate MLE is infinite"
        raise ValueError(msg)
    rate = 1.0 / mean
    return FitResult(
        distribution="exponential",
        params={"rate": rate},
        se={"rate": rate / math.sqrt(n)},
        cov=np.array([[rate**2 / n]]),
        loglik=n * math.log(rate) - n,
        nobs=n,
    )


def fit_gamma(x: Any, *, tol: float = 1e-12, max_iter: int = 100) -> FitResult:
    """Fit a gamma distribution with shape ``a`` and rate ``b`` by maximum likelihood.

    The rate is profiled out (``b = a / mean(x)``) and the shape solves
    ``log a - digamma(a) = log(mean x) - mean(log x)`` by Newton's method from Minka's (2002)
    closed-form starting value; this usually converges in 3-5 steps.

    Parameters
    ----------
    x
        1-D array-like of finite positive reals, not all equal, at least 2 values. Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.
    tol
        Convergence tolerance on the relative change of the shape.
    max_iter
        Maximum number of Newton steps.

    Returns
    -------
    FitResult
        Parameters ``shape`` and ``rate`` (scipy's ``gamma(a=shape, scale=1/rate)``); standard
        errors from the observed information ``n [[trigamma(a), -1/b], [-1/b, a/b^2]]``.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D, contains NaN/Inf or non-positive values, or is constant (the shape
        MLE is then infinite).
    """
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    y = as_sample(x, kind="positive", min_size=2)
    n = y.size
    mean = float(np.mean(y))
    s = -float(np.mean(np.log(y / mean)))  # log(mean) - mean(log), >= 0 by Jensen
    if not s > 0.0:
        msg = "x is constant: the gamma shape MLE is infinite"
        raise ValueError(msg)
    a = (3.0 - s + math.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        f = math.log(a) - special.digamma(a) - s
        fprime = 1.0 / a - special.polygamma(1, a)
        a_new = a - f / fprime
        if not a_new > 0.0:
            a_new = a / 2.0
        done = abs(a_new - a) <= tol * a_new
        a = a_new
        if done:
            converged = True
            break
    if not converged:
        warnings.warn(f"fit_gamma did not converge in {max_iter} iterations.", ConvergenceWarning, stacklevel=2)
    rate = a / mean
    info = n * np.array([[special.polygamma(1, a), -1.0 / rate], [-1.0 / rate, a / rate**2]])
    cov = np.linalg.inv(info)
    sum_log = float(np.sum(np.log(y)))
    loglik = n * a * math.log(rate) - n * special.gammaln(a) + (a - 1.0) * sum_log - rate * mean * n
    return FitResult(
        distribution="gamma",
        params={"shape": float(a), "rate": float(rate)},
        se={"shape": math.sqrt(cov[0, 0]), "rate": math.sqrt(cov[1, 1])},
        cov=cov,
        loglik=float(loglik),
        nobs=n,
        converged=converged,
        n_iter=n_iter,
    )


def _binomial_result(dist: str, successes: float, trials: float, log_comb: float, nobs: int) -> FitResult:
    p = successes / trials
    loglik = log_comb + special.xlogy(successes, p) + special.xlogy(trials - successes, 1.0 - p)
    if 0.0 < p < 1.0:
        var = p * (1.0 - p) / trials
        boundary: tuple[str, ...] = ()
    else:
        var = math.nan
        boundary = ("p",)
        warnings.warn(
            f"The {dist} MLE p = {p:g} lies on the boundary of [0, 1] (no {'successes' if p == 0 else 'failures'}); "
            "its standard error is NaN because Wald theory does not apply there.",
            BoundaryWarning,
            stacklevel=3,
        )
    return FitResult(
        distribution=dist,
        params={"p": p},
        se={"p": math.sqrt(var)},
        cov=np.array([[var]]),
        loglik=float(loglik),
        nobs=nobs,
        at_boundary=boundary,
    )


def fit_bernoulli(x: Any) -> FitResult:
    """Fit a Bernoulli distribution by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of 0/1 values (booleans accepted). Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.

    Returns
    -------
    FitResult
        Parameter ``p = mean(x)`` with standard error ``sqrt(p (1 - p) / n)``. If all values are
        equal, ``p`` is 0 or 1 (on the boundary), its standard error is NaN and a
        :class:`BoundaryWarning` is emitted.

    Raises
    ------
    ValueError
        If ``x`` is not 1-D or contains values other than 0 and 1.
    """
    y = as_sample(x, kind="binary")
    return _binomial_result("bernoulli", float(np.sum(y)), float(y.size), 0.0, y.size)


def fit_binomial(x: Any, *, trials: Any) -> FitResult:
    """Fit a binomial distribution with known numbers of trials by maximum likelihood.

    Parameters
    ----------
    x
        1-D array-like of success counts (non-negative integers). Any numeric dtype (list, NumPy array,
        pandas Series). Copied to float64 (``O(n)`` memory); the input is not modified.
    trials
        Number of trials: a positive integer for all observations or a 1-D array-like of
        positive integers of the same length as ``x``, with ``x <= trials``.

    Returns
    -------
    FitResult
        Parameter ``p = sum(x) / sum(trials)`` with standard error ``sqrt(p (1 - p) / sum(trials))``.
        ``p`` at 0 or 1 gives a NaN standard error and a :class:`BoundaryWarning`.

    Raises
    ------
    ValueError
        If ``x`` or ``trials`` are not non-negative integers, lengths differ, or ``x > trials``.
    """
    y = as_sample(x, kind="count")
    if np.ndim(trials) == 0:
        trials = np.full(y.shape, trials)
    t = as_sample(trials, kind="count", name="trials")
    if t.size != y.size:
        msg = f"trials must be a scalar or have the same length as x ({y.size}), got {t.size}"
        raise ValueError(msg)
    if np.any(t == 0):
        msg = "trials must be positive integers"
        raise ValueError(msg)
    over = y > t
    if over.any():
        i = int(np.flatnonzero(over)[0])
        msg = f"x must not exceed trials; x[{i}] = {y[i]:g} > trials[{i}] = {t[i]:g}"
        raise ValueError(msg)
    log_comb = float(np.sum(special.gammaln(t + 1) - special.gammaln(y + 1) - special.gammaln(t - y + 1)))
    return _binomial_result("binomial", float(np.sum(y)), float(np.sum(t)), log_comb, y.size)
