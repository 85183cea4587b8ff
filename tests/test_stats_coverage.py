"""Simulation: 95% Wald intervals from the observed information cover the truth 93-97% of the time.

Each check uses 1000 simulated data sets of moderate size. The count models are vectorised by
making each data set one gene of a matrix and calling ``fit_genes`` once; the other
distributions loop over cheap closed-form (or 4-step Newton) fits. With 1000 replicates the
Monte-Carlo SD of a 95% coverage is 0.7 points, so [0.93, 0.97] is about +/- 3 SD.
"""

import numpy as np
import pytest
from anndata import AnnData
from scipy import stats

from mnnkit.stats import (
    fit_bernoulli,
    fit_binomial,
    fit_exponential,
    fit_gamma,
    fit_genes,
    fit_lognormal,
    fit_normal,
)

R = 1000
Z = stats.norm.ppf(0.975)


def coverage(est, se, truth):
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    assert np.isfinite(se).all()
    return float(np.mean(np.abs(est - truth) <= Z * se))


def fit_matrix(x, distribution):
    adata = AnnData(X=x.astype(np.float64))
    fit_genes(adata, distribution=distribution, layer=None)
    return adata.var


def nb_draw(rng, mu, alpha, size):
    return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=size)


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def test_count_models_wald_coverage(rng):
    # Poisson, 500 obs
    var = fit_matrix(rng.poisson(3.0, size=(500, R)), "poisson")
    assert 0.93 <= coverage(var["poisson_mean"], var["poisson_mean_se"], 3.0) <= 0.97
    # NB, 1000 obs, mu = 2, alpha = 0.5
    var = fit_matrix(nb_draw(rng, 2.0, 0.5, (1000, R)), "nb")
    assert (var["nb_status"] == "ok").all()
    assert 0.93 <= coverage(var["nb_mean"], var["nb_mean_se"], 2.0) <= 0.97
    assert 0.93 <= coverage(var["nb_dispersion"], var["nb_dispersion_se"], 0.5) <= 0.97
    # ZIP, 1000 obs, mu = 2, pi = 0.3
    x = rng.poisson(2.0, size=(1000, R)) * (rng.random((1000, R)) >= 0.3)
    var = fit_matrix(x, "zip")
    assert (var["zip_status"] == "ok").all()
    assert 0.93 <= coverage(var["zip_mean"], var["zip_mean_se"], 2.0) <= 0.97
    assert 0.93 <= coverage(var["zip_zero_inflation"], var["zip_zero_inflation_se"], 0.3) <= 0.97
    # ZINB, 2000 obs, mu = 3, alpha = 0.3, pi = 0.3
    x = nb_draw(rng, 3.0, 0.3, (2000, R)) * (rng.random((2000, R)) >= 0.3)
    var = fit_matrix(x, "zinb")
    assert (var["zinb_status"] == "ok").all() and var["zinb_converged"].all()
    assert 0.93 <= coverage(var["zinb_mean"], var["zinb_mean_se"], 3.0) <= 0.97
    assert 0.93 <= coverage(var["zinb_dispersion"], var["zinb_dispersion_se"], 0.3) <= 0.97
    assert 0.93 <= coverage(var["zinb_zero_inflation"], var["zinb_zero_inflation_se"], 0.3) <= 0.97


def _fits(func, draws, **kw):
    res = [func(x, **kw) for x in draws]
    return {k: ([r.params[k] for r in res], [r.se[k] for r in res]) for k in res[0].params}


@pytest.mark.parametrize(
    ("func", "draw", "truth", "kw"),
    [
        (fit_normal, lambda rng: rng.normal(1.0, 2.0, size=(R, 200)), {"mu": 1.0, "sigma": 2.0}, {}),
        (fit_lognormal, lambda rng: rng.lognormal(0.5, 0.7, size=(R, 200)), {"mu": 0.5, "sigma": 0.7}, {}),
        (fit_exponential, lambda rng: rng.exponential(0.5, size=(R, 300)), {"rate": 2.0}, {}),
        (fit_gamma, lambda rng: rng.gamma(2.0, 1 / 3, size=(R, 300)), {"shape": 2.0, "rate": 3.0}, {}),
        (fit_bernoulli, lambda rng: rng.random((R, 500)) < 0.3, {"p": 0.3}, {}),
        (fit_binomial, lambda rng: rng.binomial(10, 0.2, size=(R, 200)), {"p": 0.2}, {"trials": 10}),
    ],
    ids=["normal", "lognormal", "exponential", "gamma", "bernoulli", "binomial"],
)
def test_single_sample_wald_coverage(rng, func, draw, truth, kw):
    fits = _fits(func, draw(rng), **kw)
    for name, value in truth.items():
        assert 0.93 <= coverage(*fits[name], value) <= 0.97, name
