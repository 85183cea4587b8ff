"""Bad input to mnnkit.fast_mnn / correct(method="fast"): clear errors before any work, and the caller's data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mnnkit
from mnnkit import SkippedMergeWarning
from mnnkit._warnings import ParameterWarning


def small(n=(30, 40), genes=12, seed=0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 0.5, size=(sum(n), genes))
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.repeat([f"b{i}" for i in range(len(n))], n))},
        index=[f"c{i}" for i in range(sum(n))],
    )
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))
    adata.obsm["X_pca"] = rng.normal(size=(sum(n), 5))
    return adata


def test_use_rep_missing_lists_what_is_there() -> None:
    adata = small()
    adata.obsm["X_umap"] = np.zeros((adata.n_obs, 2))
    with pytest.raises(ValueError, match=r"use_rep 'X_scvi' not in adata.obsm; available: X_pca, X_umap"):
        mnnkit.fast_mnn(adata, "batch", use_rep="X_scvi")


def test_d_larger_than_genes_or_cells() -> None:
    adata = small(genes=12)
    with pytest.raises(ValueError, match=r"d=13 is larger than the number of genes used \(12\) or of cells \(70\)"):
        mnnkit.fast_mnn(adata, "batch", d=13, k=5)
    with pytest.raises(ValueError, match=r"d=50 is larger .* pass d <= 12"):
        mnnkit.fast_mnn(adata, "batch", k=5)  # the default d=50 needs 50 genes
    tall = small(n=(5, 6), genes=40)
    with pytest.raises(ValueError, match=r"of cells \(11\)"):
        mnnkit.fast_mnn(tall, "batch", d=20, k=3)
    with pytest.raises(ValueError, match=r"d=6 is larger than the 5 dimensions of adata.obsm\['X_pca'\]"):
        mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", d=6)


def test_nan_in_embedding_or_matrix() -> None:
    adata = small()
    adata.obsm["X_pca"][7, 2] = np.nan
    with pytest.raises(ValueError, match=r"adata.obsm\['X_pca'\] contains NaN or infinite values in 1 cells .*row 7"):
        mnnkit.fast_mnn(adata, "batch", use_rep="X_pca")
    adata.X[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"adata.X contains 1 NaN or infinite"):
        mnnkit.fast_mnn(adata, "batch", d=5, k=5)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 2.5}, TypeError, "k must be a positive integer"),
        ({"k": (5, 6)}, TypeError, "k must be a positive integer"),
        ({"prop_k": 1.5}, ValueError, r"prop_k must be None or a number in \(0, 1\]"),
        ({"ndist": 0}, ValueError, "ndist must be a positive finite number"),
        ({"d": 0}, ValueError, "d must be None or a positive integer"),
        ({"min_batch_skip": -1}, ValueError, "min_batch_skip must be a finite number >= 0"),
        ({"svd_solver": "arpack"}, ValueError, "svd_solver must be one of"),
        ({"neighbors": "annoy"}, ValueError, "neighbors must be one of"),
        ({"reconstruct": "dense"}, ValueError, "reconstruct must be one of"),
        ({"cos_norm": "yes"}, TypeError, "cos_norm must be None, True or False"),
        ({"key_added": ""}, ValueError, "key_added must be a non-empty string"),
        ({"rng": -3}, ValueError, "rng must be a non-negative int seed"),
        ({"merge_order": "best"}, ValueError, "merge_order must be None, 'auto' or a list of batch names"),
        ({"merge_order": ["b0", "bx"]}, ValueError, "merge_order entry 'bx' is not a batch"),
        ({"layer": "counts"}, ValueError, r"layer 'counts' not in adata.layers; available: \(none\)"),
        ({"subset": "hvg"}, ValueError, "subset 'hvg' is not a column of adata.var"),
        ({"use_rep": "X_pca", "layer": "x"}, ValueError, "layer cannot be combined with use_rep"),
        ({"use_rep": "X_pca", "reconstruct": "layer"}, ValueError, "reconstruct cannot be combined with use_rep"),
    ],
)
def test_bad_parameters_are_named(kwargs, error, pattern) -> None:
    adata = small()
    with pytest.raises(error, match=pattern):
        mnnkit.fast_mnn(adata, "batch", **{"d": 5, **kwargs})
    assert "mnn" not in adata.uns and "X_mnn" not in adata.obsm  # nothing written


def test_bad_batch_key() -> None:
    with pytest.raises(ValueError, match=r"batch_key 'sample' not in adata.obs; available: batch"):
        mnnkit.fast_mnn(small(), "sample", d=5)


def test_correct_dispatch_rejects_classic_only_and_unknown_parameters() -> None:
    adata = small()
    with pytest.raises(ValueError, match=r"sigma=0.5, var_adj=False only apply to method='classic'"):
        mnnkit.correct(adata, "batch", method="fast", sigma=0.5, var_adj=False, d=5)
    with pytest.raises(ValueError, match=r"svd_dim=2 only apply to method='classic'"):
        mnnkit.correct(adata, "batch", method="fast", svd_dim=2, d=5)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) for method='fast': bandwidth; fast-only"):
        mnnkit.correct(adata, "batch", method="fast", bandwidth=3)
    with pytest.raises(TypeError, match=r"for method='classic': ndist \(these belong to method='fast'\)"):
        mnnkit.correct(adata, "batch", ndist=3.0)
    with pytest.raises(ValueError, match=r"method must be 'classic' or 'fast'"):
        mnnkit.correct(adata, "batch", method="mnn")
    # classic defaults given explicitly are fine
    mnnkit.correct(adata, "batch", method="fast", sigma=0.1, var_adj=True, d=5, k=5)
    assert adata.uns["X_mnn"]["method"] == "fast"


def test_no_mnn_pairs_skips_the_step_with_a_warning(no_pairs_in_step_two) -> None:
    """A step without MNN pairs (possible with the approximate search) is skipped, warned and recorded."""
    adata = small(n=(30, 40, 35))
    before = np.asarray(adata.X).copy()
    with pytest.warns(SkippedMergeWarning, match=r"merge step 2 found no MNN pairs"):
        mnnkit.fast_mnn(adata, "batch", d=5, k=5)
    step = adata.uns["X_mnn"]["steps"]["step_2"]
    assert step["skipped"] and step["n_pairs"] == 0 and step["batch_size"] == 0.0
    assert step["skip_reason"] == "no MNN pairs"
    assert not adata.uns["X_mnn"]["steps"]["step_1"]["skipped"]
    np.testing.assert_array_equal(adata.X, before)


def test_single_batch_and_large_k_warn() -> None:
    adata = small(n=(30,))
    with pytest.warns(ParameterWarning, match="single batch"):
        mnnkit.fast_mnn(adata, "batch", d=5, svd_solver="exact")
    assert adata.uns["X_mnn"]["steps"] == {}
    assert adata.obsm["X_mnn"].shape == (30, 5)
    with pytest.warns(ParameterWarning, match=r"k=35 is larger than the smallest batch, 'b0' \(30 cells\)"):
        mnnkit.fast_mnn(small(), "batch", d=5, k=35)


def test_callers_data_untouched_and_copy_semantics() -> None:
    adata = small()
    adata.layers["raw"] = adata.X.copy()
    snapshot = {"X": adata.X.copy(), "pca": adata.obsm["X_pca"].copy(), "obs": adata.obs.copy()}
    out = mnnkit.fast_mnn(adata, "batch", d=5, k=5, copy=True)
    assert isinstance(out, ad.AnnData) and "X_mnn" in out.obsm
    assert "X_mnn" not in adata.obsm and "mnn" not in adata.uns
    assert mnnkit.fast_mnn(adata, "batch", d=5, k=5, use_rep="X_pca", key_added="r") is None
    np.testing.assert_array_equal(adata.X, snapshot["X"])
    np.testing.assert_array_equal(adata.obsm["X_pca"], snapshot["pca"])
    pd.testing.assert_frame_equal(adata.obs, snapshot["obs"])
    assert set(adata.obsm) == {"X_pca", "r"} and set(adata.uns) == {"r"} and not adata.varm


def test_backed_and_non_anndata_inputs() -> None:
    with pytest.raises(TypeError, match="adata must be an AnnData object, got ndarray"):
        mnnkit.fast_mnn(np.zeros((4, 4)), "batch")
