"""Numba kernels: maximum-likelihood fits of count models on count histograms.

A sample of counts enters every kernel as a *histogram*: the distinct positive values (int64,
increasing), their frequencies (float64) and the total number of observations ``n``; zeros are
implied (``n0 = n - sum(freqs)``). For the models here the log-likelihood and all its
derivatives split into a zero part that depends only on ``n0`` and a nonzero part that is a
frequency-weighted sum over the distinct values, so a gene with 5,000 nonzero cells and
counts up to 40 costs 40 terms per Newton step instead of 100,000 (and the zeros of a sparse
matrix are never touched).

Parameters are always ``(mu, alpha, pi)``: the mean of the count component, the NB2
dispersion (``Var = mu + alpha mu^2``; ``alpha = 0`` is Poisson) and the zero-inflation
probability. A model fixes the parameters it does not have at 0. Plain arrays only; the
public functions validate everything before calling in here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from mnnkit._config import COUNT_HISTOGRAM_CAP
from mnnkit.stats._special import log1p_ratio, rising_log_sums

_JIT = {"cache": True, "nogil": True}

# model codes
POISSON = 0
NB = 1
ZIP = 2
ZINB = 3

# status flags (bitwise)
ALL_ZERO = 1
ALPHA_AT_ZERO = 2
PI_AT_ZERO = 4

_EM_SWITCH = 1e-8  # relative log-likelihood change at which EM hands over to Newton
_EM_STRICT = 1e-13  # relative change that ends EM when Newton could not finish the job


@numba.njit(**_JIT)
def column_histogram(data, start, stop, buf, big, values, freqs):
    """Histogram of the positive entries ``data[start:stop]`` (integer-valued, validated).

    ``buf`` is an all-zero int64 scratch array of length ``COUNT_HISTOGRAM_CAP`` (left all-zero on return),
    ``big`` an int64 scratch array and ``values``/``freqs`` outputs, each at least
    ``stop - start`` long. Explicit zeros are skipped. Returns the number of distinct values.
    """
    nbig = 0
    vmax = 0
    cap = buf.size
    for p in range(start, stop):
        v = np.int64(data[p])
        if v <= 0:
            continue
        if v < cap:
            buf[v] += 1
            if v > vmax:
                vmax = v
        else:
            big[nbig] = v
            nbig += 1
    k = 0
    for v in range(1, vmax + 1):
        c = buf[v]
        if c:
            values[k] = v
            freqs[k] = c
            buf[v] = 0
            k += 1
    if nbig:
        srt = np.sort(big[:nbig])
        prev = srt[0]
        count = 0
        for i in range(nbig):
            if srt[i] != prev:
                values[k] = prev
                freqs[k] = count
                k += 1
                prev = srt[i]
                count = 0
            count += 1
        values[k] = prev
        freqs[k] = count
        k += 1
    return k


@numba.njit(**_JIT)
def _eta(mu, alpha):
    # eta = log P(X = 0) = -log(1 + alpha mu)/alpha and its derivatives in (mu, alpha)
    t = alpha * mu
    f, f1, f2 = log1p_ratio(t)
    inv = 1.0 / (1.0 + t)
    return -mu * f, -inv, -mu * mu * f1, alpha * inv * inv, mu * inv * inv, -mu * mu * mu * f2


@numba.njit(**_JIT)
def loglik(values, freqs, k, n, mu, alpha, pi):
    """Log-likelihood of the ZINB model (``alpha = 0``: ZIP; ``pi = 0``: NB/Poisson)."""
    sd, _, _ = rising_log_sums(values, freqs, k, alpha)
    n_plus = 0.0
    sx = 0.0
    slf = 0.0
    for i in range(k):
        n_plus += freqs[i]
        sx += freqs[i] * values[i]
        slf += freqs[i] * math.lgamma(values[i] + 1.0)
    n0 = n - n_plus
    t = alpha * mu
    f, _, _ = log1p_ratio(t)
    eta = -mu * f
    ll = sd - sx * math.log1p(t) + n_plus * eta - slf
    if sx > 0.0:
        ll += sx * math.log(mu)
    if pi > 0.0:
        ll += n_plus * math.log1p(-pi)
        if n0 > 0.0:
            a = math.log(pi)
            b = math.log1p(-pi) + eta
            hi = max(a, b)
            ll += n0 * (hi + math.log1p(math.exp(-abs(a - b))))
    else:
        ll += n0 * eta
    return ll


@numba.njit(**_JIT)
def grad_hess(values, freqs, k, n, mu, alpha, pi):
    """Gradient and Hessian of :func:`loglik` in ``(mu, alpha, pi)`` (observed information = -H).

    At ``pi = 0`` the ``pi`` row is not computed (left at zero): the kernels never treat ``pi``
    as free there.
    """
    sd0, sd1, sd2 = rising_log_sums(values, freqs, k, alpha)
    n_plus = 0.0
    sx = 0.0
    for i in range(k):
        n_plus += freqs[i]
        sx += freqs[i] * values[i]
    n0 = n - n_plus
    eta, e_m, e_a, e_mm, e_ma, e_aa = _eta(mu, alpha)
    inv = 1.0 / (1.0 + alpha * mu)
    g = np.zeros(3)
    h = np.zeros((3, 3))
    # nonzero part
    g[0] = sx / mu - sx * alpha * inv + n_plus * e_m
    g[1] = sd1 - sx * mu * inv + n_plus * e_a
    h[0, 0] = -sx / (mu * mu) + sx * alpha * alpha * inv * inv + n_plus * e_mm
    h[0, 1] = -sx * inv * inv + n_plus * e_ma
    h[1, 1] = sd2 + sx * mu * mu * inv * inv + n_plus * e_aa
    # zero part
    if n0 > 0.0:
        if pi > 0.0:
            q = math.exp(eta)
            big_p = pi + (1.0 - pi) * q
            s = (1.0 - pi) * q / big_p  # P(count component | zero)
            g[0] += n0 * s * e_m
            g[1] += n0 * s * e_a
            g[2] += n0 * (1.0 - q) / big_p
            h[0, 0] += n0 * (s * (e_m * e_m + e_mm) - s * s * e_m * e_m)
            h[0, 1] += n0 * (s * (e_m * e_a + e_ma) - s * s * e_m * e_a)
            h[1, 1] += n0 * (s * (e_a * e_a + e_aa) - s * s * e_a * e_a)
            h[2, 2] -= n0 * (1.0 - q) * (1.0 - q) / (big_p * big_p)
            h[0, 2] -= n0 * q * e_m / (big_p * big_p)
            h[1, 2] -= n0 * q * e_a / (big_p * big_p)
        else:
            g[0] += n0 * e_m
            g[1] += n0 * e_a
            h[0, 0] += n0 * e_mm
            h[0, 1] += n0 * e_ma
            h[1, 1] += n0 * e_aa
    if pi > 0.0:
        g[2] -= n_plus / (1.0 - pi)
        h[2, 2] -= n_plus / ((1.0 - pi) * (1.0 - pi))
    h[1, 0] = h[0, 1]
    h[2, 0] = h[0, 2]
    h[2, 1] = h[1, 2]
    return g, h


@numba.njit(**_JIT)
def _cholesky(a, m):
    # in-place lower Cholesky factor of the leading m x m block; False if not positive definite
    for j in range(m):
        s = a[j, j]
        for p in range(j):
            s -= a[j, p] * a[j, p]
        if not s > 0.0:
            return False
        a[j, j] = math.sqrt(s)
        for i in range(j + 1, m):
            s = a[i, j]
            for p in range(j):
                s -= a[i, p] * a[j, p]
            a[i, j] = s / a[j, j]
    return True


@numba.njit(**_JIT)
def _chol_solve(lower, b, m):
    y = np.zeros(m)
    for i in range(m):
        s = b[i]
        for p in range(i):
            s -= lower[i, p] * y[p]
        y[i] = s / lower[i, i]
    for i in range(m - 1, -1, -1):
        s = y[i]
        for p in range(i + 1, m):
            s -= lower[p, i] * y[p]
        y[i] = s / lower[i, i]
    return y


@numba.njit(**_JIT)
def covariance(h, free):
    """Inverse of the observed information ``-h`` restricted to the ``free`` parameters.

    Rows/columns of fixed parameters are NaN. Returns ``(cov, ok)``; ``ok`` is False (and
    the free block NaN) when ``-h`` is not positive definite there.
    """
    idx = np.nonzero(free)[0]
    m = idx.size
    cov = np.full((3, 3), np.nan)
    a = np.zeros((3, 3))
    for i in range(m):
        for j in range(m):
            a[i, j] = -h[idx[i], idx[j]]
    if not _cholesky(a, m):
        return cov, False
    for j in range(m):
        e = np.zeros(m)
        e[j] = 1.0
        col = _chol_solve(a, e, m)
        for i in range(m):
            cov[idx[i], idx[j]] = col[i]
    return cov, True


@numba.njit(**_JIT)
def nb_alpha(values, freqs, k, m, sx, mu, alpha_start, tol, max_iter):
    """MLE of the NB2 dispersion for a fixed mean ``mu = sx / m``.

    ``m`` is the (possibly fractional, for the ZINB M-step) total weight of the observations,
    zeros included. The profile score has a unique root on ``(0, inf)`` iff the weighted
    variance exceeds the mean (Levin & Reeds, 1977); otherwise the MLE is ``alpha = 0``.
    Safeguarded Newton in ``log alpha`` with a bracket and geometric bisection.
    Returns ``(alpha, n_iter, converged)``.
    """
    n_plus = 0.0
    dev = 0.0
    for i in range(k):
        n_plus += freqs[i]
        dev += freqs[i] * (values[i] - mu) ** 2
    dev += (m - n_plus) * mu * mu
    if dev - sx <= 0.0:  # 2 x score at alpha = 0
        return 0.0, 0, True
    a = alpha_start
    if not a > 0.0:
        a = (dev / m - mu) / (mu * mu)
    lo = 0.0
    hi = np.inf
    for it in range(1, max_iter + 1):
        _, d1, d2 = rising_log_sums(values, freqs, k, a)
        t = a * mu
        _, f1, f2 = log1p_ratio(t)
        inv = 1.0 / (1.0 + t)
        score = d1 - sx * mu * inv - m * mu * mu * f1
        slope = d2 + sx * mu * mu * inv * inv - m * mu * mu * mu * f2
        if score == 0.0:
            return a, it, True
        if score > 0.0:
            lo = a
        else:
            hi = a
        newton_ok = slope < 0.0
        step = 0.0
        if newton_ok:
            step = -score / (a * slope)
            if abs(step) <= tol:
                return a * math.exp(step), it, True
            step = min(max(step, -10.0), 10.0)
        a_new = a * math.exp(step)
        if not (newton_ok and lo < a_new < hi):
            if hi == np.inf:
                a_new = a * 10.0
            elif lo == 0.0:
                a_new = a / 10.0
            else:
                a_new = math.sqrt(lo * hi)
                if abs(math.log(hi / lo)) <= tol:
                    return a_new, it, True
        a = a_new
    return a, max_iter, False


@numba.njit(**_JIT)
def _newton(values, freqs, k, n, mu, alpha, pi, alpha_free, tol, max_steps):
    # Newton-Raphson with step halving on the full (ZI) likelihood; parameters stay interior.
    # Returns (mu, alpha, pi, ok, steps); ok = converged to relative step <= tol.
    free = np.array([True, alpha_free, True])
    m = 3 if alpha_free else 2
    ll = loglik(values, freqs, k, n, mu, alpha, pi)
    for step in range(1, max_steps + 1):
        g, h = grad_hess(values, freqs, k, n, mu, alpha, pi)
        idx = np.nonzero(free)[0]
        a = np.zeros((3, 3))
        b = np.zeros(m)
        for i in range(m):
            b[i] = g[idx[i]]
            for j in range(m):
                a[i, j] = -h[idx[i], idx[j]]
        if not _cholesky(a, m):
            return mu, alpha, pi, False, step
        d = _chol_solve(a, b, m)
        full = np.zeros(3)
        for i in range(m):
            full[idx[i]] = d[i]
        t = 1.0
        while True:
            mu_n = mu + t * full[0]
            al_n = alpha + t * full[1]
            pi_n = pi + t * full[2]
            if mu_n > 0.0 and pi_n > 0.0 and pi_n < 1.0 and (al_n > 0.0 or not alpha_free):
                ll_n = loglik(values, freqs, k, n, mu_n, al_n, pi_n)
                if ll_n >= ll - 1e-12 * abs(ll):
                    break
            t *= 0.5
            if t < 1e-10:
                return mu, alpha, pi, False, step
        rel = abs(mu_n - mu) / mu_n
        rel = max(rel, abs(pi_n - pi) / pi_n)
        if alpha_free:
            rel = max(rel, abs(al_n - alpha) / al_n)
        mu, alpha, pi, ll = mu_n, al_n, pi_n, ll_n
        if rel <= tol:
            return mu, alpha, pi, True, step
    return mu, alpha, pi, False, max_steps


@numba.njit(**_JIT)
def _em_step(values, freqs, k, n, n0, sx, mu, alpha, pi, zinb, tol):
    # one EM update of (mu, alpha, pi); the log-likelihood never decreases
    f, _, _ = log1p_ratio(alpha * mu)
    q = math.exp(-mu * f)
    w = pi / (pi + (1.0 - pi) * q)  # E-step: posterior P(structural zero | zero)
    m = n - n0 * w  # M-step: weight of the count component; its mean is closed-form
    mu = sx / m
    if zinb:
        alpha, _, _ = nb_alpha(values, freqs, k, m, sx, mu, alpha, tol, 100)
    return mu, alpha, n0 * w / n


@numba.njit(**_JIT)
def _to_free(mu, alpha, pi):
    return math.log(mu), math.log(alpha) if alpha > 0.0 else -np.inf, math.log(pi) - math.log1p(-pi)


@numba.njit(**_JIT)
def _zero_inflated(values, freqs, k, n, sx, mu, alpha, pi, zinb, tol, max_iter):
    # EM over the zero-inflation indicator from (mu, alpha, pi), accelerated by SQUAREM (Varadhan & Roland, 2008:
    # squared extrapolation of two EM steps, with back-tracking to keep the log-likelihood
    # monotone), then Newton polish once the log-likelihood has nearly stopped changing.
    # Returns (mu, alpha, pi, n_iter, converged); n_iter counts EM updates and Newton steps.
    n_plus = 0.0
    for i in range(k):
        n_plus += freqs[i]
    n0 = n - n_plus
    ll = loglik(values, freqs, k, n, mu, alpha, pi)
    n_iter = 0
    strict = False
    while n_iter < max_iter:
        mu1, al1, pi1 = _em_step(values, freqs, k, n, n0, sx, mu, alpha, pi, zinb, tol)
        mu2, al2, pi2 = _em_step(values, freqs, k, n, n0, sx, mu1, al1, pi1, zinb, tol)
        n_iter += 2
        new_mu, new_al, new_pi = mu2, al2, pi2
        ll_new = loglik(values, freqs, k, n, mu2, al2, pi2)
        if not (zinb and (alpha == 0.0 or al1 == 0.0 or al2 == 0.0)):
            x0 = _to_free(mu, alpha, pi)
            x1 = _to_free(mu1, al1, pi1)
            x2 = _to_free(mu2, al2, pi2)
            nr = 0.0
            nv = 0.0
            for j in range(3):
                if j == 1 and not zinb:
                    continue
                r = x1[j] - x0[j]
                v = x2[j] - 2.0 * x1[j] + x0[j]
                nr += r * r
                nv += v * v
            if nv > 0.0:
                step = -max(math.sqrt(nr / nv), 1.0)
                for _ in range(6):
                    y = np.empty(3)
                    for j in range(3):
                        y[j] = x0[j] - 2.0 * step * (x1[j] - x0[j]) + step * step * (x2[j] - 2.0 * x1[j] + x0[j])
                    m_t = math.exp(y[0])
                    a_t = math.exp(y[1]) if zinb else 0.0
                    p_t = 1.0 / (1.0 + math.exp(-y[2]))
                    if m_t > 0.0 and m_t < np.inf and p_t > 0.0 and p_t < 1.0 and (a_t > 0.0 or not zinb):
                        m_t, a_t, p_t = _em_step(values, freqs, k, n, n0, sx, m_t, a_t, p_t, zinb, tol)
                        n_iter += 1
                        ll_t = loglik(values, freqs, k, n, m_t, a_t, p_t)
                        if ll_t >= ll:  # monotone w.r.t. the start of the cycle
                            new_mu, new_al, new_pi, ll_new = m_t, a_t, p_t, ll_t
                            break
                    step = (step - 1.0) / 2.0
        mu, alpha, pi = new_mu, new_al, new_pi
        change = ll_new - ll
        ll = ll_new
        if not strict and change <= _EM_SWITCH * (1.0 + abs(ll)):
            mu2, al2, pi2, ok, steps = _newton(values, freqs, k, n, mu, alpha, pi, zinb and alpha > 0.0, tol, 50)
            n_iter += steps
            if ok:
                return mu2, al2, pi2, n_iter, True
            strict = True
        elif strict and change <= _EM_STRICT * (1.0 + abs(ll)):
            return mu, alpha, pi, n_iter, True
    return mu, alpha, pi, n_iter, False


@numba.njit(**_JIT)
def _excess_zeros(n, n0, mu, alpha):
    # pi that matches the observed fraction of zeros given the count model (mu, alpha), or 0 when
    # the zeros are not in excess: the score for pi at pi = 0 is n0/P(0) - n
    f, _, _ = log1p_ratio(alpha * mu)
    log_q = -mu * f
    if n0 > 0.0 and math.log(n0) > math.log(n) + log_q:
        q = math.exp(log_q)
        return (n0 / n - q) / (1.0 - q)
    return 0.0


@numba.njit(**_JIT)
def fit_histogram(values, freqs, k, n, model, tol, max_iter):
    """Fit ``model`` (POISSON, NB, ZIP, ZINB) to one count histogram.

    Returns ``(params, cov, loglik, loglik_null, n_iter, converged, flags)`` where ``params``
    is ``(mu, alpha, pi)`` (NaN for parameters the model lacks), ``cov`` the 3 x 3 inverse
    observed information over the free parameters (NaN elsewhere), ``loglik_null`` the
    log-likelihood of the nested model tested by the model's LRT (NB: Poisson; ZIP: Poisson;
    ZINB: NB; POISSON: NaN) and ``flags`` a combination of ALL_ZERO / ALPHA_AT_ZERO / PI_AT_ZERO.
    """
    params = np.full(3, np.nan)
    cov = np.full((3, 3), np.nan)
    n_plus = 0.0
    sx = 0.0
    for i in range(k):
        n_plus += freqs[i]
        sx += freqs[i] * values[i]
    has_alpha = model == NB or model == ZINB
    has_pi = model == ZIP or model == ZINB
    if n_plus == 0.0:
        params[0] = 0.0
        null = np.nan if model == POISSON else 0.0
        return params, cov, 0.0, null, 0, True, ALL_ZERO
    mu = sx / n
    alpha = 0.0
    pi = 0.0
    n_iter = 0
    converged = True
    flags = 0
    ll_pois = loglik(values, freqs, k, n, mu, 0.0, 0.0)
    if has_alpha:
        alpha, n_iter, converged = nb_alpha(values, freqs, k, n, sx, mu, 0.0, tol, max_iter)
    ll = loglik(values, freqs, k, n, mu, alpha, 0.0)
    null = np.nan
    if model == NB or model == ZIP:
        null = ll_pois
    elif model == ZINB:
        null = ll
    if has_pi:
        n0 = n - n_plus
        pi0 = _excess_zeros(n, n0, mu, alpha)
        if pi0 > 0.0:
            mu0 = mu
            mu, alpha, pi, it, converged = _zero_inflated(
                values, freqs, k, n, sx, mu, alpha, pi0, has_alpha, tol, max_iter
            )
            n_iter += it
            ll = loglik(values, freqs, k, n, mu, alpha, pi)
            pi0 = _excess_zeros(n, n0, mu0, 0.0)
            if has_alpha and pi0 > 0.0:
                # The ZINB likelihood often has a flat ridge from the NB face (pi = 0) to the ZIP face
                # (alpha = 0) along which EM crawls. Second start: the ZIP fit, then ZINB EM from it
                # (it stays there iff the ZIP fit is a KKT point of the ZINB likelihood). Keep the better.
                mz, _, pz, it1, _ = _zero_inflated(values, freqs, k, n, sx, mu0, 0.0, pi0, False, tol, max_iter)
                mz, az, pz, it2, conv_z = _zero_inflated(values, freqs, k, n, sx, mz, 0.0, pz, True, tol, max_iter)
                n_iter += it1 + it2
                ll_z = loglik(values, freqs, k, n, mz, az, pz)
                if ll_z > ll or (ll_z == ll and conv_z and not converged):
                    mu, alpha, pi, ll, converged = mz, az, pz, ll_z, conv_z
        else:
            flags |= PI_AT_ZERO
    if has_alpha and alpha == 0.0:
        flags |= ALPHA_AT_ZERO
    _, h = grad_hess(values, freqs, k, n, mu, alpha, pi)
    free = np.array([True, has_alpha and alpha > 0.0, has_pi and pi > 0.0])
    cov, _ = covariance(h, free)
    params[0] = mu
    if has_alpha:
        params[1] = alpha
    if has_pi:
        params[2] = pi
    return params, cov, ll, null, n_iter, converged, flags


@numba.njit(**_JIT)
def fit_csc(indptr, data, n_rows, model, tol, max_iter):
    """Fit ``model`` to every column of a CSC matrix given by ``indptr`` (int64) and ``data``.

    Memory: ``O(max column nnz)`` scratch plus ``O(n_columns)`` outputs. Returns
    ``(params (G, 3), se (G, 3), loglik (G,), loglik_null (G,), n_iter (G,), converged (G,),
    flags (G,))``.
    """
    n_cols = indptr.size - 1
    max_nnz = 1
    for g in range(n_cols):
        max_nnz = max(max_nnz, indptr[g + 1] - indptr[g])
    buf = np.zeros(COUNT_HISTOGRAM_CAP, np.int64)
    big = np.empty(max_nnz, np.int64)
    values = np.empty(max_nnz, np.int64)
    freqs = np.empty(max_nnz, np.float64)
    params = np.empty((n_cols, 3))
    se = np.empty((n_cols, 3))
    ll = np.empty(n_cols)
    ll_null = np.empty(n_cols)
    n_iter = np.empty(n_cols, np.int64)
    converged = np.empty(n_cols, np.bool_)
    flags = np.empty(n_cols, np.int64)
    n = float(n_rows)
    for g in range(n_cols):
        k = column_histogram(data, indptr[g], indptr[g + 1], buf, big, values, freqs)
        p, cov, a, b, it, conv, fl = fit_histogram(values, freqs, k, n, model, tol, max_iter)
        for j in range(3):
            params[g, j] = p[j]
            se[g, j] = math.sqrt(cov[j, j]) if cov[j, j] >= 0.0 else np.nan
        ll[g] = a
        ll_null[g] = b
        n_iter[g] = it
        converged[g] = conv
        flags[g] = fl
    return params, se, ll, ll_null, n_iter, converged, flags
