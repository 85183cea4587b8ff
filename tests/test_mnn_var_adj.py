"""var.adj pieces against brute force: the weighted quantile search and the scale factors."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit.correction.classic._var_adj as var_adj_module
from mnnkit.correction.classic._kernels import _bucketed_crossing
from tests.naive_mnn import _scales


def _crossing_by_sorting(pos: np.ndarray, weight: np.ndarray, target: float) -> tuple[float, float, float]:
    """The answer and its bracket from a full sort (tied positions form one step)."""
    values = np.unique(pos)
    step = np.array([weight[pos == v].sum() for v in values])
    cumulative = np.cumsum(step)
    hit = np.flatnonzero(cumulative >= target)
    if hit.size == 0:
        return pos.max(), np.inf, np.inf
    i = hit[0]
    return values[i], cumulative[i] - step[i], cumulative[i]


def _cases():
    rng = np.random.default_rng(0)
    yield rng.normal(size=5000), rng.random(5000)  # many cells per bucket
    yield rng.integers(0, 7, size=3000).astype(float), rng.random(3000)  # heavy ties
    yield np.full(400, 0.25), rng.random(400)  # one position
    yield np.array([3.0]), np.array([2.0])  # one cell
    skewed = np.concatenate([rng.normal(size=2000) * 1e-9, [50.0]])  # nearly all cells in one bucket
    yield skewed, np.exp(-rng.random(skewed.size) * 40)  # weights over 17 orders of magnitude
    # outliers at every scale: each round of buckets sheds one, until the rounds run out and the rest is sorted
    nested = np.concatenate([rng.normal(size=1500) * 1e-13, 10.0 ** np.arange(-10, 13, 2)])
    yield nested, rng.random(nested.size)


@pytest.mark.parametrize("case", list(range(6)))
@pytest.mark.parametrize("fraction", [1e-6, 0.1, 0.5, 0.93, 1.0])
def test_bucketed_crossing_equals_sorting(case, fraction) -> None:
    pos, weight = list(_cases())[case]
    target = fraction * weight.sum()
    answer, below, through = _bucketed_crossing(pos, weight, target)
    expected = _crossing_by_sorting(pos, weight, target)
    if np.isinf(expected[1]):  # rounding: the target (the total) was not reached by the sorted sum
        assert answer == pos.max()
        return
    assert answer == expected[0]
    if np.isfinite(below):
        np.testing.assert_allclose([below, through], expected[1:], rtol=1e-12, atol=1e-300)
        assert below < target <= through


def test_scales_equal_the_definition_including_degenerate_quantiles(monkeypatch) -> None:
    """Cells at the end of their own batch along their direction hit the sequential log-sum path."""
    rng = np.random.default_rng(3)
    left = rng.normal(size=(60, 12))
    right = rng.normal(size=(45, 12)) + 0.3
    correction = rng.normal(size=(45, 12)) * 0.2
    correction[7] = 0.0  # no correction: scale 1
    left /= np.linalg.norm(left, axis=1, keepdims=True)
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    # along its own direction a unit cell lies beyond every other unit cell: its quantile is exactly 1
    correction[3], correction[11] = 0.2 * right[3], 0.1 * right[11]
    slow = []
    real = var_adj_module.variance_scales

    def spy(*args):
        n_slow = real(*args)
        slow.append(n_slow)
        return n_slow

    monkeypatch.setattr(var_adj_module, "variance_scales", spy)
    scales = var_adj_module.variance_adjustment_scales(left, right, correction, 0.1)
    np.testing.assert_allclose(scales, _scales(left, right, correction, 0.1), rtol=0, atol=1e-12)
    assert sum(slow) > 0, "expected some cells on the degenerate (sequential log-sum) path"
    assert scales[7] == 1.0
