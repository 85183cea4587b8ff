"""Orthogonalisation against batch vectors: the grouped pass equals one pass per group, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from mnnkit.correction.fast._orthogonalize import center_along, orthogonalize, orthogonalize_groups


def _groups(rng, sizes, d):
    data = rng.normal(size=(sum(sizes), d)) + rng.normal(size=d) * 3
    stops = np.cumsum(sizes)
    return data, list(zip(stops - np.array(sizes), stops, strict=True))


@pytest.mark.parametrize("restricted", [False, True])
def test_grouped_orthogonalisation_equals_one_call_per_group(restricted):
    rng = np.random.default_rng(7)
    data, bounds = _groups(rng, [5, 1, 12, 30], 9)
    vectors = [rng.normal(size=9) for _ in range(4)] + [np.zeros(9)]
    mean_rows = [np.flatnonzero(rng.random(stop - start) < 0.6) if restricted else None for start, stop in bounds]
    if restricted:
        mean_rows = [rows if rows.size else np.array([0]) for rows in mean_rows]
    expected = data.copy()
    for (start, stop), rows in zip(bounds, mean_rows, strict=True):
        block = np.ascontiguousarray(expected[start:stop])
        orthogonalize(block, vectors, rows)
        expected[start:stop] = block
    grouped = data.copy()
    orthogonalize_groups(grouped, vectors, bounds, mean_rows)
    np.testing.assert_array_equal(grouped, expected)


def test_center_along_removes_the_variation_along_the_vector():
    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 6))
    vector = rng.normal(size=6)
    unit = vector / np.linalg.norm(vector)
    before = data @ unit
    center_along(data, vector)
    after = data @ unit
    np.testing.assert_allclose(after, before.mean(), rtol=0, atol=1e-12)
