"""The classic method's default output flows into scanpy; batchelor's layout stays one argument away.

On the shipped pancreas data after the usual preprocessing (normalize_total, log1p, 1000 highly variable
genes as the subset), ``mnnkit.correct`` with every default writes a layer without NaN on which
``sc.pp.pca``, ``sc.pp.neighbors`` and ``sc.tl.umap`` run as they are; ``correct_all=False`` gives
batchelor's default layout (NaN exactly in the genes outside the subset), and both layouts agree on the
subset genes (the invariant that ties the default to the batchelor reference tests).
"""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from threadpoolctl import threadpool_limits

import mnnkit


@pytest.fixture(scope="module")
def prepared():
    adata = mnnkit.datasets.pancreas()
    with threadpool_limits(1):
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=1000, flavor="seurat")
    adata.obs["control"] = np.arange(adata.n_obs) % 3 != 0  # for restrict=
    return adata


def test_default_output_runs_through_pca_neighbors_umap(prepared):
    adata = prepared.copy()
    with threadpool_limits(1):
        mnnkit.correct(adata, "batch", subset="highly_variable")
        layer = adata.layers["mnn"]
        assert not np.isnan(layer).any()
        assert bool(adata.uns["mnn"]["params"]["correct_all"])
        sc.pp.pca(adata, layer="mnn")  # scanpy's defaults (mask_var: var['highly_variable'])
        sc.pp.neighbors(adata)
        sc.tl.umap(adata)
        assert np.isfinite(adata.obsm["X_pca"]).all() and np.isfinite(adata.obsm["X_umap"]).all()
        # every gene, not only the subset: the PCA that fails on batchelor's layout (NaN) runs here
        sc.pp.pca(adata, layer="mnn", mask_var=None, key_added="pca_all")
        assert np.isfinite(adata.obsm["pca_all"]).all()
    # the genes outside the subset were corrected too: the reference batch only cosine-normalised, the other moved
    x = prepared.X.toarray().astype(np.float64)
    hvg = prepared.var["highly_variable"].to_numpy()
    cos = x / np.linalg.norm(x[:, hvg], axis=1, keepdims=True)  # cosine norms from the subset genes
    human = (prepared.obs["batch"] == "human").to_numpy()
    np.testing.assert_allclose(layer[human][:, ~hvg], cos[human][:, ~hvg], rtol=1e-6, atol=1e-7)
    moved = np.abs(layer[~human][:, ~hvg] - cos[~human][:, ~hvg]).max(axis=1)
    assert (moved > 1e-4).all()


def test_batchelor_layout_is_nan_exactly_outside_the_subset(prepared):
    adata = prepared.copy()
    with threadpool_limits(1):
        mnnkit.correct(adata, "batch", subset="highly_variable", correct_all=False)
    hvg = adata.var["highly_variable"].to_numpy()
    layer = adata.layers["mnn"]
    assert np.isfinite(layer[:, hvg]).all()
    assert np.isnan(layer[:, ~hvg]).all()
    assert not bool(adata.uns["mnn"]["params"]["correct_all"])
    # what the default avoids: scanpy cannot take every gene of this layout
    with pytest.raises(ValueError, match="NaN"):
        sc.pp.pca(adata, layer="mnn", mask_var=None)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"svd_dim": 2},
        {"var_adj": False, "cos_norm_out": False},
        {"merge_order": "auto"},
        {"restrict": "control"},
        {"k": (10, 15), "sigma": 0.2},
        # not here: cos_norm_out=False with var_adj=True, where the kernel on raw-scale values turns the last
        # bits of the sums into a different var.adj quantile for a few cells (ALGORITHM.md 1.2.6)
    ],
    ids=lambda options: ",".join(options) or "defaults",
)
@pytest.mark.parametrize("batch_key", ["batch", "sample"])  # 2 batches, or 6 samples merged in 5 steps
def test_subset_columns_of_both_layouts_agree(prepared, options, batch_key):
    adata = prepared.copy()
    with threadpool_limits(1):
        mnnkit.correct(adata, batch_key, subset="highly_variable", key_added="every", **options)
        mnnkit.correct(adata, batch_key, subset="highly_variable", correct_all=False, key_added="subset", **options)
    hvg = adata.var["highly_variable"].to_numpy()
    np.testing.assert_allclose(adata.layers["every"][:, hvg], adata.layers["subset"][:, hvg], rtol=0, atol=1e-6)
    every, subset = adata.uns["every"], adata.uns["subset"]
    assert list(every["merge_order"]) == list(subset["merge_order"])
    assert sorted(every["steps"]) == sorted(subset["steps"])
    for step in subset["steps"]:
        np.testing.assert_array_equal(every["steps"][step]["pairs"], subset["steps"][step]["pairs"])
    assert np.isfinite(adata.layers["every"]).all()


def test_without_a_subset_both_layouts_are_the_same(prepared):
    adata = prepared[:, prepared.var["highly_variable"].to_numpy()].copy()
    with threadpool_limits(1):
        mnnkit.correct(adata, "batch", key_added="every")
        mnnkit.correct(adata, "batch", correct_all=False, key_added="subset")
    np.testing.assert_array_equal(adata.layers["every"], adata.layers["subset"])
