"""Tests of mnnkit.cluster.GaussianMixture against scikit-learn and scipy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numba as nb
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGMM
from sklearn.utils.estimator_checks import parametrize_with_checks

import mnnkit
from mnnkit._warnings import MnnkitWarning
from mnnkit.cluster import ConvergenceWarning, GaussianMixture, _gaussian, _kernels

COV_TYPES = ["full", "tied", "diag", "spherical"]
INITS = ["kmeans", "k-means++", "random", "random_from_data"]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=1500, n_features=4, centers=3, cluster_std=[1.0, 2.0, 0.7], random_state=0)
    X = X @ np.array([[1.0, 0.3, 0, 0], [0, 1.0, 0.5, 0], [0, 0, 1.0, 0.2], [0, 0, 0, 1.0]])  # correlated features
    return X, y


def _params(model):
    return [model.weights_, model.means_, model.covariances_, model.precisions_cholesky_]


def _assert_same_fit(ours, ref, atol=1e-6):
    assert ours.n_iter_ == ref.n_iter_
    assert ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.lower_bound_, ref.lower_bound_, rtol=1e-6, atol=atol)
    for a, b in zip(_params(ours), _params(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=atol)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-6, atol=atol)


# --------------------------------------------------------------------------- exactness vs scikit-learn
def _initial_precisions(X, y, covariance_type, K):
    """Deliberately rough starting precisions built from the true labels."""
    covs = [np.cov(X[y == k].T) * 1.5 + 0.1 * np.eye(X.shape[1]) for k in range(K)]
    if covariance_type == "full":
        return np.array([np.linalg.inv(c) for c in covs])
    if covariance_type == "tied":
        return np.linalg.inv(np.mean(covs, axis=0))
    if covariance_type == "diag":
        return np.array([1 / np.diag(c) for c in covs])
    return np.array([1 / np.diag(c).mean() for c in covs])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_same_result_as_sklearn_from_same_initial_parameters(blobs, covariance_type):
    X, y = blobs
    K = 3
    init = {
        "weights_init": np.array([0.2, 0.5, 0.3]),
        "means_init": np.array([X[y == k].mean(0) + 1.0 for k in range(K)]),
        "precisions_init": _initial_precisions(X, y, covariance_type, K),
    }
    kw = {"n_components": K, "covariance_type": covariance_type, "tol": 1e-9, "max_iter": 500, **init}
    ref = SkGMM(**kw).fit(X)
    ours = GaussianMixture(**kw).fit(X)
    assert ours.n_iter_ > 3  # EM really ran from the given start
    _assert_same_fit(ours, ref)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.bic(X), ref.bic(X), rtol=1e-9)
    np.testing.assert_allclose(ours.aic(X), ref.aic(X), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("init_params", INITS)
def test_same_result_as_sklearn_for_same_seed(blobs, covariance_type, init_params):
    X = blobs[0][:700]
    kw = {
        "n_components": 3,
        "covariance_type": covariance_type,
        "init_params": init_params,
        "random_state": 4,
        "n_init": 2 if init_params == "random" else 1,
        "tol": 1e-6,
        "max_iter": 300,
    }
    _assert_same_fit(GaussianMixture(**kw).fit(X), SkGMM(**kw).fit(X))


def test_warm_start_matches_sklearn(blobs):
    X, _ = blobs
    kw = {"n_components": 3, "warm_start": True, "max_iter": 2, "random_state": 1, "tol": 1e-12}
    ours, ref = GaussianMixture(**kw), SkGMM(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        for _ in range(3):
            ours.fit(X)
            ref.fit(X)
    _assert_same_fit(ours, ref)
    # warm start continued from the previous solution: the bound kept increasing
    single = GaussianMixture(n_components=3, random_state=1, max_iter=2, tol=1e-12)
    with pytest.warns(ConvergenceWarning):
        single.fit(X)
    assert ours.lower_bound_ > single.lower_bound_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([GaussianMixture()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- behaviour / invariants
def test_known_clusters_recovered_and_fit_predict_consistent():
    X, y = make_blobs(n_samples=2000, n_features=6, centers=5, cluster_std=1.0, random_state=3)
    model = GaussianMixture(n_components=5, random_state=0, n_init=2)
    labels = model.fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.99
    np.testing.assert_array_equal(labels, model.predict(X))
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba.argmax(axis=1), labels)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_score_samples_against_scipy_densities(blobs, covariance_type):
    X, _ = blobs
    model = GaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
    d = X.shape[1]
    covs = {
        "full": lambda k: model.covariances_[k],
        "tied": lambda k: model.covariances_,
        "diag": lambda k: np.diag(model.covariances_[k]),
        "spherical": lambda k: model.covariances_[k] * np.eye(d),
    }[covariance_type]
    log_dens = np.column_stack(
        [np.log(model.weights_[k]) + multivariate_normal(model.means_[k], covs(k)).logpdf(X) for k in range(3)]
    )
    expected = logsumexp(log_dens, axis=1)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(log_dens - expected[:, None]), atol=1e-12)
    np.testing.assert_allclose(model.score(X), expected.mean(), rtol=1e-10)
    n = X.shape[0]
    n_params = {"full": 3 * 10, "tied": 10, "diag": 3 * 4, "spherical": 3}[covariance_type] + 3 * 4 + 2
    np.testing.assert_allclose(model.bic(X), -2 * expected.sum() + n_params * np.log(n), rtol=1e-10)
    np.testing.assert_allclose(model.aic(X), -2 * expected.sum() + 2 * n_params, rtol=1e-10)
    # precisions_ are the inverses of covariances_
    if covariance_type in ("full", "tied"):
        eye = np.broadcast_to(np.eye(d), model.covariances_.shape)
        np.testing.assert_allclose(model.covariances_ @ model.precisions_, eye, atol=1e-10)
    else:
        np.testing.assert_allclose(model.covariances_ * model.precisions_, 1.0, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_never_decreases(blobs, covariance_type):
    X = blobs[0][:600]
    model = GaussianMixture(
        3, covariance_type=covariance_type, init_params="random", random_state=2, tol=1e-7, max_iter=1000
    )
    model.fit(X)
    bounds = np.array(model.lower_bounds_)
    assert len(bounds) == model.n_iter_ > 5
    assert np.all(np.diff(bounds) >= -1e-10)
    assert bounds[-1] == model.lower_bound_ or np.isclose(bounds[-1], model.lower_bound_)


def test_n_init_keeps_best(blobs):
    X = blobs[0][:600]
    one = GaussianMixture(3, init_params="random", random_state=5, max_iter=10, tol=0)
    many = GaussianMixture(3, init_params="random", random_state=5, n_init=3, max_iter=10, tol=0)
    with pytest.warns(ConvergenceWarning):
        one.fit(X)
    with pytest.warns(ConvergenceWarning):
        many.fit(X)
    assert many.lower_bound_ >= one.lower_bound_  # the first of the three starts is `one`'s start


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_sample_statistics(blobs, covariance_type):
    X, _ = blobs
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    Xs, labels = model.sample(30000)
    assert Xs.shape == (30000, 4)
    counts = np.bincount(labels, minlength=3)
    expected = model.weights_ * 30000
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    for k in range(3):
        pts = Xs[labels == k]
        if covariance_type == "full":
            cov = model.covariances_[k]
        elif covariance_type == "tied":
            cov = model.covariances_
        elif covariance_type == "diag":
            cov = np.diag(model.covariances_[k])
        else:
            cov = model.covariances_[k] * np.eye(4)
        se = np.sqrt(np.diag(cov) / len(pts))
        assert np.all(np.abs(pts.mean(0) - model.means_[k]) < 5 * se)
        np.testing.assert_allclose(np.cov(pts.T), cov, atol=0.1 * np.abs(cov).max())
    Xs2, labels2 = model.sample(30000)
    assert np.array_equal(Xs, Xs2) and np.array_equal(labels, labels2)  # int random_state: reproducible


def test_reproducible_bitwise_and_thread_independent(blobs, monkeypatch):
    monkeypatch.setattr(_gaussian, "GMM_PARALLEL_MIN_WORK", 0)  # use all threads even for this small problem
    X, _ = blobs
    kw = {"n_components": 3, "random_state": 7, "init_params": "random", "tol": 1e-8}
    a = GaussianMixture(**kw).fit(X)
    threads = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        b = GaussianMixture(**kw).fit(X)
    finally:
        nb.set_num_threads(threads)
    for x, y in zip(_params(a), _params(b), strict=True):
        assert np.array_equal(x, y)
    assert a.lower_bound_ == b.lower_bound_
    c = GaussianMixture(**{**kw, "random_state": np.random.default_rng(7)}).fit(X)  # a Generator is accepted
    assert np.isfinite(c.lower_bound_)


def test_float32_and_fortran_input_and_input_unchanged(blobs):
    X, _ = blobs
    X32 = np.asfortranarray(X.astype(np.float32))
    before = X32.copy()
    a = GaussianMixture(3, random_state=0).fit(X32)
    b = GaussianMixture(3, random_state=0).fit(X32.astype(np.float64))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    assert np.array_equal(X32, before)


def test_convergence_warning_class(blobs):
    X, _ = blobs
    assert issubclass(ConvergenceWarning, SklearnConvergenceWarning)
    assert issubclass(ConvergenceWarning, MnnkitWarning)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        model = GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 1


def test_top_level_names():
    assert mnnkit.GaussianMixture is GaussianMixture
    assert mnnkit.gmm is mnnkit.cluster.gmm


# --------------------------------------------------------------------------- bad input
def test_degenerate_covariance_explains_reg_covar():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((50, 3)), np.tile([5.0, 5.0, 5.0], (30, 1))])  # 30 identical points
    with pytest.raises(ValueError, match="reg_covar.*positive definite|positive definite.*reg_covar"):
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    model = GaussianMixture(2, random_state=0).fit(X)  # default reg_covar keeps it positive definite
    k = int(np.argmin(model.covariances_[:, 0, 0]))
    np.testing.assert_allclose(np.diag(model.covariances_[k]), 1e-6, rtol=1e-3)


def test_constant_feature_handled_by_reg_covar():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.standard_normal((200, 2)), np.full(200, 3.0)])
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    model = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_allclose(model.covariances_[:, 2, 2], 1e-6, rtol=1e-6)
    np.testing.assert_allclose(model.means_[:, 2], 3.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 2.0}, "n_components"),
        ({"covariance_type": "banded"}, "covariance_type"),
        ({"init_params": "kmedoids"}, "init_params"),
        ({"tol": -1.0}, "tol"),
        ({"reg_covar": -1e-3}, "reg_covar"),
        ({"max_iter": -1}, "max_iter"),
        ({"n_init": 0}, "n_init"),
        ({"weights_init": [0.5, 0.6]}, "weights_init.*sum to 1"),
        ({"weights_init": [1.0]}, "weights_init.*shape"),
        ({"means_init": np.zeros((2, 3))}, "means_init.*shape"),
        ({"precisions_init": np.ones((2, 4, 4))}, "precisions_init.*positive-definite"),
        ({"precisions_init": np.ones(3)}, "precisions_init.*shape"),
        ({"covariance_type": "diag", "precisions_init": -np.ones((2, 4))}, "precisions_init.*positive"),
        ({"n_components": 2000}, "n_components.*exceeds the number of samples"),
    ],
)
def test_bad_parameters(blobs, kwargs, match):
    X, _ = blobs
    with pytest.raises(ValueError, match=match):
        GaussianMixture(**{"n_components": 2, **kwargs}).fit(X)


def test_bad_data(blobs):
    X, _ = blobs
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            GaussianMixture(2).fit(Xb)
    with pytest.raises(TypeError, match="[Ss]parse"):
        GaussianMixture(2).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="1 sample"):
        GaussianMixture(1).fit(X[:1])
    with pytest.raises(NotFittedError):
        GaussianMixture(2).predict(X)
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 4"):
        model.predict(X[:, :3])
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(0)
    with pytest.raises(TypeError, match="random_state"):
        GaussianMixture(2, random_state="seed").fit(X)


# --------------------------------------------------------------------------- kernels without JIT
def test_kernels_python_path_in_process(blobs):
    """Run the kernels' Python source (``py_func``) so coverage sees every line; compare with the JIT."""
    X = np.ascontiguousarray(blobs[0][:60])
    model = GaussianMixture(3, random_state=0).fit(X)
    bounds = np.array([0, 25, 60], dtype=np.int64)
    resp_jit, norm_jit = _gaussian.e_step(X, model.weights_, model.means_, model.precisions_cholesky_, "full")
    const = (
        np.log(model.weights_)
        + _gaussian.log_det_cholesky(model.precisions_cholesky_, "full", 4)
        - 2 * np.log(2 * np.pi)
    )
    for kernel, prec in [
        (_kernels.estep_full, np.triu(model.precisions_cholesky_)),
        (_kernels.estep_diag, np.ones((3, 4))),
    ]:
        resp, norm = np.empty((60, 3)), np.empty(60)
        kernel.py_func(X, model.means_, prec, const, bounds, resp, norm)
        ref_resp, ref_norm = np.empty((60, 3)), np.empty(60)
        kernel(X, model.means_, prec, const, bounds, ref_resp, ref_norm)
        np.testing.assert_allclose(resp, ref_resp, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(norm, ref_norm, rtol=1e-12)
    np.testing.assert_allclose(norm_jit, model.score_samples(X), rtol=1e-12)
    nk, sx = np.zeros((2, 3)), np.zeros((2, 3, 4))
    _kernels.weighted_feature_sums.py_func(X, resp_jit, None, bounds, nk, sx)
    np.testing.assert_allclose(nk.sum(0), resp_jit.sum(0))
    np.testing.assert_allclose(sx.sum(0), resp_jit.T @ X)
    full, diag = np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4))
    _kernels.scatter_full.py_func(X, resp_jit, model.means_, bounds, full)
    _kernels.weighted_feature_sums.py_func(X, resp_jit, model.means_, bounds, None, diag)
    for k in range(3):
        D = X - model.means_[k]
        S = (resp_jit[:, k] * D.T) @ D
        np.testing.assert_allclose(full.sum(0)[k], np.tril(S), atol=1e-10)
        np.testing.assert_allclose(diag.sum(0)[k], np.diag(S), atol=1e-10)
    lse = _kernels._normalise_row.py_func(np.array([0.0, -np.inf, 1.0]), row := np.empty(3))
    np.testing.assert_allclose(lse, np.log(1 + np.e))
    np.testing.assert_allclose(row, [1 / (1 + np.e), 0.0, np.e / (1 + np.e)])


def test_fit_with_numba_jit_disabled(blobs):
    """The estimator runs under NUMBA_DISABLE_JIT=1 and gives the compiled result."""
    X = blobs[0][:120]
    expected = {
        ct: GaussianMixture(3, covariance_type=ct, random_state=0, init_params="random_from_data").fit(X).lower_bound_
        for ct in COV_TYPES
    }
    code = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        from mnnkit.cluster import GaussianMixture
        X = np.array(json.loads(sys.stdin.read()))
        out = {}
        for ct in ["full", "tied", "diag", "spherical"]:
            model = GaussianMixture(3, covariance_type=ct, random_state=0, init_params="random_from_data")
            out[ct] = model.fit(X).lower_bound_
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    res = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(X.tolist()), env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for ct in COV_TYPES:
        np.testing.assert_allclose(out[ct], expected[ct], rtol=1e-10)
