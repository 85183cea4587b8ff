"""Continuous and binary fits against scipy.stats fits, closed forms and numerical Hessians."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from mnnkit.stats import (
    BoundaryWarning,
    FitResult,
    fit_bernoulli,
    fit_binomial,
    fit_exponential,
    fit_gamma,
    fit_lognormal,
    fit_normal,
)
from tests.conftest import num_hessian

REL = 1e-4


def se_from(f, theta):
    return np.sqrt(np.diag(np.linalg.inv(-num_hessian(f, theta))))


def assert_close(result, names, params, se, loglik):
    assert tuple(result.params) == tuple(names)
    np.testing.assert_allclose([result.params[k] for k in names], params, rtol=REL)
    np.testing.assert_allclose([result.se[k] for k in names], se, rtol=REL)
    np.testing.assert_allclose(np.sqrt(np.diag(result.cov)), se, rtol=REL)
    assert result.loglik == pytest.approx(loglik, rel=1e-10)


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def test_normal(rng):
    x = rng.normal(3.0, 2.0, size=400)
    loc, scale = stats.norm.fit(x)
    ll = lambda t: stats.norm.logpdf(x, t[0], t[1]).sum()  # noqa: E731
    res = fit_normal(x)
    assert_close(res, ["mu", "sigma"], [loc, scale], se_from(ll, [loc, scale]), ll([loc, scale]))
    # closed forms
    assert res.se["mu"] == pytest.approx(scale / math.sqrt(400), rel=1e-12)
    assert res.se["sigma"] == pytest.approx(scale / math.sqrt(800), rel=1e-12)


def test_lognormal(rng):
    x = rng.lognormal(0.5, 0.8, size=300)
    s, _, scale = stats.lognorm.fit(x, floc=0)

    def ll(t):
        return stats.lognorm.logpdf(x, t[1], scale=np.exp(t[0])).sum()

    theta = [np.log(scale), s]
    assert_close(fit_lognormal(x), ["mu", "sigma"], theta, se_from(ll, theta), ll(theta))


def test_exponential(rng):
    x = rng.exponential(2.5, size=250)
    _, scale = stats.expon.fit(x, floc=0)
    rate = 1 / scale
    ll = lambda t: stats.expon.logpdf(x, scale=1 / t[0]).sum()  # noqa: E731
    assert_close(fit_exponential(x), ["rate"], [rate], se_from(ll, [rate]), ll([rate]))


@pytest.mark.parametrize("shape", [0.3, 2.0, 40.0])
def test_gamma(rng, shape):
    x = rng.gamma(shape, 1 / 1.7, size=500)
    a, _, scale = stats.gamma.fit(x, floc=0)
    theta = [a, 1 / scale]
    ll = lambda t: stats.gamma.logpdf(x, t[0], scale=1 / t[1]).sum()  # noqa: E731
    res = fit_gamma(x)
    assert_close(res, ["shape", "rate"], theta, se_from(ll, theta), ll(theta))
    assert res.converged and 1 <= res.n_iter <= 10
    # the shape equation log a - digamma(a) = log mean - mean log holds to machine precision
    a = res.params["shape"]
    assert math.log(a) - special.digamma(a) == pytest.approx(np.log(x.mean()) - np.log(x).mean(), rel=1e-12)


def test_bernoulli_and_binomial(rng):
    x = rng.random(300) < 0.27
    p = x.mean()
    res = fit_bernoulli(x)
    ll = stats.bernoulli.logpmf(x, p).sum()
    assert_close(res, ["p"], [p], [math.sqrt(p * (1 - p) / 300)], ll)

    trials = rng.integers(1, 20, size=150)
    k = rng.binomial(trials, 0.6)
    p = k.sum() / trials.sum()
    ll_fn = lambda t: stats.binom.logpmf(k, trials, t[0]).sum()  # noqa: E731
    res = fit_binomial(k, trials=trials)
    assert_close(res, ["p"], [p], se_from(ll_fn, [p]), ll_fn([p]))
    # scalar trials and the closed-form SE
    k = rng.binomial(8, 0.3, size=60)
    res = fit_binomial(k, trials=8)
    p = k.sum() / 480
    assert res.se["p"] == pytest.approx(math.sqrt(p * (1 - p) / 480), rel=1e-12)
    assert res.loglik == pytest.approx(stats.binom.logpmf(k, 8, p).sum(), rel=1e-12)


@pytest.mark.parametrize(("value", "p"), [(0, 0.0), (1, 1.0)])
def test_bernoulli_boundary(value, p):
    with pytest.warns(BoundaryWarning, match="boundary"):
        res = fit_bernoulli(np.full(20, value))
    assert res.params["p"] == p
    assert math.isnan(res.se["p"])
    assert res.at_boundary == ("p",)
    assert res.loglik == 0.0


def test_fit_result_information_criteria_and_intervals(rng):
    x = rng.gamma(2.0, 1.0, size=100)
    res = fit_gamma(x)
    assert res.n_params == 2
    assert res.aic == pytest.approx(4 - 2 * res.loglik)
    assert res.bic == pytest.approx(2 * math.log(100) - 2 * res.loglik)
    ci = res.conf_int(0.9)
    z = stats.norm.ppf(0.95)
    a, se = res.params["shape"], res.se["shape"]
    assert ci["shape"] == pytest.approx((a - z * se, a + z * se))
    frame = res.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["shape", "rate"]
    np.testing.assert_allclose(frame["se"], [res.se["shape"], res.se["rate"]])
    assert "gamma" in repr(res)
    with pytest.raises(ValueError, match="level"):
        res.conf_int(1.5)
    assert isinstance(res, FitResult)
    with pytest.raises(ValueError, match="read-only"):
        res.cov[0, 0] = 1.0


def test_input_not_modified(rng):
    x = rng.normal(size=50)
    before = x.copy()
    fit_normal(x)
    fit_lognormal(np.abs(x) + 0.1)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize(
    ("func", "x", "match"),
    [
        (fit_normal, [1.0, np.nan, 2.0], "non-finite"),
        (fit_normal, [1.0, np.inf, 2.0], "non-finite"),
        (fit_normal, [3.0, 3.0, 3.0], "constant"),
        (fit_normal, [1.0], "at least 2"),
        (fit_normal, np.ones((3, 2)), "one-dimensional"),
        (fit_lognormal, [1.0, -1.0, 2.0], "non-positive"),
        (fit_lognormal, [2.0, 2.0], "constant"),
        (fit_exponential, [1.0, -0.5], "negative"),
        (fit_exponential, [0.0, 0.0], "all zero"),
        (fit_gamma, [1.0, 0.0, 2.0], "non-positive"),
        (fit_gamma, [5.0, 5.0, 5.0], "constant"),
        (fit_bernoulli, [0, 1, 2], "other than 0 or 1"),
        (fit_bernoulli, [], "at least 1"),
    ],
)
def test_bad_input(func, x, match):
    with pytest.raises(ValueError, match=match):
        func(x)


def test_bad_input_types_and_binomial_checks():
    with pytest.raises(TypeError, match="numeric"):
        fit_normal(["a", "b"])
    with pytest.raises(ValueError, match="exceed"):
        fit_binomial([1, 5], trials=4)
    with pytest.raises(ValueError, match="non-integer"):
        fit_binomial([1.5, 2], trials=4)
    with pytest.raises(ValueError, match="same length"):
        fit_binomial([1, 2], trials=[3, 3, 3])
    with pytest.raises(ValueError, match="positive"):
        fit_binomial([0, 0], trials=0)
    with pytest.raises(ValueError, match="tol"):
        fit_gamma([1.0, 2.0], tol=-1.0)
    with pytest.raises(TypeError, match="max_iter"):
        fit_gamma([1.0, 2.0], max_iter=2.5)
