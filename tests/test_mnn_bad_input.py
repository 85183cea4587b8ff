"""Bad input to mnnkit.correct: a clear error naming the parameter, or a documented result."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mnnkit
from mnnkit._warnings import InputDataWarning, ParameterWarning
from tests.conftest import three_batches, to_adata


@pytest.fixture
def adata() -> ad.AnnData:
    return to_adata(three_batches())


def test_missing_batch_key_lists_the_columns(adata) -> None:
    adata.obs["cell_type"] = "x"
    with pytest.raises(ValueError, match=r"batch_key 'btch' not in adata.obs; available: batch, cell_type"):
        mnnkit.correct(adata, "btch")


def test_missing_batch_values(adata) -> None:
    adata.obs["batch"] = adata.obs["batch"].astype(object)
    adata.obs.iloc[3, 0] = None
    with pytest.raises(ValueError, match="1 missing values"):
        mnnkit.correct(adata, "batch")


def test_batch_with_too_few_cells_is_named(adata) -> None:
    adata.obs["batch"] = adata.obs["batch"].cat.add_categories("tiny")
    adata.obs.iloc[0, 0] = "tiny"
    with pytest.raises(ValueError, match=r"too small: tiny \(1 cells\)"):
        mnnkit.correct(adata, "batch")


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one(adata, k) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        mnnkit.correct(adata, "batch", k=k)


@pytest.mark.parametrize("k", [2.5, "20", True])
def test_k_not_an_integer(adata, k) -> None:
    with pytest.raises(TypeError, match="k must be a positive integer"):
        mnnkit.correct(adata, "batch", k=k)


def test_k_larger_than_a_batch_is_capped_with_a_warning() -> None:
    adata = to_adata(three_batches(n=(30, 25, 28)))
    with pytest.warns(ParameterWarning, match=r"k=40 is larger than the smallest batch, 'b1' \(25 cells\)"):
        capped = mnnkit.correct(adata, "batch", k=40, copy=True)
    # step 1 (b0: 30 cells <- b1: 25 cells): capping equals asking for exactly that many per side
    with pytest.warns(ParameterWarning):
        both = mnnkit.correct(adata, "batch", k=(30, 25), copy=True)
    step1 = capped.uns["mnn"]["steps"]["step_1"]["pairs"]
    np.testing.assert_array_equal(step1, both.uns["mnn"]["steps"]["step_1"]["pairs"])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_non_finite_values(adata, bad, fmt) -> None:
    x = adata.X.copy()
    x[4, 2] = bad
    adata.X = sp.csr_matrix(x) if fmt == "csr" else x
    with pytest.raises(ValueError, match="adata.X contains 1 NaN or infinite values"):
        mnnkit.correct(adata, "batch")


def test_all_zero_cells_stay_zero_without_nan(adata) -> None:
    adata.X[[0, 60], :] = 0.0  # one cell in b0 (the reference), one in b1
    mnnkit.correct(adata, "batch")
    out = adata.layers["mnn"]
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[0], 0.0)  # reference cells are never moved
    # a corrected zero cell moves by the smoothed correction, like any other cell
    assert np.linalg.norm(out[60]) > 0


def test_subset_names_not_in_var_names(adata) -> None:
    with pytest.raises(ValueError, match=r"subset has 2 gene names not in adata.var_names: nope, nada"):
        mnnkit.correct(adata, "batch", subset=["0", "nope", "nada"])


def test_subset_column_must_exist_and_be_boolean(adata) -> None:
    adata.var["score"] = 1.0
    adata.var["hv"] = True
    with pytest.raises(ValueError, match=r"subset 'highly_variable' is not a column of adata.var .*available: hv"):
        mnnkit.correct(adata, "batch", subset="highly_variable")
    with pytest.raises(TypeError, match="must be boolean"):
        mnnkit.correct(adata, "batch", subset="score")


def test_subset_mask_of_wrong_length(adata) -> None:
    with pytest.raises(ValueError, match="one entry per gene"):
        mnnkit.correct(adata, "batch", subset=np.ones(3, dtype=bool))


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (["b0", "b1", "bX"], "merge_order entry 'bX' is not a batch; batches: b0, b1, b2"),
        (["b0", "b1", "b1"], "merge_order names these batches more than once: b1"),
        (["b0", "b2"], "missing: b1"),
        ("b0", "merge_order must be None, 'auto' or a list"),
    ],
)
def test_bad_merge_order(adata, order, message) -> None:
    with pytest.raises(ValueError, match=message):
        mnnkit.correct(adata, "batch", merge_order=order)


def test_backed_adata_gets_a_clear_message(adata, tmp_path) -> None:
    adata.write_h5ad(tmp_path / "a.h5ad")
    backed = ad.read_h5ad(tmp_path / "a.h5ad", backed="r")
    with pytest.raises(ValueError, match=r"backed mode.*to_memory\(\)"):
        mnnkit.correct(backed, "batch")
    backed.file.close()


def test_non_numeric_x() -> None:
    obs = pd.DataFrame({"batch": ["a", "a", "b", "b"]}, index=list("wxyz"))
    adata = ad.AnnData(np.array([["1", "2"], ["3", "4"], ["5", "6"], ["7", "8"]], dtype=object), obs=obs)
    with pytest.raises(TypeError, match="adata.X must hold real numbers"):
        mnnkit.correct(adata, "batch")


def test_not_an_anndata() -> None:
    with pytest.raises(TypeError, match="adata must be an AnnData object, got ndarray"):
        mnnkit.correct(np.zeros((4, 4)), "batch")


def test_integer_counts_warn_that_log_data_is_expected(adata) -> None:
    adata.X = np.round(adata.X * 30).astype(np.int64)
    with pytest.warns(InputDataWarning, match="raw integer counts"):
        out = mnnkit.correct(adata, "batch", copy=True)
    assert out.layers["mnn"].dtype == np.float64


def test_missing_layer_lists_layers(adata) -> None:
    adata.layers["logcounts"] = adata.X
    with pytest.raises(ValueError, match="layer 'counts' not in adata.layers; available: logcounts"):
        mnnkit.correct(adata, "batch", layer="counts")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sigma": 0.0}, ValueError, "sigma must be a positive finite number"),
        ({"sigma": np.nan}, ValueError, "sigma must be a positive finite number"),
        ({"svd_dim": -1}, ValueError, "svd_dim must be a non-negative integer"),
        ({"approximate": "yes"}, TypeError, "approximate must be True or False"),
        ({"neighbors": "annoy"}, ValueError, "neighbors must be one of 'auto', 'exact', 'pynndescent'"),
        ({"kernel_neighbors": 0}, ValueError, "kernel_neighbors must be None or a positive integer"),
        ({"prop_k": 1.5}, ValueError, "prop_k must be None or a number in"),
        ({"k": (5, 5, 5)}, ValueError, r"k must be an int or a pair"),
        ({"key_added": ""}, ValueError, "key_added must be a non-empty string"),
        ({"rng": "seed"}, TypeError, "rng must be an int seed"),
    ],
)
def test_bad_scalar_parameters(adata, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        mnnkit.correct(adata, "batch", **kwargs)
