"""The classic method's ``flavor="robust"``: centre-of-mass vectors against a NumPy/scikit-learn version, invariances.

The robust flavour keeps ``mnnCorrect``'s steps (pairs, Gaussian smoothing, var.adj) and changes the
default reference (largest batch first) and the endpoints of each pair's vector (local centres of mass,
:mod:`mnnkit.correction._centres`).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import mnnkit
from mnnkit._config import ROBUST_CENTRE_K, ROBUST_CENTRE_KEEP
from mnnkit.correction.classic._engine import MergeState, MnnParams, _centre_averages


def _trimmed(points_rows: np.ndarray, data: np.ndarray, keep: int) -> np.ndarray:
    dist = ((data[points_rows] - data[points_rows].mean(axis=0)) ** 2).sum(axis=1)
    return points_rows[np.sort(np.argsort(dist, kind="stable")[:keep])]


def naive_centre_vectors(left_in, right_in, left_out, right_out, pairs, left_pool=None, right_pool=None):
    """Per right MNN cell: mean over its pairs of centre(l) - centre(r), members chosen in the in data."""
    centres = []
    for data_in, data_out, cells, pool in (
        (left_in, left_out, np.unique(pairs[:, 0]), left_pool),
        (right_in, right_out, np.unique(pairs[:, 1]), right_pool),
    ):
        pool = np.arange(data_in.shape[0]) if pool is None else pool
        nn = NearestNeighbors(n_neighbors=min(ROBUST_CENTRE_K, pool.size), algorithm="brute").fit(data_in[pool])
        found = pool[nn.kneighbors(data_in[cells], return_distance=False)]
        members = [_trimmed(rows, data_in, ROBUST_CENTRE_KEEP) for rows in found]
        centres.append({c: (data_in[m].mean(0), data_out[m].mean(0)) for c, m in zip(cells, members, strict=True)})
    right_cells = np.unique(pairs[:, 1])
    out = []
    for space in (0, 1):
        out.append(
            np.array(
                [
                    np.mean([centres[0][a][space] - centres[1][r][space] for a, b in pairs if b == r], axis=0)
                    for r in right_cells
                ]
            )
        )
    return right_cells, out


def _data(seed=0, n_left=120, n_right=70, genes=12):
    rng = np.random.default_rng(seed)
    types = rng.normal(scale=3.0, size=(3, genes))
    left = types[rng.integers(0, 3, n_left)] + rng.normal(size=(n_left, genes))
    right = types[rng.integers(0, 3, n_right)] + rng.normal(size=(n_right, genes)) + 2.0
    return left, right


@pytest.mark.parametrize("restricted", [False, True])
def test_centre_averages_match_naive(restricted):
    left_in, right_in = _data(1)
    rng = np.random.default_rng(2)
    left_out, right_out = rng.normal(size=(120, 20)), rng.normal(size=(70, 20))
    data_in = np.vstack([left_in, right_in])
    state = MergeState(
        data_in=data_in, data_out=np.vstack([left_out, right_out]), out_subset_cols=None,
        members=[np.arange(120), np.arange(120, 190)], params=MnnParams(flavor="robust"),
    )  # fmt: skip
    pools = (None, None)
    if restricted:
        mask = rng.random(190) < 0.6
        state.restricted = mask
        pools = np.flatnonzero(mask[:120]), np.flatnonzero(mask[120:])
    left_cells = np.sort(rng.choice(120 if pools[0] is None else pools[0], size=30, replace=False))
    right_cells = rng.choice(70 if pools[1] is None else pools[1], size=30)
    pairs = np.column_stack([left_cells, right_cells]).astype(np.int64)
    cells, averages = _centre_averages(
        state, np.arange(120), np.arange(120, 190), pairs, [(left_in, right_in), (left_out, right_out)]
    )
    expected_cells, expected = naive_centre_vectors(left_in, right_in, left_out, right_out, pairs, *pools)
    np.testing.assert_array_equal(cells, expected_cells)
    for mine, theirs in zip(averages, expected, strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)


def _adata(blocks, names):
    x = np.abs(np.vstack(blocks))
    adata = ad.AnnData(x, obs={"batch": np.repeat(names, [len(b) for b in blocks])})
    adata.obs["batch"] = adata.obs["batch"].astype("category")
    adata.obs_names = [f"{n}-{i}" for n, b in zip(names, blocks, strict=True) for i in range(len(b))]
    return adata


def test_robust_does_not_depend_on_the_batch_order_and_starts_from_the_largest():
    left, right = _data(3)
    third = _data(4, 50, 90)[1] - 1.0
    first = _adata([right, left, third], ["r", "l", "t"])
    mnnkit.correct(first, "batch", flavor="robust")
    assert list(first.uns["mnn"]["merge_order"]) == ["l", "t", "r"]
    assert first.uns["mnn"]["params"]["merge_order"] == "size"
    assert first.uns["mnn"]["params"]["flavor"] == "robust"
    second = _adata([third, left, right], ["t", "l", "r"])
    mnnkit.correct(second, "batch", flavor="robust")
    np.testing.assert_array_equal(second[first.obs_names].layers["mnn"], first.layers["mnn"])
    # an explicit order is followed
    mnnkit.correct(first, "batch", flavor="robust", merge_order=["r", "l", "t"], key_added="given")
    assert list(first.uns["given"]["merge_order"]) == ["r", "l", "t"]


def test_robust_differs_from_batchelor_only_in_the_vectors():
    """With the batches already largest first, the two flavours share the pairs of the first step."""
    left, right = _data(5)
    adata = _adata([left, right], ["a", "b"])
    mnnkit.correct(adata, "batch", key_added="b")
    mnnkit.correct(adata, "batch", flavor="robust", key_added="r")
    pairs_b = np.asarray(adata.uns["b"]["steps"]["step_1"]["pairs"])
    pairs_r = np.asarray(adata.uns["r"]["steps"]["step_1"]["pairs"])
    np.testing.assert_array_equal(pairs_b, pairs_r)
    np.testing.assert_array_equal(adata.layers["b"][:120], adata.layers["r"][:120])  # the reference is kept
    assert not np.allclose(adata.layers["b"][120:], adata.layers["r"][120:])


def test_flavor_errors_and_forwarding():
    left, right = _data(6, 40, 30)
    adata = _adata([left, right], ["a", "b"])
    with pytest.raises(ValueError, match="flavor"):
        mnnkit.correct(adata, "batch", flavor="best")
    with pytest.raises(TypeError, match="method='fast'"):
        mnnkit.correct(adata, "batch", pairing="dual_softmax")
    mnnkit.correct(adata, "batch", method="fast", flavor="robust", d=5)
    assert adata.uns["X_mnn"]["params"]["flavor"] == "robust"
