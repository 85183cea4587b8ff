"""Tests of mnnkit.pca against scikit-learn and scanpy."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import scipy.sparse as sp
from sklearn.decomposition import PCA, TruncatedSVD
from threadpoolctl import threadpool_limits

import mnnkit
from mnnkit.linalg import pca

PANCREAS = Path(__file__).resolve().parents[1] / "data" / "cider_pancreas_human_mouse.h5ad"


def _adata(fmt="csr", dtype=np.float64, n=120, g=60, seed=0):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n)
    means = rng.gamma(2.0, 1.0, size=(3, g))
    counts = rng.poisson(means[groups]).astype(dtype)
    X = counts if fmt == "dense" else sp.csr_matrix(counts).asformat(fmt)
    adata = ad.AnnData(X)
    adata.var["highly_variable"] = counts.var(0) > np.median(counts.var(0))
    adata.layers["scaled"] = counts * 2.0
    return adata


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """Dense references here are small; threaded BLAS only adds contention on shared CI machines."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def pancreas():
    adata = ad.read_h5ad(PANCREAS)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_pca_matches_sklearn(fmt, dtype):
    adata = _adata(fmt, dtype)
    dense = np.asarray(adata.X.toarray() if sp.issparse(adata.X) else adata.X, dtype=np.float64)
    ref = PCA(n_components=10, svd_solver="full").fit(dense)
    pca(adata, n_comps=10, method="exact")
    rtol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(adata.uns["pca"]["variance"], ref.explained_variance_, rtol=rtol)
    np.testing.assert_allclose(adata.uns["pca"]["variance_ratio"], ref.explained_variance_ratio_, rtol=rtol)
    # same sign convention as sklearn (largest |loading| positive), so no alignment is needed
    np.testing.assert_allclose(adata.varm["PCs"], ref.components_.T, atol=1e-5 if dtype == np.float32 else 1e-9)
    np.testing.assert_allclose(adata.obsm["X_pca"], ref.transform(dense), atol=1e-4 if dtype == np.float32 else 1e-9)
    assert adata.obsm["X_pca"].dtype == dtype


def test_randomized_pca_on_pancreas_matches_exact_and_scanpy(pancreas):
    adata = pancreas.copy()
    pca(adata, n_comps=20)  # 350 x 12474: the randomized path
    assert adata.uns["pca"]["params"]["method"] == "randomized"
    # exact reference from the small side: eigendecomposition of A A^T (A = centred data, 350 x 350)
    A = pancreas.X.toarray().astype(np.float64)
    A -= A.mean(axis=0)
    evals, evecs = np.linalg.eigh(A @ A.T)
    evals, evecs = evals[::-1][:20], evecs[:, ::-1][:, :20]
    var_e = evals / (A.shape[0] - 1)
    loadings_e = (A.T @ evecs) / np.sqrt(evals)
    var_r = adata.uns["pca"]["variance"]
    # flat scRNA-seq spectrum: the leading components converge fastest (default n_iter)
    np.testing.assert_allclose(var_r[:5], var_e[:5], rtol=1e-6)
    np.testing.assert_allclose(var_r[:10], var_e[:10], rtol=5e-5)
    np.testing.assert_allclose(var_r, var_e, rtol=2e-2)
    assert (var_r <= var_e * (1 + 1e-9)).all()  # Rayleigh-Ritz values never exceed the true ones
    np.testing.assert_allclose(adata.uns["pca"]["variance_ratio"], var_r / A.var(axis=0, ddof=1).sum(), rtol=1e-10)
    scores_e = evecs * np.sqrt(evals)
    scale = np.abs(scores_e[:, :3]).max()
    np.testing.assert_allclose(np.abs(adata.obsm["X_pca"][:, :3]), np.abs(scores_e[:, :3]), atol=1e-6 * scale)

    ref = sc.pp.pca(pancreas, n_comps=20, svd_solver="arpack", copy=True, dtype="float64")
    np.testing.assert_allclose(var_r[:5], ref.uns["pca"]["variance"][:5], rtol=1e-5)  # scanpy: float32 ARPACK
    np.testing.assert_allclose(np.abs(adata.obsm["X_pca"][:, :3]), np.abs(ref.obsm["X_pca"][:, :3]), atol=1e-4 * scale)
    for other in (loadings_e, ref.varm["PCs"]):  # top-10 subspaces: largest principal angle
        cos = np.linalg.svd(adata.varm["PCs"][:, :10].T @ other[:, :10], compute_uv=False)
        assert np.sqrt(1 - cos.min() ** 2) < 1e-2


def test_scanpy_layout_and_keys():
    adata = _adata()
    assert mnnkit.pca is pca
    assert pca(adata, n_comps=5) is None
    assert set(adata.uns["pca"]) >= {"variance", "variance_ratio", "params"}
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 5)
    assert adata.varm["PCs"].shape == (adata.n_vars, 5)
    np.testing.assert_allclose(adata.varm["PCs"].T @ adata.varm["PCs"], np.eye(5), atol=1e-10)
    pca(adata, n_comps=4, key_added="mine")
    assert adata.obsm["mine"].shape == (adata.n_obs, 4) and "mine" in adata.varm and "mine" in adata.uns
    np.testing.assert_allclose(adata.obsm["mine"], adata.obsm["X_pca"][:, :4], atol=1e-8)


def test_copy_does_not_modify():
    adata = _adata()
    X0 = adata.X.copy()
    out = pca(adata, n_comps=5, copy=True)
    assert "X_pca" not in adata.obsm and "pca" not in adata.uns
    assert (adata.X != X0).nnz == 0
    assert out is not adata and out.obsm["X_pca"].shape == (adata.n_obs, 5)


def test_subset_and_layer():
    adata = _adata()
    mask = adata.var["highly_variable"].to_numpy()
    pca(adata, n_comps=5, subset="highly_variable")
    sub = adata[:, mask].copy()
    pca(sub, n_comps=5)
    np.testing.assert_allclose(adata.obsm["X_pca"], sub.obsm["X_pca"], atol=1e-10)
    assert np.all(adata.varm["PCs"][~mask] == 0)
    np.testing.assert_allclose(adata.varm["PCs"][mask], sub.varm["PCs"], atol=1e-10)
    pca(adata, n_comps=5, subset=mask, key_added="mask")
    np.testing.assert_allclose(adata.obsm["mask"], sub.obsm["X_pca"], atol=1e-10)
    full = pca(adata, n_comps=5, copy=True)
    pca(adata, n_comps=5, layer="scaled", key_added="scaled")  # layer = 2 * X
    np.testing.assert_allclose(adata.uns["scaled"]["variance"], 4 * full.uns["pca"]["variance"], rtol=1e-10)
    np.testing.assert_allclose(adata.obsm["scaled"], 2 * full.obsm["X_pca"], rtol=1e-10, atol=1e-10)


def test_zero_center_false_matches_truncated_svd():
    adata = _adata("csr")
    dense = adata.X.toarray()
    ref = TruncatedSVD(n_components=6, algorithm="arpack").fit(dense)
    pca(adata, n_comps=6, zero_center=False, method="exact")
    np.testing.assert_allclose(adata.uns["pca"]["variance_ratio"], ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(np.abs(adata.varm["PCs"]), np.abs(ref.components_.T), atol=1e-8)


def test_reproducible_bitwise():
    adata = _adata("csr", n=2000, g=1100)  # large enough for the randomized path
    a = pca(adata, n_comps=8, rng=3, copy=True)
    b = pca(adata, n_comps=8, rng=3, copy=True)
    assert a.uns["pca"]["params"]["method"] == "randomized"
    assert np.array_equal(a.obsm["X_pca"], b.obsm["X_pca"])
    assert np.array_equal(a.varm["PCs"], b.varm["PCs"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_comps": 60}, ValueError, r"n_comps.*smaller than min\(n_obs, n_genes\)"),
        ({"n_comps": 0}, ValueError, "n_comps"),
        ({"layer": "counts"}, ValueError, "layer 'counts' not in adata.layers; available: scaled"),
        ({"subset": "hvg"}, ValueError, "subset.*boolean columns: \\['highly_variable'\\]"),
        ({"subset": np.ones(3, bool)}, ValueError, "subset.*length"),
        ({"subset": np.zeros(60, bool)}, ValueError, "selects no genes"),
        ({"key_added": ""}, ValueError, "key_added"),
        ({"method": "svd"}, ValueError, "method"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pca(_adata(), **kwargs)


def test_bad_data():
    with pytest.raises(TypeError, match="AnnData"):
        pca(np.ones((5, 5)))
    adata = _adata("dense")
    adata.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        pca(adata, n_comps=3)
    const = ad.AnnData(np.ones((10, 6)))
    with pytest.raises(ValueError, match="constant"):
        pca(const, n_comps=2)
    adata = _adata()
    adata.var["label"] = "x"
    with pytest.raises(ValueError, match="must be boolean"):
        pca(adata, subset="label")
    empty = ad.AnnData(obs={"a": np.arange(5)})
    empty = ad.AnnData(X=None, obs=empty.obs, var=ad.AnnData(np.ones((5, 3))).var)
    with pytest.raises(ValueError, match="adata.X is None"):
        pca(empty, n_comps=1)
