"""Likelihood-ratio tests: statistics against scipy, and the boundary mixture null by simulation."""

import warnings

import numpy as np
import pytest
from anndata import AnnData
from scipy import stats

from mnnkit.stats import (
    BoundaryWarning,
    LikelihoodRatioTest,
    fit_exponential,
    fit_gamma,
    fit_genes,
    fit_nb,
    fit_normal,
    fit_poisson,
    fit_zinb,
    fit_zip,
    likelihood_ratio_test,
)
from mnnkit.stats._lrt import lrt_pvalue


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def test_poisson_vs_nb_uses_half_chi2(rng):
    x = rng.negative_binomial(5, 0.5, size=150)
    pois, nb = fit_poisson(x), fit_nb(x)
    res = likelihood_ratio_test(pois, nb)
    assert isinstance(res, LikelihoodRatioTest)
    ll_p = stats.poisson.logpmf(x, x.mean()).sum()
    a, m = nb.params["alpha"], nb.params["mu"]
    ll_nb = stats.nbinom.logpmf(x, 1 / a, 1 / (1 + a * m)).sum()
    assert res.statistic == pytest.approx(2 * (ll_nb - ll_p), rel=1e-9)
    assert res.pvalue == pytest.approx(0.5 * stats.chi2.sf(res.statistic, 1), rel=1e-12)
    assert (res.df, res.boundary, res.null_distribution) == (1, True, "0.5*chi2(0) + 0.5*chi2(1)")


def test_boundary_estimate_gives_p_one(rng):
    x = rng.binomial(6, 0.5, size=200)  # underdispersed: alpha-hat = 0, pi-hat = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        pairs = [(fit_poisson(x), fit_nb(x)), (fit_poisson(x), fit_zip(x)), (fit_nb(x), fit_zinb(x))]
    for null, alt in pairs:
        res = likelihood_ratio_test(null, alt)
        assert res.statistic == 0.0
        assert res.pvalue == 1.0


def test_zero_inflation_tests(rng):
    x = rng.negative_binomial(2, 0.4, size=800) * (rng.random(800) >= 0.2)
    res = likelihood_ratio_test(fit_nb(x), fit_zinb(x))
    assert res.boundary and res.df == 1
    assert res.pvalue == pytest.approx(0.5 * stats.chi2.sf(res.statistic, 1), rel=1e-12)
    assert res.pvalue < 1e-6
    res = likelihood_ratio_test(fit_zip(x), fit_zinb(x))  # alpha = 0 boundary
    assert res.boundary and res.pvalue < 1e-6


def test_exponential_vs_gamma_interior(rng):
    x = rng.gamma(1.3, 2.0, size=300)
    g = fit_gamma(x)
    res = likelihood_ratio_test(fit_exponential(x), g)
    ll_e = stats.expon.logpdf(x, scale=x.mean()).sum()
    ll_g = stats.gamma.logpdf(x, g.params["shape"], scale=1 / g.params["rate"]).sum()
    assert res.statistic == pytest.approx(2 * (ll_g - ll_e), rel=1e-8)
    assert not res.boundary
    assert res.pvalue == pytest.approx(stats.chi2.sf(res.statistic, 1), rel=1e-10)


def test_explicit_df_and_mixture_formula(rng):
    a = fit_normal(rng.normal(size=50))
    b = fit_normal(rng.normal(size=50) * 1.5)
    if b.loglik < a.loglik:
        a, b = b, a
    res = likelihood_ratio_test(a, b, df=2, boundary=True)
    t = 2 * (b.loglik - a.loglik)
    assert res.pvalue == pytest.approx(0.5 * stats.chi2.sf(t, 1) + 0.5 * stats.chi2.sf(t, 2), rel=1e-12)
    assert res.null_distribution == "0.5*chi2(1) + 0.5*chi2(2)"
    res = likelihood_ratio_test(a, b, df=3, boundary=False)
    assert res.pvalue == pytest.approx(stats.chi2.sf(t, 3), rel=1e-12)


def test_lrt_pvalue_vectorised():
    t = np.array([0.0, 0.3, 2.7, 9.0, np.nan])
    p = lrt_pvalue(t, 1, True)
    np.testing.assert_allclose(p[:4], [1.0, *(0.5 * stats.chi2.sf(t[1:4], 1))], rtol=1e-14)
    assert np.isnan(p[4])
    assert lrt_pvalue(2.7, 1, True) == pytest.approx(0.5 * stats.chi2.sf(2.7, 1))


def test_lrt_errors(rng):
    x = rng.poisson(2.0, size=100)
    with pytest.raises(ValueError, match="sample sizes"):
        likelihood_ratio_test(fit_poisson(x), fit_nb(rng.negative_binomial(3, 0.5, size=60)))
    with pytest.raises(ValueError, match="not a known nested pair"):
        likelihood_ratio_test(fit_normal(x), fit_gamma(x + 1.0))
    y = rng.negative_binomial(2, 0.3, size=100)
    with pytest.raises(ValueError, match="below the null"):
        likelihood_ratio_test(fit_nb(y), fit_poisson(y), df=1, boundary=True)
    with pytest.raises(ValueError, match="df"):
        likelihood_ratio_test(fit_poisson(y), fit_nb(y), df=0)
    with pytest.raises(TypeError, match="FitResult"):
        likelihood_ratio_test(1.0, fit_nb(y))


def test_boundary_null_distribution_by_simulation():
    """Under Poisson data about half the NB and ZIP fits sit at the boundary (T = 0), and the
    mixture p-value rejects at its nominal level; the naive chi2(1) p-value would reject about
    half as often."""
    rng = np.random.default_rng(5)
    adata = AnnData(X=rng.poisson(3.0, size=(300, 4000)).astype(np.float64))
    fit_genes(adata, layer=None, distribution="nb")
    fit_genes(adata, layer=None, distribution="zip")
    for col in ("nb_overdispersion_pval", "zip_zero_inflation_pval"):
        p = adata.var[col].to_numpy()
        assert 0.45 <= np.mean(p == 1.0) <= 0.56, col
        assert 0.035 <= np.mean(p < 0.05) <= 0.065, col
        assert 0.004 <= np.mean(p < 0.01) <= 0.017, col
        naive = np.where(p < 1.0, 2 * p, 1.0)  # chi2(1) tail = twice the mixture tail for T > 0
        assert np.mean(naive < 0.05) < 0.035, col
