import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from scipy import sparse
from sklearn.neighbors import KNeighborsTransformer, NearestNeighbors

from mnnkit.neighbors import NeighborResult, knn
from mnnkit.neighbors._exact import exact_knn


def _truth_on_integer_points(query, data, k, exclude_self):
    """Exact kNN of integer-valued points by integer arithmetic, ties by lower index (independent truth)."""
    q = query.astype(np.int64)
    d = data.astype(np.int64)
    sq = ((q[:, None, :] - d[None, :, :]) ** 2).sum(axis=2)
    if exclude_self:
        np.fill_diagonal(sq, np.iinfo(np.int64).max)
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[0]), sq.shape), sq), axis=1)[:, :k]
    return order, np.sqrt(np.take_along_axis(sq, order, axis=1).astype(np.float64))


def test_matches_sklearn_on_continuous_data_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 12))
    q = rng.normal(size=(50, 12))
    dist, idx = NearestNeighbors(n_neighbors=9, algorithm="kd_tree").fit(x).kneighbors()
    nn = knn(x, x, 9, exclude_self=True)
    np.testing.assert_array_equal(nn.indices, idx)
    np.testing.assert_allclose(nn.distances, dist, rtol=1e-13, atol=0)
    dist_q, idx_q = NearestNeighbors(n_neighbors=7, algorithm="brute").fit(x).kneighbors(q)
    nn_q = knn(q, x, 7)
    np.testing.assert_array_equal(nn_q.indices, idx_q)
    np.testing.assert_allclose(nn_q.distances, dist_q, rtol=1e-12, atol=1e-12)
    again = knn(q, x, 7)
    assert again.indices.tobytes() == nn_q.indices.tobytes()
    assert again.distances.tobytes() == nn_q.distances.tobytes()


def test_ties_on_duplicated_points_go_to_lower_index():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 4, size=(40, 2))
    x = np.concatenate([base, base[:15], base[:5]]).astype(np.float64)  # many exact duplicates
    x = x[rng.permutation(x.shape[0])]
    for exclude_self in (True, False):
        nn = knn(x, x, 12, exclude_self=exclude_self)
        idx, dist = _truth_on_integer_points(x, x, 12, exclude_self)
        np.testing.assert_array_equal(nn.indices, idx)
        np.testing.assert_array_equal(nn.distances, dist)
    # sklearn agrees on distances; its order among equal distances is unspecified
    dist_sk, _ = NearestNeighbors(n_neighbors=12).fit(x).kneighbors()
    np.testing.assert_allclose(knn(x, x, 12, exclude_self=True).distances, dist_sk, atol=1e-12)
    # duplicates of a cell remain its neighbours at distance 0 with exclude_self
    dup = np.nonzero((x == x[0]).all(axis=1))[0]
    assert dup.size > 1
    row = knn(x, x, dup.size - 1, exclude_self=True)
    np.testing.assert_array_equal(row.indices[0], dup[1:])
    np.testing.assert_array_equal(row.distances[0], 0.0)


def test_exact_even_far_from_origin_where_the_dot_product_expansion_is_inaccurate():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 5, size=(150, 3)).astype(np.float64)
    idx, dist = _truth_on_integer_points(x, x, 10, True)
    far = x + 1e7  # |x|^2 ~ 3e14: the BLAS expansion loses all digits of distances ~1
    nn = knn(far, far, 10, exclude_self=True)
    np.testing.assert_array_equal(nn.indices, idx)
    np.testing.assert_array_equal(nn.distances, dist)


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(300, 5)), 1)  # rounded: ties exist
    q = x[:97]
    ref_idx, ref_dist = exact_knn(q, x, 8, exclude_self=False)
    for chunk_bytes in (1, 8 * 300 * 7, 10**9):
        idx, dist = exact_knn(q, x, 8, exclude_self=False, chunk_bytes=chunk_bytes)
        assert idx.tobytes() == ref_idx.tobytes() and dist.tobytes() == ref_dist.tobytes()


def test_dtypes_and_caller_data_untouched():
    rng = np.random.default_rng(4)
    x32 = rng.normal(size=(80, 3)).astype(np.float32)
    keep = x32.copy()
    nn32 = knn(x32, x32, 4, exclude_self=True)
    nn64 = knn(x32.astype(np.float64), x32.astype(np.float64), 4, exclude_self=True)
    np.testing.assert_array_equal(nn32.indices, nn64.indices)
    np.testing.assert_array_equal(x32, keep)
    xi = rng.integers(0, 10, size=(30, 2))
    np.testing.assert_array_equal(knn(xi, xi, 3).indices, knn(xi.astype(float), xi.astype(float), 3).indices)
    assert isinstance(nn32, NeighborResult) and nn32.indices.shape == (80, 4)


def test_k_equal_to_all_other_points():
    x = np.arange(6, dtype=float)[:, None]
    nn = knn(x, x, 5, exclude_self=True)
    np.testing.assert_array_equal(nn.indices[0], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(nn.indices[3], [2, 4, 1, 5, 0])
    np.testing.assert_array_equal(nn.distances[3], [1, 1, 2, 2, 3])


def test_user_estimators_are_used_and_checked():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(120, 4))
    q = rng.normal(size=(10, 4))
    ref = knn(x, x, 6, exclude_self=True)
    fitted = NearestNeighbors().fit(x)
    via = knn(x, x, 6, method=fitted, exclude_self=True)
    np.testing.assert_array_equal(via.indices, ref.indices)
    np.testing.assert_allclose(via.distances, ref.distances, rtol=1e-12)
    trans = KNeighborsTransformer(n_neighbors=6, mode="distance").fit(x)
    via_t = knn(q, x, 5, method=trans)
    np.testing.assert_array_equal(via_t.indices, knn(q, x, 5).indices)
    other = NearestNeighbors().fit(x[:50])
    with pytest.raises(ValueError, match="fitted on 50 cells but data has 120"):
        knn(x, x, 3, method=other)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query": np.array([[np.nan, 0.0]])}, ValueError, r"query contains NaN.*row 0"),
        ({"data": np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]])}, ValueError, r"data contains NaN.*row 0"),
        ({"query": np.zeros(3)}, ValueError, "query must be 2-D"),
        ({"query": sparse.csr_matrix(np.eye(2))}, TypeError, "query must be a dense array"),
        ({"query": np.array([["a", "b"]])}, TypeError, "real numeric"),
        ({"query": np.zeros((2, 3))}, ValueError, "same number of features, got 3 and 2"),
        ({"k": 0}, ValueError, "k must be between 1 and n_data = 3"),
        ({"k": 3, "exclude_self": True}, ValueError, r"between 1 and n_data - 1 \(exclude_self=True\) = 2"),
        ({"k": 2.0}, TypeError, "k must be an int"),
        ({"k": True}, TypeError, "k must be an int"),
        ({"query": np.zeros((2, 2)), "exclude_self": True}, ValueError, "same cells, got 2 query and 3 data"),
        ({"exclude_self": 1}, TypeError, "exclude_self must be True or False, got 1"),
        ({"method": "annoy"}, ValueError, "method must be 'exact', 'pynndescent'"),
        ({"method": 3}, TypeError, "method must be .* got int"),
        ({"method": "pynndescent", "rng": -1}, ValueError, "non-negative int seed"),
        ({"method": "pynndescent", "rng": 0.5}, TypeError, "rng must be an int seed"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"query": np.eye(3, 2), "data": np.eye(3, 2), "k": 1} | kwargs
    with pytest.raises(error, match=match):
        knn(args.pop("query"), args.pop("data"), args.pop("k"), **args)


_NOJIT_SCRIPT = """
import json, numba, numpy as np
from mnnkit.neighbors import _kernels
from mnnkit.neighbors._exact import exact_knn
assert numba.config.DISABLE_JIT
x = np.array({x}, dtype=float)
idx, dist = exact_knn(x, x, 4, exclude_self=True, chunk_bytes=100)
pd = np.empty((x.shape[0], 2))
_kernels.pair_distances(x, x, np.ascontiguousarray(idx[:, :2]), pd)
print(json.dumps({{"idx": idx.tolist(), "dist": dist.tolist(), "pair": pd.tolist()}}))
"""


def test_kernels_run_without_jit_and_agree_with_jit():
    from mnnkit.neighbors import _kernels

    rng = np.random.default_rng(6)
    x = np.concatenate([rng.integers(0, 3, size=(12, 2)), rng.integers(0, 3, size=(4, 2))]).astype(float)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run(
        [sys.executable, "-c", _NOJIT_SCRIPT.format(x=x.tolist())], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)
    idx, dist = exact_knn(x, x, 4, exclude_self=True, chunk_bytes=100)
    truth_idx, truth_dist = _truth_on_integer_points(x, x, 4, True)
    np.testing.assert_array_equal(got["idx"], truth_idx)
    np.testing.assert_array_equal(idx, truth_idx)
    np.testing.assert_array_equal(got["dist"], dist)
    pd = np.empty((x.shape[0], 2))
    _kernels.pair_distances(x, x, np.ascontiguousarray(idx[:, :2]), pd)
    np.testing.assert_array_equal(got["pair"], pd)
    np.testing.assert_array_equal(pd, truth_dist[:, :2])
    assert isinstance(_kernels._select_rows, numba.core.registry.CPUDispatcher)


def test_many_rows_and_ties_where_the_record_is_compacted():
    # far more data rows than 4 k, so the first pass compacts its record of near rows several times;
    # integer points with many exact duplicates put ties at the k-th distance
    rng = np.random.default_rng(7)
    x = rng.integers(0, 6, size=(2500, 3)).astype(np.float64)
    q = np.concatenate([x[:150], rng.integers(0, 6, size=(50, 3)).astype(np.float64)])
    for k in (1, 20, 90):
        idx, dist = exact_knn(q, x, k, exclude_self=False)
        truth_idx, truth_dist = _truth_on_integer_points(q, x, k, False)
        np.testing.assert_array_equal(idx, truth_idx)
        np.testing.assert_array_equal(dist, truth_dist)
    idx, dist = exact_knn(x[:200], x, 30, exclude_self=True)
    truth_idx, truth_dist = _truth_on_integer_points(x[:200], x, 30, True)
    np.testing.assert_array_equal(idx, truth_idx)
    np.testing.assert_array_equal(dist, truth_dist)


def test_kth_smallest_matches_a_sort():
    from mnnkit.neighbors._kernels import _kth_smallest

    rng = np.random.default_rng(8)
    for n in (1, 2, 5, 16, 17, 40, 333):
        for values in (rng.normal(size=n), rng.integers(0, 3, size=n).astype(float), np.full(n, 2.5)):
            ordered = np.sort(values)
            scratch = np.empty(n)
            for k in {1, (n + 1) // 2, n}:
                assert _kth_smallest(values, n, k, scratch) == ordered[k - 1]
