"""The dual-softmax soft pairing (mnnkit.correction._soft_pairs) against a dense reference and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from mnnkit.correction._pair_kernels import mutual_pairs
from mnnkit.correction._soft_pairs import MIN_TEMPERATURE, default_temperature, dual_softmax_pairs

# --- helpers -------------------------------------------------------------------------------------


def _sklearn_lists(left, right, k_right, k_left):
    """Neighbour indices both ways from scikit-learn, with distances read from the dense cdist matrix.

    Reading the distances from one matrix makes a pair found both ways carry the very same number on
    both sides, as in the naive reference, so weights and order can be compared tightly.
    """
    dense = cdist(left, right)
    left_nn = NearestNeighbors(n_neighbors=k_right).fit(right).kneighbors(left, return_distance=False)
    right_nn = NearestNeighbors(n_neighbors=k_left).fit(left).kneighbors(right, return_distance=False)
    left_dist = np.take_along_axis(dense, left_nn, axis=1)
    right_dist = np.take_along_axis(dense.T, right_nn, axis=1)
    return dense, left_nn, left_dist, right_nn, right_dist


def _naive(dense, left_nn, right_nn, tau):
    """Dense reference: the candidate mask over the full n_left x n_right matrix, two masked softmaxes."""
    n_left, n_right = dense.shape
    mask = np.zeros((n_left, n_right), dtype=bool)
    mask[np.arange(n_left)[:, None], left_nn] = True
    mask[right_nn, np.arange(n_right)[:, None]] = True
    sim = np.where(mask, -(dense**2) / tau, -np.inf)
    with np.errstate(invalid="ignore"):
        row = np.exp(sim - sim.max(axis=1, keepdims=True))
        row /= row.sum(axis=1, keepdims=True)
        col = np.exp(sim - sim.max(axis=0, keepdims=True))
        col /= col.sum(axis=0, keepdims=True)
    weight = np.where(mask, row * col, 0.0)
    pairs, weights = [], []
    for left in range(n_left):
        cols = np.flatnonzero(mask[left])
        cols = cols[np.lexsort((cols, dense[left, cols]))]
        pairs += [(left, r) for r in cols]
        weights += list(weight[left, cols])
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(weights)


def _data(kind, rng):
    if kind == "gauss":
        return rng.normal(size=(60, 6)), rng.normal(size=(45, 6)) + 0.4
    if kind == "hub":
        # every right cell sits close to left cell 0: it gets a long reverse list (the heap-sort path)
        left = rng.normal(size=(30, 3)) * 5
        return left, left[0] + 0.2 * rng.normal(size=(40, 3))
    if kind == "grid":
        # integer grid points: many exactly tied distances, so the tie order (lower right row) is exercised
        left = rng.integers(-3, 4, size=(25, 2)).astype(float)
        right = np.array([(x, y) for x in range(-3, 4) for y in range(-3, 4)], dtype=float)
        return left, right
    if kind == "grid_hub":
        # every grid point lists left cell 0 first: a long row (heap-sorted) full of tied distances
        left = np.vstack([[0.0, 0.0], rng.integers(20, 30, size=(10, 2))])
        right = np.array([(x, y) for x in range(-3, 4) for y in range(-3, 4)], dtype=float)
        return left, right
    raise AssertionError(kind)


# --- against the dense reference -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "k_right", "k_left"),
    [
        ("gauss", 5, 4),
        ("gauss", 1, 1),
        ("gauss", 45, 60),
        ("hub", 3, 1),
        ("hub", 4, 6),
        ("grid", 6, 3),
        ("grid_hub", 2, 1),
    ],
)
@pytest.mark.parametrize("scale", [0.25, 1.0, 8.0])
def test_matches_dense_reference(kind, k_right, k_left, scale):
    rng = np.random.default_rng(7)
    left, right = _data(kind, rng)
    dense, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, k_right, k_left)
    # the median squared candidate distance (default_temperature is 0-floored on the grid, where most
    # left cells sit on a right cell: that hard limit is tested on its own below)
    tau = scale * float(np.median(np.concatenate([left_dist.ravel(), right_dist.ravel()]) ** 2))
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    ref_pairs, ref_weights = _naive(dense, left_nn, right_nn, tau)
    assert pairs.dtype == np.int64 and weights.dtype == np.float64
    np.testing.assert_array_equal(pairs, ref_pairs)
    np.testing.assert_allclose(weights, ref_weights, rtol=1e-12, atol=1e-12)


def test_sklearn_distances_match_reference():
    # scikit-learn's own distances (not bit-equal to cdist's) give the same weights to rounding
    rng = np.random.default_rng(3)
    left, right = _data("gauss", rng)
    dense, left_nn, _, right_nn, _ = _sklearn_lists(left, right, 5, 4)
    left_dist, _ = NearestNeighbors(n_neighbors=5).fit(right).kneighbors(left)
    right_dist, _ = NearestNeighbors(n_neighbors=4).fit(left).kneighbors(right)
    tau = default_temperature(left_dist, right_dist)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    ref_pairs, ref_weights = _naive(dense, left_nn, right_nn, tau)
    np.testing.assert_array_equal(np.sort(pairs.view("i8,i8"), axis=0), np.sort(ref_pairs.view("i8,i8"), axis=0))
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    ref_order = np.lexsort((ref_pairs[:, 1], ref_pairs[:, 0]))
    np.testing.assert_allclose(weights[order], ref_weights[ref_order], rtol=1e-9, atol=1e-12)


# --- invariants ----------------------------------------------------------------------------------


def _sums(pairs, weights, n_left, n_right):
    return np.bincount(pairs[:, 0], weights, n_left), np.bincount(pairs[:, 1], weights, n_right)


@pytest.mark.parametrize("tau_scale", [1e-3, 1.0, 1e3])
def test_weights_of_a_cell_sum_to_at_most_one(tau_scale):
    rng = np.random.default_rng(11)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 6, 6)
    tau = tau_scale * default_temperature(left_dist, right_dist)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    row_sums, col_sums = _sums(pairs, weights, len(left), len(right))
    assert np.all((weights >= 0) & (weights <= 1))
    assert np.all(row_sums <= 1 + 1e-12) and np.all(col_sums <= 1 + 1e-12)


def test_row_softmax_sums_to_one_when_columns_are_private():
    # each right cell is the candidate of one left cell only, so P_col = 1 and the weights are P_row:
    # they sum to exactly 1 per left cell, and follow exp(-d^2 / tau) within the row
    rng = np.random.default_rng(5)
    n_left, k = 7, 3
    left_nn = np.arange(n_left * k).reshape(n_left, k)
    left_dist = rng.uniform(0.5, 2.0, size=(n_left, k))
    right_nn = (np.arange(n_left * k) // k)[:, None]
    right_dist = left_dist.reshape(-1, 1)
    tau = 0.7
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    row_sums, _ = _sums(pairs, weights, n_left, n_left * k)
    np.testing.assert_allclose(row_sums, 1.0, rtol=0, atol=1e-14)
    expected = np.exp(-(left_dist**2) / tau)
    expected /= expected.sum(axis=1, keepdims=True)
    got = np.zeros_like(expected)
    got[pairs[:, 0], pairs[:, 1] % k] = weights
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_isolated_mutual_pair_gets_weight_one():
    # left 0 and right 0 are 0.01 apart; every other cell is at least 50 away from them
    rng = np.random.default_rng(2)
    left = np.vstack([[0.0, 0.0], 100 + rng.normal(size=(10, 2))])
    right = np.vstack([[0.01, 0.0], 100 + rng.normal(size=(8, 2))])
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 3, 3)
    tau = default_temperature(left_dist, right_dist)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    first = (pairs[:, 0] == 0) & (pairs[:, 1] == 0)
    assert first.sum() == 1
    assert weights[first][0] == pytest.approx(1.0, abs=1e-12)
    # everything else involving either cell is negligible
    others = ((pairs[:, 0] == 0) | (pairs[:, 1] == 0)) & ~first
    assert np.all(weights[others] < 1e-12)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 8])
def test_hub_right_cell_splits_its_weight(m):
    # m left cells on a unit circle round one right cell (the hub), k = 1 both ways; three decoy right
    # cells far away, with their own left partners. Each left cell has the hub as its only candidate
    # (P_row = 1) and the hub has the m left cells at equal distance (P_col = 1/m): weight 1/m each.
    angles = 2 * np.pi * np.arange(m) / m
    ring = np.column_stack([np.cos(angles), np.sin(angles)])
    decoys = np.array([[50.0, 0.0], [0.0, 50.0], [-50.0, -50.0]])
    left = np.vstack([ring, decoys + 0.1])
    right = np.vstack([[0.0, 0.0], decoys])
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 1, 1)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=1.0)
    on_hub = pairs[:, 1] == 0
    np.testing.assert_array_equal(np.sort(pairs[on_hub, 0]), np.arange(m))
    np.testing.assert_allclose(weights[on_hub], 1.0 / m, rtol=1e-14)
    np.testing.assert_allclose(weights[~on_hub], 1.0, rtol=1e-14)


def test_infinite_temperature_is_uniform_over_candidates():
    # tau -> inf: P_row = 1 / (candidates of the left cell), P_col = 1 / (candidates of the right cell)
    rng = np.random.default_rng(4)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 4, 3)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=1e300)
    per_left = np.bincount(pairs[:, 0], minlength=len(left))
    per_right = np.bincount(pairs[:, 1], minlength=len(right))
    np.testing.assert_allclose(weights, 1.0 / (per_left[pairs[:, 0]] * per_right[pairs[:, 1]]), rtol=1e-14)


def test_swapping_sides_swaps_pairs_and_keeps_weights():
    rng = np.random.default_rng(8)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 5, 3)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.8)
    back, back_weights = dual_softmax_pairs(right_nn, right_dist, left_nn, left_dist, temperature=0.8)
    ours = dict(zip(map(tuple, pairs), weights, strict=True))
    theirs = {(a, b): w for (b, a), w in zip(map(tuple, back), back_weights, strict=True)}
    assert ours.keys() == theirs.keys()
    np.testing.assert_allclose([ours[p] for p in ours], [theirs[p] for p in ours], rtol=1e-13, atol=1e-300)


def test_pair_found_both_ways_counts_once_at_the_smaller_distance():
    # left 0 and right 0 list each other, at 1.0 one way and 1.5 the other (a rounding mismatch, grossly
    # enlarged); left 0 also lists right 1 at 2.0, right 1 lists nobody else. Candidates: (0, 0), (0, 1).
    left_nn, left_dist = np.array([[0, 1]]), np.array([[1.0, 2.0]])
    right_nn, right_dist = np.array([[0], [0]]), np.array([[1.5], [2.0]])
    tau = 2.0
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    np.testing.assert_array_equal(pairs, [[0, 0], [0, 1]])
    p_row = np.exp(-np.array([1.0, 4.0]) / tau)  # each column has one candidate: P_col = 1
    np.testing.assert_allclose(weights, p_row / p_row.sum(), rtol=1e-15)
    swapped = dual_softmax_pairs(right_nn, right_dist, left_nn, left_dist, temperature=tau)
    np.testing.assert_array_equal(swapped[0], [[0, 0], [1, 0]])
    np.testing.assert_allclose(swapped[1], weights, rtol=1e-15)


def test_default_temperature_makes_weights_scale_free():
    rng = np.random.default_rng(9)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 5, 5)
    results = []
    for c in (1.0, 1e-3, 250.0):
        tau = default_temperature(c * left_dist, c * right_dist)
        results.append(dual_softmax_pairs(left_nn, c * left_dist, right_nn, c * right_dist, temperature=tau))
    for pairs, weights in results[1:]:
        np.testing.assert_array_equal(pairs, results[0][0])
        np.testing.assert_allclose(weights, results[0][1], rtol=1e-11, atol=1e-14)


def test_default_temperature_value():
    left_dist = np.array([[1.0, 2.0], [3.0, 0.5], [2.0, 4.0]])
    right_dist = np.array([[0.0], [6.0]])
    # nearest per cell: 1, 0.5, 2 (left) and 0, 6 (right); squared: 1, 0.25, 4, 0, 36 -> median 1
    assert default_temperature(left_dist, right_dist) == 1.0
    assert default_temperature(np.zeros((3, 2)), np.zeros((2, 1))) == MIN_TEMPERATURE
    with pytest.raises(ValueError, match="no distance"):
        default_temperature(np.zeros((3, 0)), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="right_dist"):
        default_temperature(left_dist, -right_dist - 1)


def test_min_weight_drops_light_pairs():
    rng = np.random.default_rng(12)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 5, 5)
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.5)
    cut = float(np.median(weights))
    kept, kept_weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.5, min_weight=cut)
    np.testing.assert_array_equal(kept, pairs[weights >= cut])
    np.testing.assert_array_equal(kept_weights, weights[weights >= cut])
    none, none_weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.5, min_weight=1.0)
    assert none.shape == (int((weights >= 1.0).sum()), 2) and none_weights.shape == (none.shape[0],)


def test_deterministic_and_inputs_untouched():
    rng = np.random.default_rng(13)
    left, right = _data("hub", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 4, 6)
    copies = [a.copy() for a in (left_nn, left_dist, right_nn, right_dist)]
    first = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.3)
    second = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=0.3)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    for a, b in zip((left_nn, left_dist, right_nn, right_dist), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tiny_temperature_stays_finite():
    # -d^2 / tau overflows for tau = 1e-320; the shifted exponents do not, and the weights are 0 or 1
    rng = np.random.default_rng(14)
    left, right = _data("gauss", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 4, 4)
    _, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=1e-320)
    assert np.all(np.isfinite(weights))
    assert set(np.unique(weights)) <= {0.0, 1.0}


def test_floored_default_temperature_on_coincident_cells():
    # most left cells sit exactly on a right grid point, so default_temperature is the floor; each such
    # pair at distance 0 is its left cell's unique nearest candidate (P_row = 1) and shares its right
    # cell's column with the m left cells on the same point (P_col = 1/m); every other weight is 0
    rng = np.random.default_rng(6)
    left, right = _data("grid", rng)
    _, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 6, 3)
    tau = default_temperature(left_dist, right_dist)
    assert tau == MIN_TEMPERATURE
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    on_point = np.all(left[pairs[:, 0]] == right[pairs[:, 1]], axis=1)
    sharing = np.bincount(pairs[on_point, 1], minlength=len(right))
    assert on_point.sum() == len(left)
    np.testing.assert_allclose(weights[on_point], 1.0 / sharing[pairs[on_point, 1]], rtol=1e-15)
    assert np.all(weights[~on_point] == 0.0)


def test_empty_side():
    pairs, weights = dual_softmax_pairs(
        np.zeros((0, 2), dtype=np.int64),
        np.zeros((0, 2)),
        np.zeros((3, 0), dtype=np.int64),
        np.zeros((3, 0)),
        temperature=1.0,
    )
    assert pairs.shape == (0, 2) and pairs.dtype == np.int64 and weights.shape == (0,)


# --- the hard limit: mutual nearest neighbours with k = 1 -----------------------------------------
#
# What holds (see the Notes of dual_softmax_pairs): if r is not the unique nearest candidate of l, some
# other candidate of l has at least its row probability, so P_row(l, r) <= 1/2 and w(l, r) <= 1/2; the
# same for columns. So at ANY temperature, {w > 1/2} is contained in the pairs of cells that are each
# other's unique nearest candidate, which with exact searches are the mutual nearest pairs with k = 1.
# Conversely, for such a pair with row and column gaps >= delta (in squared distance) and at most c
# candidates per row and column, P_row, P_col >= 1 / (1 + (c - 1) exp(-delta / tau)) > 1 / sqrt(2) once
# tau < delta / log((c - 1) / (sqrt(2) - 1)); then w > 1/2, and {w > 1/2} equals the k = 1 MNN pairs.


def _gap_and_width(pairs, dists_sq, n_left, n_right):
    gaps, width = [], 1
    for axis, n in ((0, n_left), (1, n_right)):
        for cell in range(n):
            d = np.sort(dists_sq[pairs[:, axis] == cell])
            width = max(width, d.size)
            if d.size > 1:
                gaps.append(d[1] - d[0])
    return min(gaps), width


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_temperature_gives_mutual_nearest_pairs(seed):
    rng = np.random.default_rng(seed)
    left, right = _data("gauss", rng)
    dense, left_nn, left_dist, right_nn, right_dist = _sklearn_lists(left, right, 5, 4)
    mnn1 = {tuple(p) for p in mutual_pairs(left_nn[:, :1].astype(np.int64), right_nn[:, :1].astype(np.int64))}
    assert mnn1  # the check below would be vacuous otherwise

    base = default_temperature(left_dist, right_dist)
    for tau in (base * 1e-2, base, base * 1e2):  # the containment holds at every temperature
        pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
        assert {tuple(p) for p in pairs[weights > 0.5]} <= mnn1

    pairs, _ = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=1.0)
    delta, width = _gap_and_width(pairs, dense[pairs[:, 0], pairs[:, 1]] ** 2, len(left), len(right))
    assert delta > 0  # no ties at the top of a row or column in this data
    tau = 0.5 * delta / np.log(max(width - 1, 1) / (np.sqrt(2) - 1))
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau)
    assert {tuple(p) for p in pairs[weights > 0.5]} == mnn1
    # and the weights approach 1 / 0 as tau -> 0
    pairs, weights = dual_softmax_pairs(left_nn, left_dist, right_nn, right_dist, temperature=tau * 1e-3)
    is_mnn = np.array([tuple(p) in mnn1 for p in pairs])
    assert np.all(weights[is_mnn] > 1 - 1e-12) and np.all(weights[~is_mnn] < 1e-12)


# --- bad input -----------------------------------------------------------------------------------


def _good():
    left_nn = np.array([[0, 1], [1, 2], [2, 0]])
    right_nn = np.array([[0], [1], [2]])
    return {
        "left_nn": left_nn,
        "left_dist": np.ones((3, 2)),
        "right_nn": right_nn,
        "right_dist": np.ones((3, 1)),
        "temperature": 1.0,
    }


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"left_nn": np.ones((3, 2))}, TypeError, "left_nn must be an integer"),
        ({"right_nn": np.ones((3, 1), dtype=bool)}, TypeError, "right_nn must be an integer"),
        ({"left_nn": np.array([0, 1, 2])}, ValueError, "left_nn must be 2-D"),
        ({"left_nn": np.array([[0, 3], [1, 2], [2, 0]])}, ValueError, r"left_nn must hold indices in \[0, 3\)"),
        ({"right_nn": np.array([[0], [-1], [2]])}, ValueError, "right_nn must hold indices"),
        ({"left_nn": np.array([[0, 0], [1, 2], [2, 0]])}, ValueError, "left_nn lists the same neighbour twice"),
        ({"left_dist": np.ones((3, 3))}, ValueError, "left_dist must have the shape of left_nn"),
        ({"right_dist": np.ones(3)}, ValueError, "right_dist must have the shape of right_nn"),
        ({"left_dist": np.array([[1, np.nan], [1, 1], [1, 1]])}, ValueError, "left_dist must hold finite non-neg"),
        ({"right_dist": np.array([[1.0], [np.inf], [1.0]])}, ValueError, "right_dist must hold finite non-neg"),
        ({"right_dist": np.array([[1.0], [-0.1], [1.0]])}, ValueError, "right_dist must hold finite non-neg"),
        ({"left_dist": np.ones((3, 2), dtype=complex)}, TypeError, "left_dist must be a real array"),
        ({"temperature": 0.0}, ValueError, "temperature must be a positive"),
        ({"temperature": -1.0}, ValueError, "temperature must be a positive"),
        ({"temperature": np.inf}, ValueError, "temperature must be a positive"),
        ({"temperature": np.nan}, ValueError, "temperature must be a positive"),
        ({"temperature": "1"}, TypeError, "temperature must be a positive"),
        ({"temperature": True}, TypeError, "temperature must be a positive"),
        ({"min_weight": -0.1}, ValueError, "min_weight must be a finite number >= 0"),
        ({"min_weight": 1.5}, ValueError, "min_weight must be a finite number <= 1"),
        ({"min_weight": None}, TypeError, "min_weight must be a number"),
    ],
)
def test_bad_input(change, error, match):
    kwargs = _good() | change
    with pytest.raises(error, match=match):
        dual_softmax_pairs(
            kwargs.pop("left_nn"), kwargs.pop("left_dist"), kwargs.pop("right_nn"), kwargs.pop("right_dist"), **kwargs
        )


def test_good_input_runs():
    # the base case of test_bad_input is valid: hand-checked weights
    pairs, weights = dual_softmax_pairs(**_good())
    # every distance is 1: uniform over candidates; left 0 has right 0, 1; left 1: right 1, 2; left 2: 2, 0
    np.testing.assert_array_equal(pairs, [[0, 0], [0, 1], [1, 1], [1, 2], [2, 0], [2, 2]])
    np.testing.assert_allclose(weights, 0.25, rtol=1e-15)
