"""Scalar special functions for the count-model kernels (Numba, nopython).

Everything here works on plain floats and is written to stay accurate in the regime the
negative-binomial likelihood lives in near its Poisson limit (dispersion ``alpha -> 0``,
i.e. ``theta = 1/alpha -> inf``), where the textbook ``lgamma``/``digamma`` differences cancel
catastrophically. The central quantity is the "rising log sum"

    D(v; alpha) = sum_{j=0}^{v-1} log(1 + alpha j) = lgamma(v + theta) - lgamma(theta) - v log(theta)

(the part of the NB log-pmf that couples a count ``v`` to the dispersion) and its first two
derivatives in ``alpha``. Small counts are summed directly; large counts use Stirling-series
differences rearranged so that no two large numbers are subtracted.
"""

from __future__ import annotations

import math

import numba

_JIT = {"cache": True, "nogil": True}

#: Counts up to this value are handled by direct summation in ``rising_log_sum``.
SMALL_COUNT = 64
_STIRLING_MIN = 10.0  # the Stirling tails below are accurate to ~1e-16 relative for z >= 10


# Bernoulli-number coefficients of the asymptotic tails, in powers of 1/z^2 (accurate to ~1e-16 for z >= 10)
_LGAMMA_C = (1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0, -691.0 / 360360.0, 1.0 / 156.0)
_DIGAMMA_C = (1.0 / 12.0, -1.0 / 120.0, 1.0 / 252.0, -1.0 / 240.0, 1.0 / 132.0, -691.0 / 32760.0, 1.0 / 12.0)
_TRIGAMMA_C = (1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0, 5.0 / 66.0, -691.0 / 2730.0, 7.0 / 6.0)


@numba.njit(**_JIT)
def _horner(coeffs, z2):
    acc = 0.0
    for i in range(len(coeffs) - 1, -1, -1):
        acc = acc * z2 + coeffs[i]
    return acc


@numba.njit(**_JIT)
def _lgamma_tail(z):
    # lgamma(z) - [(z - 1/2) log z - z + log(2 pi)/2] for z >= 10
    return _horner(_LGAMMA_C, 1.0 / (z * z)) / z


@numba.njit(**_JIT)
def _digamma_tail(z):
    # log z - 1/(2z) - digamma(z) for z >= 10
    z2 = 1.0 / (z * z)
    return _horner(_DIGAMMA_C, z2) * z2


@numba.njit(**_JIT)
def _trigamma_tail(z):
    # trigamma(z) - 1/z - 1/(2 z^2) for z >= 10
    z2 = 1.0 / (z * z)
    return _horner(_TRIGAMMA_C, z2) * z2 / z


@numba.njit(**_JIT)
def digamma(z):
    """Digamma function for ``z > 0`` (recurrence up to 10, then the asymptotic series)."""
    acc = 0.0
    while z < _STIRLING_MIN:
        acc -= 1.0 / z
        z += 1.0
    return acc + math.log(z) - 0.5 / z - _digamma_tail(z)


@numba.njit(**_JIT)
def trigamma(z):
    """Trigamma function for ``z > 0``."""
    acc = 0.0
    while z < _STIRLING_MIN:
        acc += 1.0 / (z * z)
        z += 1.0
    return acc + 1.0 / z + 0.5 / (z * z) + _trigamma_tail(z)


@numba.njit(**_JIT)
def log1pmx(u):
    """``log(1 + u) - u`` for ``u >= 0`` without cancellation for small ``u``."""
    if u >= 0.1:
        return math.log1p(u) - u
    # -u^2/2 + u^3/3 - u^4/4 + ...
    term = -u * u
    total = 0.0
    k = 2.0
    while True:
        add = term / k
        total += add
        if abs(add) <= 1e-17 * abs(total):
            break
        term *= -u
        k += 1.0
    return total


@numba.njit(**_JIT)
def _omega(u):
    # u + u/(1+u) - 2 log(1+u) = u^3/3 - u^4/2 + 3u^5/5 - ...   (u >= 0)
    if u >= 0.1:
        return u + u / (1.0 + u) - 2.0 * math.log1p(u)
    total = 0.0
    power = u * u * u
    k = 3.0
    sign = 1.0
    while True:
        add = sign * (k - 2.0) / k * power
        total += add
        if abs(add) <= 1e-17 * abs(total):
            break
        power *= u
        sign = -sign
        k += 1.0
    return total


@numba.njit(**_JIT)
def log1p_ratio(t):
    """``phi(t) = log(1 + t)/t`` and its first two derivatives, for ``t >= 0``.

    ``phi(0) = 1, phi'(0) = -1/2, phi''(0) = 2/3``; a power series is used for ``t < 0.2``.
    """
    if t >= 0.2:
        lp = math.log1p(t)
        r = t / (1.0 + t)
        f = lp / t
        f1 = (r - lp) / (t * t)
        f2 = (2.0 * lp - 2.0 * r - r * r) / (t * t * t)
        return f, f1, f2
    # phi = sum_k (-t)^k/(k+1); phi' = sum_{k>=1} k (-1)^k t^(k-1)/(k+1); phi'' = sum_{k>=2} k(k-1)(-1)^k t^(k-2)/(k+1)
    f = 1.0 - 0.5 * t
    f1 = -0.5
    f2 = 0.0
    tk = 1.0  # t^(k-2)
    sign = 1.0  # (-1)^k
    k = 2.0
    while True:
        a0 = sign * tk * t * t / (k + 1.0)
        a1 = sign * k * tk * t / (k + 1.0)
        a2 = sign * k * (k - 1.0) * tk / (k + 1.0)
        f += a0
        f1 += a1
        f2 += a2
        if abs(a2) <= 1e-17 * abs(f2) and abs(a1) <= 1e-17 * abs(f1):
            break
        k += 1.0
        tk *= t
        sign = -sign
    return f, f1, f2


@numba.njit(**_JIT)
def _power_sums(v):
    # S1 = sum_{j<v} j, S2 = sum j^2, S3 = sum j^3 (exact in float64 for the counts we meet)
    s1 = v * (v - 1.0) / 2.0
    s2 = (v - 1.0) * v * (2.0 * v - 1.0) / 6.0
    return s1, s2, s1 * s1


@numba.njit(**_JIT)
def rising_log_sum_closed(v, alpha):
    """``D(v; alpha)`` and its first two ``alpha``-derivatives from closed forms (any ``v >= 1``).

    Parameters
    ----------
    v
        Count (a positive integer, passed as float).
    alpha
        Dispersion, ``>= 0``.

    Returns
    -------
    tuple of float
        ``(D, dD/dalpha, d2D/dalpha2)``.
    """
    s1, s2, s3 = _power_sums(v)
    if alpha == 0.0:
        return 0.0, s1, -s2
    u = alpha * v
    if u < 1e-8:  # third-order Taylor expansion in alpha, relative error < u^2
        d = alpha * s1 - 0.5 * alpha * alpha * s2 + alpha * alpha * alpha * s3 / 3.0
        d1 = s1 - alpha * s2 + alpha * alpha * s3
        d2 = -s2 + 2.0 * alpha * s3
        return d, d1, d2
    theta = 1.0 / alpha
    z1 = theta + v
    if theta >= _STIRLING_MIN:
        # Stirling differences, rearranged so that O(v) terms cancel analytically
        dd = _digamma_tail(z1) - _digamma_tail(theta)
        d = theta * log1pmx(u) + (v - 0.5) * math.log1p(u) + (_lgamma_tail(z1) - _lgamma_tail(theta))
        d1 = -theta * theta * log1pmx(u) - theta * v / (2.0 * z1) + theta * theta * dd
        dt = _trigamma_tail(z1) - _trigamma_tail(theta)
        inner = theta * _omega(u) - v * v / (2.0 * z1 * z1) + 2.0 * theta * dd - theta * theta * dt
        return d, d1, -theta * theta * inner
    dpsi = digamma(z1) - digamma(theta)
    d = math.lgamma(z1) - math.lgamma(theta) - v * math.log(theta)
    d1 = theta * (v - theta * dpsi)
    d2 = -theta * theta * (v - 2.0 * theta * dpsi + theta * theta * (trigamma(theta) - trigamma(z1)))
    return d, d1, d2


@numba.njit(**_JIT)
def rising_log_sums(values, freqs, k, alpha):
    """Frequency-weighted sums of ``D(v; alpha)`` and its derivatives over a count histogram.

    Parameters
    ----------
    values
        Distinct positive counts in increasing order (int64); only the first ``k`` are used.
    freqs
        Their frequencies (float64).
    k
        Number of histogram entries.
    alpha
        Dispersion, ``>= 0``.

    Returns
    -------
    tuple of float
        ``(sum f D, sum f D', sum f D'')``. Counts up to ``SMALL_COUNT`` are accumulated by a
        single running sum over ``j`` (cost ``O(min(max count, SMALL_COUNT))``), larger ones use
        :func:`rising_log_sum_closed`.
    """
    tot0 = 0.0
    tot1 = 0.0
    tot2 = 0.0
    acc0 = 0.0
    acc1 = 0.0
    acc2 = 0.0
    j = 1
    for i in range(k):
        v = values[i]
        f = freqs[i]
        if v <= SMALL_COUNT:
            while j < v:
                a = alpha * j
                r = j / (1.0 + a)
                acc0 += math.log1p(a)
                acc1 += r
                acc2 -= r * r
                j += 1
            tot0 += f * acc0
            tot1 += f * acc1
            tot2 += f * acc2
        else:
            d0, d1, d2 = rising_log_sum_closed(float(v), alpha)
            tot0 += f * d0
            tot1 += f * d1
            tot2 += f * d2
    return tot0, tot1, tot2
