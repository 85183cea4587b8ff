"""Likelihood-ratio tests for nested maximum-likelihood fits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from mnnkit.stats._result import FitResult

__all__ = ["LikelihoodRatioTest", "likelihood_ratio_test"]

# (null, alternative) -> (extra parameters, is the null value on the boundary of the alternative?)
_NESTED = {
    ("poisson", "nb"): (1, True),  # alpha = 0
    ("poisson", "zip"): (1, True),  # pi = 0
    ("nb", "zinb"): (1, True),  # pi = 0
    ("zip", "zinb"): (1, True),  # alpha = 0
    ("exponential", "gamma"): (1, False),  # shape = 1, interior
}


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """Result of :func:`likelihood_ratio_test`.

    Attributes
    ----------
    statistic
        ``2 (loglik_alternative - loglik_null)``, clipped at 0.
    pvalue
        Asymptotic p-value under the null.
    df
        Number of extra parameters in the alternative.
    boundary
        Whether the boundary (mixture) null distribution was used.
    null_distribution
        Human-readable null distribution, e.g. ``"0.5*chi2(0) + 0.5*chi2(1)"``.
    """

    statistic: float
    pvalue: float
    df: int
    boundary: bool
    null_distribution: str


def lrt_pvalue(statistic: np.ndarray | float, df: int, boundary: bool) -> np.ndarray | float:
    """Asymptotic LRT p-value, vectorised over ``statistic``.

    With ``boundary=True`` the null is ``0.5 chi2(df - 1) + 0.5 chi2(df)`` (``chi2(0)`` is a
    point mass at 0, so a statistic of exactly 0 gets p = 1); otherwise ``chi2(df)``.
    """
    stat = np.asarray(statistic, dtype=np.float64)
    if boundary:
        lower = np.where(stat > 0, stats.chi2.sf(stat, df - 1) if df > 1 else 0.0, 1.0)
        p = 0.5 * lower + 0.5 * np.where(stat > 0, stats.chi2.sf(stat, df), 1.0)
    else:
        p = stats.chi2.sf(stat, df) if df > 0 else np.where(stat > 0, 0.0, 1.0)
    p = np.where(np.isnan(stat), np.nan, p)
    return float(p) if np.ndim(statistic) == 0 else p


def likelihood_ratio_test(
    null: FitResult, alternative: FitResult, *, df: int | None = None, boundary: bool | None = None
) -> LikelihoodRatioTest:
    """Likelihood-ratio test of a nested null model against a larger alternative.

    The statistic ``T = 2 (l_alt - l_null)`` is asymptotically ``chi2(df)`` under the null when
    the null value of the extra parameter lies in the *interior* of the alternative's parameter
    space (Wilks). Several count-model comparisons put it on the *boundary* instead: Poisson is
    NB with ``alpha = 0`` and ``alpha >= 0``; NB is ZINB with ``pi = 0`` and ``pi >= 0``. Then
    Wilks' theorem fails. Under the null the unconstrained estimate of the extra parameter
    is asymptotically normal around 0, and the constrained MLE is that estimate truncated at
    0: with probability 1/2 it is negative, the MLE sits on the boundary and ``T = 0`` exactly;
    with probability 1/2 it is positive and ``T`` behaves like the square of a standard normal.
    So ``T ~ 0.5 chi2(0) + 0.5 chi2(1)`` (Chernoff, 1954; Self & Liang, 1987), and the p-value
    of an observed ``T > 0`` is ``0.5 P(chi2(1) >= T)``: half the naive ``chi2(1)`` p-value, which
    would be conservative. For ``df`` extra parameters of which exactly one is on the boundary
    the mixture is ``0.5 chi2(df - 1) + 0.5 chi2(df)``.

    Known nested pairs (by ``FitResult.distribution``) are recognised automatically:
    Poisson < NB, Poisson < ZIP, NB < ZINB, ZIP < ZINB (boundary, df = 1) and
    exponential < gamma (interior, df = 1). Other pairs need ``df`` and ``boundary``; nesting
    is then the caller's responsibility.

    Parameters
    ----------
    null
        Fit of the restricted model.
    alternative
        Fit of the larger model to the same data.
    df
        Number of extra parameters; inferred for known pairs.
    boundary
        Whether the null value lies on the boundary of the alternative's parameter space;
        inferred for known pairs.

    Returns
    -------
    LikelihoodRatioTest
        Statistic, p-value, degrees of freedom and the null distribution used.

    Raises
    ------
    ValueError
        If the fits have different numbers of observations, the pair is unknown and
        ``df``/``boundary`` are not given, or the alternative's log-likelihood is clearly below the
        null's (not nested, or a fit did not converge).
    """
    if not isinstance(null, FitResult) or not isinstance(alternative, FitResult):
        msg = "null and alternative must be FitResult objects"
        raise TypeError(msg)
    if null.nobs != alternative.nobs:
        msg = f"null and alternative were fitted to different sample sizes ({null.nobs} vs {alternative.nobs})"
        raise ValueError(msg)
    known = _NESTED.get((null.distribution, alternative.distribution))
    if df is None or boundary is None:
        if known is None:
            msg = (
                f"{null.distribution!r} within {alternative.distribution!r} is not a known nested pair; "
                f"pass df= and boundary= explicitly. Known pairs: {sorted(_NESTED)}"
            )
            raise ValueError(msg)
        df = known[0] if df is None else df
        boundary = known[1] if boundary is None else boundary
    if isinstance(df, bool) or not isinstance(df, int | np.integer) or df < 1:
        msg = f"df must be a positive integer, got {df!r}"
        raise ValueError(msg)
    stat = 2.0 * (alternative.loglik - null.loglik)
    if stat < -1e-6 * (1.0 + abs(null.loglik)):
        msg = (
            f"The alternative's log-likelihood ({alternative.loglik:.6g}) is below the null's ({null.loglik:.6g}): "
            "the models are not nested or a fit did not converge"
        )
        raise ValueError(msg)
    stat = max(stat, 0.0)
    dist = f"0.5*chi2({df - 1}) + 0.5*chi2({df})" if boundary else f"chi2({df})"
    return LikelihoodRatioTest(
        statistic=stat,
        pvalue=float(lrt_pvalue(stat, int(df), bool(boundary))),
        df=int(df),
        boundary=bool(boundary),
        null_distribution=dist,
    )
