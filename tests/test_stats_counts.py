"""Count fits (Poisson, NB, ZIP, ZINB) against statsmodels, scipy.stats and numerical Hessians."""

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm  # test-only oracle
from scipy import stats
from scipy.special import expit
from statsmodels.discrete import count_model

from mnnkit.stats import BoundaryWarning, ConvergenceWarning, fit_nb, fit_poisson, fit_zinb, fit_zip
from tests.conftest import num_hessian

REL = 1e-4


def nb_draw(rng, mu, alpha, size):
    return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=size)


def nb_logpmf(x, mu, alpha):
    return stats.nbinom.logpmf(x, 1 / alpha, 1 / (1 + alpha * mu))


def zi_logpmf(x, logpmf, pi):
    # zero-inflated log-pmf from a base log-pmf (scipy), independent of the code under test
    base = logpmf(x)
    return np.where(x == 0, np.log(pi + (1 - pi) * np.exp(base)), np.log1p(-pi) + base)


def sm_fit(model, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = model.fit(disp=0, method="nm", maxiter=20000, **kw)
        start = model.fit(start_params=start.params, disp=0, method="bfgs", maxiter=5000, gtol=1e-10)
        return model.fit(start_params=start.params, disp=0, method="newton", maxiter=200, tol=1e-14)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_poisson_closed_form(rng):
    x = rng.poisson(3.3, size=700)
    res = fit_poisson(x)
    mu = x.mean()
    assert res.params["mu"] == pytest.approx(mu, rel=1e-14)
    assert res.se["mu"] == pytest.approx(math.sqrt(mu / 700), rel=1e-12)
    assert res.loglik == pytest.approx(stats.poisson.logpmf(x, mu).sum(), rel=1e-12)
    assert res.converged and res.n_iter == 0


# (mu, alpha, n): typical scRNA (small mean, large dispersion), near-Poisson, and large counts
# (above the direct-summation cutoff 64 and the histogram buffer 1024)
NB_CASES = [(0.3, 2.0, 3000), (5.0, 0.5, 800), (20.0, 0.01, 3000), (400.0, 0.2, 400), (3000.0, 0.05, 300)]


@pytest.mark.parametrize(("mu", "alpha", "n"), NB_CASES)
def test_nb_against_statsmodels(rng, mu, alpha, n):
    x = nb_draw(rng, mu, alpha, n)
    res = fit_nb(x)
    ref = sm_fit(sm.NegativeBinomial(x, np.ones(n)))
    m, a = math.exp(ref.params[0]), ref.params[1]
    np.testing.assert_allclose([res.params["mu"], res.params["alpha"]], [m, a], rtol=REL)
    # statsmodels reports SEs of (log mu, alpha); the delta method is exact for the observed
    # information at the optimum (the score vanishes there)
    np.testing.assert_allclose([res.se["mu"], res.se["alpha"]], [m * ref.bse[0], ref.bse[1]], rtol=REL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-9)
    # log-likelihood against scipy, SEs against a numerical Hessian of scipy's log-pmf
    theta = [res.params["mu"], res.params["alpha"]]
    assert res.loglik == pytest.approx(nb_logpmf(x, *theta).sum(), rel=1e-10)
    hess = num_hessian(lambda t: nb_logpmf(x, t[0], t[1]).sum(), theta)
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(-hess))), [res.se["mu"], res.se["alpha"]], rtol=REL)
    # closed forms: mu-hat is the sample mean, SE(mu) = sqrt(mu (1 + alpha mu) / n), orthogonality
    assert res.params["mu"] == pytest.approx(x.mean(), rel=1e-14)
    assert res.se["mu"] == pytest.approx(math.sqrt(x.mean() * (1 + theta[1] * x.mean()) / n), rel=1e-12)
    assert abs(res.cov[0, 1]) <= 1e-8 * math.sqrt(res.cov[0, 0] * res.cov[1, 1])


def test_nb_underdispersed_is_poisson_boundary(rng):
    x = rng.binomial(10, 0.5, size=500)  # variance 2.5 < mean 5
    with pytest.warns(BoundaryWarning, match="alpha = 0"):
        res = fit_nb(x)
    assert res.params["alpha"] == 0.0
    assert math.isnan(res.se["alpha"])
    assert res.at_boundary == ("alpha",)
    assert res.loglik == pytest.approx(stats.poisson.logpmf(x, x.mean()).sum(), rel=1e-12)
    assert res.se["mu"] == pytest.approx(math.sqrt(x.mean() / 500), rel=1e-12)
    # constant nonzero counts: no overdispersion either
    with pytest.warns(BoundaryWarning):
        assert fit_nb(np.full(30, 4)).params == {"mu": 4.0, "alpha": 0.0}


@pytest.mark.parametrize(("mu", "pi", "n"), [(3.0, 0.3, 1500), (0.8, 0.5, 4000), (150.0, 0.1, 500)])
def test_zip_against_statsmodels(rng, mu, pi, n):
    x = rng.poisson(mu, size=n) * (rng.random(n) >= pi)
    res = fit_zip(x)
    ones = np.ones((n, 1))
    ref = sm_fit(count_model.ZeroInflatedPoisson(x, ones, exog_infl=ones))
    pi_ref, mu_ref = expit(ref.params[0]), math.exp(ref.params[1])
    np.testing.assert_allclose([res.params["mu"], res.params["pi"]], [mu_ref, pi_ref], rtol=REL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-9)
    # statsmodels' ZIP bse is not the exact observed information, so SEs are checked against a
    # numerical Hessian of scipy's log-pmf in (mu, pi)
    theta = [res.params["mu"], res.params["pi"]]

    def ll(t):
        return zi_logpmf(x, lambda y: stats.poisson.logpmf(y, t[0]), t[1]).sum()

    assert res.loglik == pytest.approx(ll(theta), rel=1e-10)
    se = np.sqrt(np.diag(np.linalg.inv(-num_hessian(ll, theta))))
    np.testing.assert_allclose([res.se["mu"], res.se["pi"]], se, rtol=REL)
    assert res.converged


ZINB_CASES = [(4.0, 0.5, 0.25, 2000), (1.5, 1.5, 0.4, 4000), (80.0, 0.1, 0.2, 800)]


@pytest.mark.parametrize(("mu", "alpha", "pi", "n"), ZINB_CASES)
def test_zinb_against_statsmodels(rng, mu, alpha, pi, n):
    x = nb_draw(rng, mu, alpha, n) * (rng.random(n) >= pi)
    res = fit_zinb(x)
    ones = np.ones((n, 1))
    # crude moment-based start (zero fraction, mean of the positives) so statsmodels' optimiser
    # also copes with large means
    start = [np.log((x == 0).mean() / (x > 0).mean()), np.log(x[x > 0].mean()), 1.0]
    ref = sm_fit(count_model.ZeroInflatedNegativeBinomialP(x, ones, exog_infl=ones, p=2), start_params=start)
    pi_ref, mu_ref, a_ref = expit(ref.params[0]), math.exp(ref.params[1]), ref.params[2]
    np.testing.assert_allclose(
        [res.params["mu"], res.params["alpha"], res.params["pi"]], [mu_ref, a_ref, pi_ref], rtol=REL
    )
    se_ref = [mu_ref * ref.bse[1], ref.bse[2], pi_ref * (1 - pi_ref) * ref.bse[0]]
    np.testing.assert_allclose([res.se["mu"], res.se["alpha"], res.se["pi"]], se_ref, rtol=REL)
    assert res.loglik == pytest.approx(ref.llf, rel=1e-9)
    theta = [res.params["mu"], res.params["alpha"], res.params["pi"]]

    def ll(t):
        return zi_logpmf(x, lambda y: nb_logpmf(y, t[0], t[1]), t[2]).sum()

    assert res.loglik == pytest.approx(ll(theta), rel=1e-10)
    se = np.sqrt(np.diag(np.linalg.inv(-num_hessian(ll, theta))))
    np.testing.assert_allclose([res.se["mu"], res.se["alpha"], res.se["pi"]], se, rtol=REL)
    assert res.converged and res.n_iter > 0


def test_zero_inflated_boundaries(rng):
    # NB data without excess zeros: ZINB stops at pi = 0 and equals the NB fit
    x = nb_draw(rng, 3.0, 0.4, 1000)
    nb = fit_nb(x)
    with pytest.warns(BoundaryWarning, match="pi = 0"):
        zinb = fit_zinb(x)
    assert zinb.at_boundary == ("pi",)
    assert zinb.params["pi"] == 0.0 and math.isnan(zinb.se["pi"])
    assert zinb.params["alpha"] == nb.params["alpha"]
    assert zinb.loglik == nb.loglik
    # fewer zeros than a Poisson with the same mean: ZIP stops at pi = 0
    with pytest.warns(BoundaryWarning):
        zip_ = fit_zip(rng.binomial(6, 0.5, size=500))
    assert zip_.params["pi"] == 0.0
    # zero-inflated, underdispersed counts fitted with ZINB: alpha = 0 and the fit is the ZIP fit
    x = rng.binomial(20, 0.5, size=3000) * (rng.random(3000) >= 0.3)
    with pytest.warns(BoundaryWarning, match="alpha = 0"):
        zinb = fit_zinb(x)
    zip_ = fit_zip(x)
    assert zinb.at_boundary == ("alpha",)
    assert zinb.params["alpha"] == 0.0 and math.isnan(zinb.se["alpha"])
    assert zinb.params["mu"] == pytest.approx(zip_.params["mu"], rel=1e-8)
    assert zinb.params["pi"] == pytest.approx(zip_.params["pi"], rel=1e-8)
    assert zinb.se["mu"] == pytest.approx(zip_.se["mu"], rel=1e-6)
    assert zinb.loglik == pytest.approx(zip_.loglik, rel=1e-12)


def test_all_zero_counts():
    with pytest.warns(BoundaryWarning, match="mu = 0"):
        res = fit_poisson(np.zeros(10))
    assert res.params["mu"] == 0.0 and math.isnan(res.se["mu"]) and res.loglik == 0.0
    for func in (fit_nb, fit_zip, fit_zinb):
        with pytest.raises(ValueError, match="all zero"):
            func(np.zeros(10, dtype=int))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        ([1, 2, -1], "negative count"),
        ([1.0, 2.5], "non-integer count"),
        ([1.0, np.nan], "non-finite"),
        ([1.0, np.inf], "non-finite"),
        ([[1, 2]], "one-dimensional"),
    ],
)
@pytest.mark.parametrize("func", [fit_poisson, fit_nb, fit_zip, fit_zinb])
def test_bad_counts(func, x, match):
    with pytest.raises(ValueError, match=match):
        func(x)


def test_not_converged_warns(rng):
    x = nb_draw(rng, 3.0, 0.7, 200) * (rng.random(200) >= 0.3)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        res = fit_zinb(x, max_iter=2)
    assert not res.converged
    with pytest.warns(ConvergenceWarning):
        assert not fit_nb(nb_draw(rng, 3.0, 0.7, 200), max_iter=1).converged


def test_accepts_lists_ints_and_floats_identically(rng):
    x = nb_draw(rng, 2.0, 1.0, 300)
    a = fit_nb(x)
    b = fit_nb(x.astype(np.float32))
    c = fit_nb(list(x))
    assert a.params == b.params == c.params
    assert a.se == b.se == c.se
