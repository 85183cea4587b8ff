import json
import os
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from harmonypy import compute_lisi
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA

from mnnkit._warnings import ParameterWarning
from mnnkit.metrics import clisi, ilisi, lisi
from mnnkit.neighbors import NeighborResult, knn

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def blobs():
    x, cell_type = make_blobs(n_samples=1200, n_features=6, centers=4, cluster_std=2.5, random_state=0)
    batch = np.random.default_rng(0).choice(["a", "b", "c"], size=1200)
    return x, pd.DataFrame({"batch": batch, "cell_type": cell_type})


@pytest.fixture(scope="module")
def canek():
    adata = ad.read_h5ad(DATA / "canek_simbatches.h5ad")
    pcs = PCA(n_components=20, random_state=0).fit_transform(np.asarray(adata.X, dtype=np.float64))
    return pcs, adata.obs[["batch", "cell_type"]].reset_index(drop=True)


@pytest.mark.parametrize("perplexity", [30, 10, 7.5])
def test_matches_harmonypy_on_blobs(blobs, perplexity):
    x, meta = blobs
    ref = compute_lisi(x, meta, ["batch", "cell_type"], perplexity=perplexity)
    for col, key in enumerate(["batch", "cell_type"]):
        np.testing.assert_allclose(lisi(x, meta[key], perplexity=perplexity), ref[:, col], rtol=0, atol=1e-6)


def test_matches_harmonypy_on_shipped_data(canek):
    pcs, meta = canek
    ref = compute_lisi(pcs, meta, ["batch", "cell_type"])
    ours_batch = lisi(pcs, meta["batch"])
    ours_type = lisi(pcs, meta["cell_type"].to_numpy())
    assert np.abs(ours_batch - ref[:, 0]).max() <= 1e-6
    assert np.abs(ours_type - ref[:, 1]).max() <= 1e-6
    # the shipped data is a real mixing problem: values span the range, not a constant
    assert ours_batch.min() < 1.1 and ours_batch.max() > 1.8


def test_neighbor_result_and_sparse_graph_inputs_give_the_same_values(blobs):
    x, meta = blobs
    direct = lisi(x, meta["batch"])
    nn = knn(x, x, 120, exclude_self=True)  # more than the 90 needed: the first 90 are used
    np.testing.assert_array_equal(lisi(nn, meta["batch"]), direct)
    np.testing.assert_array_equal(lisi(nn.subset(90).to_sparse(), meta["batch"]), direct)


def test_fewer_cells_than_neighbours_uses_all_cells_like_harmonypy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    meta = pd.DataFrame({"b": rng.integers(0, 2, 40)})
    ref = compute_lisi(x, meta, ["b"], perplexity=30)[:, 0]
    with pytest.warns(ParameterWarning, match="only 40 cells; using all 39"):
        ours = lisi(x, meta["b"], perplexity=30)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_mixed_versus_separated_batches_and_scaled_summaries():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(900, 5))
    mixed = rng.integers(0, 3, 900)
    # evenly mixed: effective number of batches close to 3 (a ~30-cell sample of 3 equal batches)
    assert 2.5 < ilisi(x, mixed, scale=False) <= 3.0
    separated_x = x + np.repeat(np.eye(5)[:3] * 50, 300, axis=0)
    separated = np.repeat([0, 1, 2], 300)
    per_cell = lisi(separated_x, separated)
    np.testing.assert_allclose(per_cell, 1.0, atol=1e-9)
    assert ilisi(separated_x, separated) == pytest.approx(0.0, abs=1e-9)
    raw = ilisi(x, mixed, scale=False)
    assert ilisi(x, mixed) == pytest.approx((raw - 1) / 2)
    assert clisi(separated_x, separated, scale=False) == pytest.approx(1.0)
    assert clisi(separated_x, separated) == pytest.approx(1.0)
    raw_c = clisi(x, mixed, scale=False)
    assert clisi(x, mixed) == pytest.approx((3 - raw_c) / 2)


def test_deterministic_and_input_untouched(blobs):
    x, meta = blobs
    x_copy = x.copy()
    a = lisi(x, meta["batch"])
    b = lisi(x, meta["batch"])
    assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(x, x_copy)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, b: lisi(x, b[:-1]), ValueError, "batch|labels has 199 entries but there are 200 cells"),
        (lambda x, b: lisi(np.where(np.eye(200, 3) == 1, np.nan, x), b), ValueError, "X contains NaN"),
        (lambda x, b: lisi(x, np.where(np.arange(200) == 5, None, b.astype(object))), ValueError, "missing.*5"),
        (lambda x, b: lisi(x, b, perplexity=0.5), ValueError, "perplexity must be finite and >= 1"),
        (lambda x, b: lisi(x, b, perplexity="30"), TypeError, "perplexity must be a number"),
        (lambda x, b: lisi(knn(x, x, 10, exclude_self=True), b), ValueError, "holds 10 neighbours .* needs 90"),
        (lambda x, b: lisi(knn(x, x, 91), b), ValueError, "row 0 lists the cell itself"),
        (lambda x, b: ilisi(x, np.zeros(200)), ValueError, "at least 2 batches"),
        (lambda x, b: clisi(x, np.zeros(200)), ValueError, "at least 2 distinct labels"),
        (lambda x, b: lisi(x[:1], b[:1]), ValueError, "at least 2 cells"),
    ],
)
def test_bad_input(call, error, match):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    b = rng.integers(0, 2, 200)
    with pytest.raises(error, match=match):
        call(x, b)


def test_neighbor_result_over_other_cells_is_rejected():
    foreign = NeighborResult(np.tile(np.arange(60, 63), (50, 1)), np.ones((50, 3)))
    with pytest.raises(ValueError, match="same 50 cells"):
        lisi(foreign, np.zeros(50), perplexity=1)


_NOJIT_SCRIPT = """
import json, numba, numpy as np
from mnnkit.metrics import _kernels
assert numba.config.DISABLE_JIT
dist = np.array({dist}); idx = np.array({idx}); codes = np.array({codes})
out = np.empty(dist.shape[0])
_kernels.simpson_index(dist, idx, codes, 2, 2.0, 1e-5, 50, out)
print(json.dumps(out.tolist()))
"""


def test_simpson_kernel_without_jit_matches_jit_and_harmonypy():
    from mnnkit.metrics import _kernels

    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 2))
    codes = rng.integers(0, 2, 30)
    nn = knn(x, x, 6, exclude_self=True)
    dist = nn.distances.copy()
    dist[0] = 1e300  # all weights underflow on the first try: the H == 0 branch, then recovery
    script = _NOJIT_SCRIPT.format(dist=dist.tolist(), idx=nn.indices.tolist(), codes=codes.tolist())
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    nojit = np.array(json.loads(out.stdout))
    jit = np.empty(30)
    _kernels.simpson_index(dist, nn.indices, codes, 2, 2.0, 1e-5, 50, jit)
    np.testing.assert_array_equal(nojit, jit)
    assert jit[0] == -1.0  # degenerate row flagged, reported as LISI 0 like harmonypy
    ref = compute_lisi(x, pd.DataFrame({"c": codes}), ["c"], perplexity=2)[1:, 0]
    np.testing.assert_allclose(1 / jit[1:], ref, atol=1e-6)
