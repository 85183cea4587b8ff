"""Gaussian mixture model fitted by expectation-maximisation (scikit-learn compatible)."""

from __future__ import annotations

import logging
import numbers
import warnings
from typing import Any, Literal

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.utils.validation import check_is_fitted

from mnnkit._random import check_rng
from mnnkit._validation import is_int
from mnnkit._warnings import ConvergenceWarning
from mnnkit.cluster import _gaussian as gauss

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _sk_validate_data(estimator, X, **kwargs):
        return estimator._validate_data(X, **kwargs)


__all__ = ["ConvergenceWarning", "GaussianMixture"]

logger = logging.getLogger("mnnkit")

_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


#: Seeds of :class:`numpy.random.RandomState` (what scikit-learn's initialisations take) lie in ``[0, 2**32)``.
_RANDOM_STATE_SEEDS = 2**32


def check_random_state(random_state: Any, name: str = "random_state", *, allow_random_state: bool = True) -> None:
    """Raise unless ``random_state`` follows mnnkit's ``rng`` policy with an int seed below ``2**32``.

    With ``allow_random_state`` a :class:`numpy.random.RandomState` passes too (scikit-learn's convention).
    """
    if allow_random_state and isinstance(random_state, np.random.RandomState):
        return
    check_rng(random_state, name)
    if is_int(random_state) and random_state >= _RANDOM_STATE_SEEDS:
        msg = f"{name} must be an int seed below 2**32, got {random_state}"
        raise ValueError(msg)


def _as_random_state(random_state: Any) -> np.random.RandomState:
    """The RandomState of ``random_state``: itself, one seeded with the int, or with one draw from a Generator."""
    check_random_state(random_state)
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, _RANDOM_STATE_SEEDS)))
    return np.random.RandomState(random_state)


class GaussianMixture(DensityMixin, BaseEstimator):
    r"""Gaussian mixture model fitted by expectation-maximisation (EM).

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (same parameters, attributes and
    results) whose E-step and M-step statistics run in parallel Numba kernels without the
    ``n x d`` temporaries of the NumPy implementation.

    **Model.** Each observation :math:`x_i \in \mathbb{R}^d` comes with an unobserved (latent)
    label :math:`z_i \in \{1, \dots, K\}` drawn with probabilities :math:`w_k`; given
    :math:`z_i = k`, :math:`x_i \sim \mathcal{N}(\mu_k, \Sigma_k)`. The log-likelihood
    :math:`\ell(\theta) = \sum_i \log \sum_k w_k \mathcal{N}(x_i \mid \mu_k, \Sigma_k)` has no
    closed-form maximiser because the labels are missing.

    **EM.** For any distribution :math:`q_i` over the labels of point :math:`i`, Jensen's
    inequality gives the lower bound
    :math:`\ell(\theta) \ge \sum_i \sum_k q_{ik} \log \frac{w_k \mathcal{N}(x_i \mid \mu_k,
    \Sigma_k)}{q_{ik}}`, with equality when :math:`q_{ik}` is the posterior
    :math:`r_{ik} = P(z_i = k \mid x_i, \theta)`. EM alternates

    * **E-step**: :math:`r_{ik} = \exp(\log w_k + \log \mathcal{N}(x_i \mid \mu_k, \Sigma_k) -
      \operatorname{logsumexp}_j[\dots])` (computed in log space, so tiny densities do not
      underflow); this makes the bound tight, and its value (divided by ``n``) is the average
      log-likelihood reported as the *lower bound*;
    * **M-step**: maximise the bound over :math:`\theta` with :math:`r` fixed:
      :math:`n_k = \sum_i r_{ik}`, :math:`w_k = n_k / n`, :math:`\mu_k = \sum_i r_{ik} x_i / n_k`,
      :math:`\Sigma_k = \sum_i r_{ik} (x_i - \mu_k)(x_i - \mu_k)^\top / n_k +` ``reg_covar`` :math:`I`
      (pooled over components for ``tied``, diagonal for ``diag``, its mean for ``spherical``).

    Neither step can decrease :math:`\ell`, so the lower bound increases monotonically (up to the
    ``reg_covar`` regularisation); iteration stops when it changes by less than ``tol`` or after
    ``max_iter`` iterations (then a :class:`ConvergenceWarning` is issued). The whole procedure is
    restarted ``n_init`` times from different initialisations and the run with the largest final
    lower bound is kept; a final E-step with the kept parameters makes ``fit_predict(X)`` equal
    ``fit(X).predict(X)``.

    Parameters
    ----------
    n_components
        Number of mixture components ``K``; at most the number of samples.
    covariance_type
        ``"full"`` (one full matrix per component), ``"tied"`` (one shared full matrix), ``"diag"``
        (one diagonal per component) or ``"spherical"`` (one variance per component).
    tol
        Convergence threshold on the change of the lower bound (average log-likelihood).
    reg_covar
        Non-negative value added to the diagonal of every covariance, so that components that
        collapse onto few points, or data with a constant feature, still give positive-definite
        covariances. Increase it if fitting fails with a "not positive definite" error.
    max_iter
        Maximum number of EM iterations per initialisation.
    n_init
        Number of initialisations; the best (largest lower bound) is kept.
    init_params
        How the initial responsibilities are chosen: ``"kmeans"`` (labels of one
        :class:`sklearn.cluster.KMeans` run), ``"k-means++"`` (k-means++ seeds, one point per
        component), ``"random"`` (uniform random responsibilities) or ``"random_from_data"``
        (random points, one per component).
    weights_init, means_init, precisions_init
        Optional user-provided initial weights ``(K,)``, means ``(K, d)`` and precisions (inverse
        covariances, shaped like ``covariances_``); they replace the corresponding estimates from
        ``init_params``.
    random_state
        Randomness of the initialisation and of :meth:`sample`: an int seed >= 0 (same seed, same
        result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh
        entropy from the operating system: a different result on every call). As in scikit-learn, a
        :class:`numpy.random.RandomState` is accepted too, and an int seed must lie below ``2**32``;
        a Generator seeds a RandomState with one draw. With an int seed the initialisation is the
        same as scikit-learn's for the same seed.
    warm_start
        If true, each :meth:`fit` starts from the previous solution (and ``n_init`` is ignored).
    verbose, verbose_interval
        Log progress (``logging.getLogger("mnnkit")``, level INFO) every ``verbose_interval``
        iterations when ``verbose > 0``.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        ``(K, d, d)`` full, ``(d, d)`` tied, ``(K, d)`` diag, ``(K,)`` spherical.
    precisions_ : ndarray
        Inverses of ``covariances_`` (same shapes).
    precisions_cholesky_ : ndarray
        Upper-triangular ``P`` with ``P P^T = precision`` (``1/sqrt(covariance)`` for diag and
        spherical).
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Lower bound (average log-likelihood) of the best initialisation.
    lower_bounds_ : list of float
        Lower bound after each iteration of the best initialisation.
    n_features_in_ : int

    Notes
    -----
    Input (``X`` of every method): dense ``(n_samples, n_features)`` arrays (float32/64 or integer,
    converted to a float64 C-ordered copy when needed); sparse input raises a TypeError. Memory: the
    float64 data, ``n x K`` responsibilities and O(64 MiB) of partial sums; no ``n x d`` temporaries
    per component.
    Results are bit-for-bit reproducible for a fixed ``random_state`` whatever the number of
    threads.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = "kmeans",
        weights_init: np.ndarray | None = None,
        means_init: np.ndarray | None = None,
        precisions_init: np.ndarray | None = None,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ validation
    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        X = _sk_validate_data(
            self, X, dtype=[np.float64, np.float32], ensure_min_samples=2 if reset else 1, reset=reset
        )
        return np.ascontiguousarray(X, dtype=np.float64)

    def _check_parameters(self, X: np.ndarray) -> None:
        def integer(name: str, minimum: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
                msg = f"{name} must be an integer >= {minimum}, got {value!r}"
                raise ValueError(msg)

        def real(name: str, minimum: float) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= minimum:
                msg = f"{name} must be a real number >= {minimum}, got {value!r}"
                raise ValueError(msg)

        integer("n_components", 1)
        integer("max_iter", 0)
        integer("n_init", 1)
        integer("verbose_interval", 1)
        real("tol", 0.0)
        real("reg_covar", 0.0)
        if self.covariance_type not in gauss.COVARIANCE_TYPES:
            msg = f"covariance_type must be one of {gauss.COVARIANCE_TYPES}, got {self.covariance_type!r}"
            raise ValueError(msg)
        if self.init_params not in _INIT_PARAMS:
            msg = f"init_params must be one of {_INIT_PARAMS}, got {self.init_params!r}"
            raise ValueError(msg)
        n, d = X.shape
        if self.n_components > n:
            msg = (
                f"n_components={self.n_components} exceeds the number of samples ({n}); a mixture needs "
                "n_samples >= n_components"
            )
            raise ValueError(msg)
        check_random_state(self.random_state)
        self._weights_init = self._checked_weights_init()
        self._means_init = self._checked_means_init(d)
        self._precisions_init = self._checked_precisions_init(d)

    def _checked_weights_init(self) -> np.ndarray | None:
        if self.weights_init is None:
            return None
        w = np.array(self.weights_init, dtype=np.float64)
        K = self.n_components
        if w.shape != (K,):
            msg = f"weights_init must have shape ({K},), got {w.shape}"
            raise ValueError(msg)
        if not np.all(np.isfinite(w)) or (w < 0).any() or (w > 1).any():
            msg = "weights_init must hold finite values in [0, 1]"
            raise ValueError(msg)
        if not np.allclose(np.abs(1.0 - w.sum()), 0.0, atol=1e-6):
            msg = f"weights_init must sum to 1; its sum is {w.sum():.6f}"
            raise ValueError(msg)
        return w

    def _checked_means_init(self, d: int) -> np.ndarray | None:
        if self.means_init is None:
            return None
        m = np.array(self.means_init, dtype=np.float64)
        if m.shape != (self.n_components, d):
            msg = f"means_init must have shape ({self.n_components}, {d}), got {m.shape}"
            raise ValueError(msg)
        if not np.all(np.isfinite(m)):
            msg = "means_init contains NaN or infinity"
            raise ValueError(msg)
        return m

    def _checked_precisions_init(self, d: int) -> np.ndarray | None:
        if self.precisions_init is None:
            return None
        p = np.array(self.precisions_init, dtype=np.float64)
        K, ct = self.n_components, self.covariance_type
        shape = {"full": (K, d, d), "tied": (d, d), "diag": (K, d), "spherical": (K,)}[ct]
        if p.shape != shape:
            msg = f"precisions_init must have shape {shape} for covariance_type={ct!r}, got {p.shape}"
            raise ValueError(msg)
        if not np.all(np.isfinite(p)):
            msg = "precisions_init contains NaN or infinity"
            raise ValueError(msg)
        if ct in ("full", "tied"):
            for mat in p if ct == "full" else p[None]:
                if not np.allclose(mat, mat.T) or np.linalg.eigvalsh(mat).min() <= 0:
                    msg = "precisions_init must hold symmetric positive-definite matrices"
                    raise ValueError(msg)
        elif (p <= 0).any():
            msg = "precisions_init must be positive"
            raise ValueError(msg)
        return p

    # ------------------------------------------------------------------ EM pieces
    def _initial_resp(self, X: np.ndarray, rs: np.random.RandomState) -> np.ndarray:
        n = X.shape[0]
        K = self.n_components
        if self.init_params == "kmeans":
            resp = np.zeros((n, K))
            labels = KMeans(n_clusters=K, n_init=1, random_state=rs).fit(X).labels_
            resp[np.arange(n), labels] = 1.0
        elif self.init_params == "random":
            resp = rs.uniform(size=(n, K))
            resp /= resp.sum(axis=1)[:, None]
        elif self.init_params == "random_from_data":
            resp = np.zeros((n, K))
            resp[rs.choice(n, size=K, replace=False), np.arange(K)] = 1.0
        else:  # k-means++
            resp = np.zeros((n, K))
            _, indices = kmeans_plusplus(X, K, random_state=rs)
            resp[indices, np.arange(K)] = 1.0
        return resp

    def _initialize(self, X: np.ndarray, rs: np.random.RandomState) -> None:
        resp = self._initial_resp(X, rs)
        nk, means, covariances = gauss.estimate_parameters(X, resp, self.reg_covar, self.covariance_type)
        self.weights_ = nk / X.shape[0] if self._weights_init is None else self._weights_init.copy()
        self.means_ = means if self._means_init is None else self._means_init.copy()
        if self._precisions_init is None:
            self.covariances_ = covariances
            self.precisions_cholesky_ = gauss.precision_cholesky(covariances, self.covariance_type, self.reg_covar)
        else:
            self.precisions_cholesky_ = gauss.precision_cholesky_from_precisions(
                self._precisions_init, self.covariance_type
            )
            self.covariances_ = gauss.covariances_from_precisions(self._precisions_init, self.covariance_type)

    def _e_step(self, X: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        resp, norm = gauss.e_step(X, self.weights_, self.means_, self.precisions_cholesky_, self.covariance_type)
        return float(np.mean(norm)), resp, norm

    def _m_step(self, X: np.ndarray, resp: np.ndarray) -> None:
        nk, self.means_, self.covariances_ = gauss.estimate_parameters(X, resp, self.reg_covar, self.covariance_type)
        self.weights_ = nk / nk.sum()
        self.precisions_cholesky_ = gauss.precision_cholesky(self.covariances_, self.covariance_type, self.reg_covar)

    def _get_parameters(self) -> tuple[np.ndarray, ...]:
        return (self.weights_.copy(), self.means_.copy(), self.covariances_.copy(), self.precisions_cholesky_.copy())

    def _set_parameters(self, params: tuple[np.ndarray, ...]) -> None:
        self.weights_, self.means_, self.covariances_, self.precisions_cholesky_ = params
        self.precisions_ = gauss.precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type)

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> GaussianMixture:
        """Estimate the parameters with EM from ``X`` (see the class docstring); ``y`` is ignored. Returns ``self``."""
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit to ``X`` and return the most probable component of each sample, ``(n_samples,)`` int.

        Equal to ``fit(X).predict(X)`` (a final E-step uses the kept parameters); ``y`` is ignored.
        """
        X = self._validate_X(X, reset=True)
        self._check_parameters(X)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        rs = _as_random_state(self.random_state)

        max_lower_bound = -np.inf
        best_params = None
        best_n_iter = 0
        best_lower_bounds: list[float] = []
        self.converged_ = False
        for init in range(n_init):
            if do_init:
                self._initialize(X, rs)
            lower_bound = -np.inf if do_init else self.lower_bound_
            if self.max_iter == 0:
                best_params = self._get_parameters()
                best_n_iter = 0
                continue
            with gauss.compute_context(*X.shape, self.n_components, self.covariance_type):
                lower_bound, n_iter, converged, current = self._em(X, init, lower_bound)
            if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
                max_lower_bound = lower_bound
                best_params = self._get_parameters()
                best_n_iter = n_iter
                best_lower_bounds = current
                self.converged_ = converged

        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                f"EM did not converge: the best of {n_init} initialisation(s) stopped after "
                f"max_iter={self.max_iter} iterations with the lower bound still changing by >= tol={self.tol}. "
                "Increase max_iter or tol, try other initialisations, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_parameters(best_params)
        self.n_iter_ = best_n_iter
        self.lower_bound_ = float(max_lower_bound)
        self.lower_bounds_ = best_lower_bounds
        return self._posterior_validated(X)[0].argmax(axis=1)

    def _em(self, X: np.ndarray, init: int, lower_bound: float) -> tuple[float, int, bool, list[float]]:
        """EM iterations from the current parameters; returns (lower bound, iterations, converged, history)."""
        current: list[float] = []
        n_iter = 0
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            lower_bound, resp, _ = self._e_step(X)
            self._m_step(X, resp)
            current.append(lower_bound)
            change = lower_bound - previous
            if self.verbose and n_iter % self.verbose_interval == 0:
                logger.info("GaussianMixture init %d iteration %d: lower bound change %.6g", init, n_iter, change)
            if abs(change) < self.tol:
                logger.debug("GaussianMixture init %d converged after %d iterations", init, n_iter)
                return lower_bound, n_iter, True, current
        return lower_bound, n_iter, False, current

    # ------------------------------------------------------------------ inference
    def _checked(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self._validate_X(X, reset=False)

    def _posterior(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._posterior_validated(self._checked(X))

    def _posterior_validated(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with gauss.compute_context(*X.shape, self.n_components, self.covariance_type):
            _, resp, norm = self._e_step(X)
        return resp, norm

    def score_samples(self, X: Any) -> np.ndarray:
        """Log-likelihood ``log p(x)`` of each sample of ``X`` under the fitted mixture, ``(n_samples,)`` float64."""
        return self._posterior(X)[1]

    def score(self, X: Any, y: Any = None) -> float:
        """Average log-likelihood of the samples of ``X``; ``y`` is ignored."""
        return float(self.score_samples(X).mean())

    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each sample of ``X``, ``(n_samples,)`` int."""
        return self._posterior(X)[0].argmax(axis=1)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability (responsibility) of each component for each sample of ``X``.

        Returns ``(n_samples, n_components)`` float64, rows summing to one.
        """
        return self._posterior(X)[0]

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples from the fitted mixture.

        Component sizes are multinomial with the mixture weights; each component's points are
        ``mu_k + z L_k^T`` with ``z`` standard normal and ``L_k L_k^T = Sigma_k``. Uses
        ``random_state`` (an int seed gives the same samples on every call).

        Parameters
        ----------
        n_samples
            Number of samples, at least 1.

        Returns
        -------
        ``X`` ``(n_samples, n_features)`` and the component label of each row, grouped by component.
        """
        check_is_fitted(self)
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            msg = f"n_samples must be an integer >= 1, got {n_samples!r}"
            raise ValueError(msg)
        rs = _as_random_state(self.random_state)
        counts = rs.multinomial(int(n_samples), self.weights_ / self.weights_.sum())
        d = self.means_.shape[1]
        blocks = []
        for k, (mean, count) in enumerate(zip(self.means_, counts, strict=True)):
            z = rs.standard_normal(size=(int(count), d))
            if self.covariance_type in ("full", "tied"):
                cov = self.covariances_[k] if self.covariance_type == "full" else self.covariances_
                blocks.append(mean + z @ scipy.linalg.cholesky(cov, lower=True).T)
            else:
                blocks.append(mean + z * np.sqrt(self.covariances_[k]))
        labels = np.repeat(np.arange(self.n_components), counts)
        return np.vstack(blocks), labels

    def _n_parameters(self) -> int:
        return gauss.n_parameters(self.n_components, self.means_.shape[1], self.covariance_type)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion of ``X``, ``-2 log L + n_params log(n)`` (lower is better)."""
        n = np.shape(X)[0]
        return float(-2 * self.score(X) * n + self._n_parameters() * np.log(n))

    def aic(self, X: Any) -> float:
        """Akaike information criterion of ``X``, ``-2 log L + 2 n_params`` (lower is better)."""
        return float(-2 * self.score(X) * np.shape(X)[0] + 2 * self._n_parameters())
