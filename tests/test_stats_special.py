"""Scalar special functions behind the count kernels, against scipy and exact arithmetic."""

import math
from decimal import Decimal, getcontext, localcontext

import numpy as np
import pytest
from scipy import special

from mnnkit.stats import _special as S

getcontext().prec = 40


@pytest.mark.parametrize("z", [1e-8, 1e-3, 0.5, 1.0, 2.5, 9.999, 10.0, 10.5, 77.7, 1e4, 1e9])
def test_digamma_trigamma_match_scipy(z):
    assert S.digamma(z) == pytest.approx(special.digamma(z), rel=2e-15, abs=1e-15)
    assert S.trigamma(z) == pytest.approx(special.polygamma(1, z), rel=2e-15)


def _exact_rising(v, alpha):
    # D = sum_{j<v} log(1 + alpha j) and alpha-derivatives, in 40-digit decimal arithmetic
    a = Decimal(alpha)
    d0 = sum(((1 + a * j).ln() for j in range(v)), Decimal(0))
    d1 = sum((Decimal(j) / (1 + a * j) for j in range(v)), Decimal(0))
    d2 = -sum(((Decimal(j) / (1 + a * j)) ** 2 for j in range(v)), Decimal(0))
    return float(d0), float(d1), float(d2)


# every branch of rising_log_sum_closed: alpha = 0, Taylor (alpha v < 1e-8), Stirling differences
# (theta = 1/alpha >= 10) and digamma/lgamma differences (theta < 10)
@pytest.mark.parametrize("v", [65, 300, 1200])
@pytest.mark.parametrize("alpha", [0.0, 1e-13, 1e-9, 1e-6, 1e-3, 0.05, 0.0999, 0.1001, 1.0, 30.0, 1e5])
def test_rising_log_sum_closed_matches_exact_sum(v, alpha):
    got = S.rising_log_sum_closed(float(v), alpha)
    want = _exact_rising(v, alpha)
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, rel=1e-11, abs=1e-300)


def test_rising_log_sums_histogram_matches_exact():
    values = np.array([1, 2, 3, 17, 64, 65, 200, 1100], dtype=np.int64)
    freqs = np.array([10.0, 4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 0.5])
    for alpha in [0.0, 1e-7, 0.02, 0.7, 12.0]:
        got = S.rising_log_sums(values, freqs, values.size, alpha)
        want = np.zeros(3)
        for v, f in zip(values, freqs, strict=True):
            want += f * np.array(_exact_rising(int(v), alpha))
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # only the first k entries count
    assert S.rising_log_sums(values, freqs, 3, 0.5) == pytest.approx(
        tuple(sum(f * np.array(_exact_rising(int(v), 0.5)) for v, f in zip(values[:3], freqs[:3], strict=True)))
    )


def _exact_phi(t):
    # phi(t) = log(1+t)/t and its derivatives from their closed forms, in 80-digit arithmetic
    with localcontext() as ctx:
        ctx.prec = 80
        t = Decimal(t)
        lp = (1 + t).ln()
        r = t / (1 + t)
        return float(lp / t), float((r - lp) / t**2), float((2 * lp - 2 * r - r * r) / t**3)


@pytest.mark.parametrize("t", [1e-12, 1e-5, 0.05, 0.1999, 0.2, 0.5, 3.0, 1e4])
def test_log1p_ratio_and_log1pmx(t):
    np.testing.assert_allclose(S.log1p_ratio(t), _exact_phi(t), rtol=2e-14)
    exact = float((1 + Decimal(t)).ln() - Decimal(t))
    assert S.log1pmx(t) == pytest.approx(exact, rel=1e-14)


def test_log1p_ratio_at_zero():
    assert S.log1p_ratio(0.0) == pytest.approx((1.0, -0.5, 2.0 / 3.0), rel=1e-15)
    assert math.isclose(S.log1pmx(0.0), 0.0, abs_tol=0.0)
