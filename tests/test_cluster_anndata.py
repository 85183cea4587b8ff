"""Tests of mnnkit.gmm(adata) on synthetic clusters and the shipped pancreas data."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture as SkGMM

import mnnkit
from mnnkit.cluster import gmm

PANCREAS = Path(__file__).resolve().parents[1] / "data" / "cider_pancreas_human_mouse.h5ad"


@pytest.fixture(scope="module")
def blobs_adata():
    X, y = make_blobs(n_samples=800, n_features=5, centers=4, cluster_std=1.0, random_state=2)
    adata = ad.AnnData(np.zeros((800, 3)))
    adata.obsm["X_mnn"] = X
    adata.obs["truth"] = y
    return adata


@pytest.fixture(scope="module")
def pancreas():
    adata = ad.read_h5ad(PANCREAS)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    return adata


def test_known_clusters(blobs_adata):
    adata = blobs_adata.copy()
    assert gmm(adata, n_components=4) is None
    labels = adata.obs["gmm"]
    assert isinstance(labels.dtype, pd.CategoricalDtype)
    assert list(labels.cat.categories) == ["0", "1", "2", "3"]
    assert adjusted_rand_score(adata.obs["truth"], labels) > 0.99
    proba = adata.obsm["gmm_proba"]
    assert proba.shape == (800, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1).astype(str), labels.to_numpy())
    uns = adata.uns["gmm"]
    assert uns["n_components"] == 4 and uns["converged"]
    assert "criterion_values" not in uns  # single value: no curve


def test_range_selects_true_k_by_bic_and_matches_sklearn(blobs_adata):
    adata = blobs_adata.copy()
    gmm(adata, n_components=range(3, 6), key_added="sel", rng=0)
    uns = adata.uns["sel"]
    assert uns["n_components"] == 4
    np.testing.assert_array_equal(uns["n_components_tested"], np.arange(3, 6))
    X = adata.obsm["X_mnn"]
    expected = [SkGMM(k, random_state=0).fit(X).bic(X) for k in range(3, 6)]
    np.testing.assert_allclose(uns["criterion_values"], expected, rtol=1e-6)
    assert uns["bic"] == min(uns["criterion_values"])
    gmm(adata, n_components=[5, 4], criterion="aic", key_added="aic", rng=0)
    expected_aic = [SkGMM(k, random_state=0).fit(X).aic(X) for k in (4, 5)]
    np.testing.assert_allclose(adata.uns["aic"]["criterion_values"], expected_aic, rtol=1e-6)


def test_pancreas_pca_clusters(pancreas):
    """Cell types of the human batch separate on its PCA; the full data agree with scikit-learn."""
    human = pancreas[pancreas.obs["batch"] == "human"].copy()
    mnnkit.pca(human, n_comps=10)
    gmm(human, use_rep="X_pca", n_components=5, n_init=5)
    assert adjusted_rand_score(human.obs["cell_type"], human.obs["gmm"]) > 0.9

    full = pancreas.copy()
    mnnkit.pca(full, n_comps=10)
    gmm(full, use_rep="X_pca", n_components=6, covariance_type="diag", rng=3)
    ref = SkGMM(6, covariance_type="diag", random_state=3).fit(full.obsm["X_pca"])
    np.testing.assert_array_equal(full.obs["gmm"].astype(int).to_numpy(), ref.predict(full.obsm["X_pca"]))
    np.testing.assert_allclose(full.uns["gmm"]["lower_bound"], ref.lower_bound_, rtol=1e-6)


def test_copy_and_generator(blobs_adata):
    adata = blobs_adata.copy()
    out = gmm(adata, n_components=4, copy=True, rng=np.random.default_rng(0))
    assert "gmm" not in adata.obs and "gmm_proba" not in adata.obsm
    assert adjusted_rand_score(out.obs["truth"], out.obs["gmm"]) > 0.99


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"use_rep": "X_umap"}, ValueError, "use_rep 'X_umap' not in adata.obsm; available: X_mnn"),
        ({"criterion": "icl"}, ValueError, "criterion"),
        ({"n_components": 801}, ValueError, "exceeds the number of cells"),
        ({"n_components": 0}, ValueError, "n_components"),
        ({"n_components": []}, ValueError, "n_components"),
        ({"n_components": "4"}, TypeError, "n_components"),
        ({"key_added": ""}, ValueError, "key_added"),
        ({"rng": "zero"}, TypeError, "rng"),
        ({"covariance_type": "banded"}, ValueError, "covariance_type"),
    ],
)
def test_bad_arguments(blobs_adata, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        gmm(blobs_adata.copy(), **kwargs)


def test_bad_data(blobs_adata):
    with pytest.raises(TypeError, match="AnnData"):
        gmm(np.ones((5, 2)))
    adata = blobs_adata.copy()
    adata.obsm["X_mnn"] = adata.obsm["X_mnn"].copy()
    adata.obsm["X_mnn"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gmm(adata, n_components=2)
    adata.obsm["sparse"] = sp.csr_matrix(np.ones((800, 2)))
    with pytest.raises(TypeError, match="sparse"):
        gmm(adata, use_rep="sparse")
