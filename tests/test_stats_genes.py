"""fit_genes: per-gene fits equal the single-sample fits, on every input format, with clear errors."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse, stats

import mnnkit
from mnnkit.stats import BoundaryWarning, ConvergenceWarning, fit_genes, fit_nb, fit_poisson, fit_zinb, fit_zip

N_CELLS = 400
SINGLE = {"poisson": fit_poisson, "nb": fit_nb, "zip": fit_zip, "zinb": fit_zinb}
PARAM_COLS = {"mu": "mean", "alpha": "dispersion", "pi": "zero_inflation"}


def make_counts(seed=0):
    rng = np.random.default_rng(seed)
    n = N_CELLS

    def nb(mu, alpha):
        return rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=n)

    cols = {
        "nb_low": nb(0.2, 3.0),
        "nb_mid": nb(5.0, 0.4),
        "nb_big": nb(900.0, 0.3),  # counts above 64 and above the 1024 histogram buffer
        "zinb": nb(6.0, 0.3) * (rng.random(n) >= 0.4),
        "underdispersed": rng.binomial(8, 0.5, size=n),
        "all_zero": np.zeros(n, dtype=int),
        "constant": np.full(n, 3),
        "single": np.eye(1, n, 17, dtype=int).ravel() * 5,
        "zip": rng.poisson(3.0, size=n) * (rng.random(n) >= 0.5),
    }
    return np.column_stack(list(cols.values())).astype(np.float64), list(cols)


def make_adata(fmt="csr", dtype=np.float32, layer="counts", seed=0):
    dense, names = make_counts(seed)
    mat = {"dense": np.asarray, "csr": sparse.csr_matrix, "csc": sparse.csc_matrix, "csr_array": sparse.csr_array}[fmt](
        dense.astype(dtype)
    )
    adata = AnnData(X=None, var=pd.DataFrame(index=names), obs=pd.DataFrame(index=[f"c{i}" for i in range(N_CELLS)]))
    if layer is None:
        adata.X = mat
    else:
        adata.layers[layer] = mat
        adata.X = np.log1p(dense)  # something else in X, to be ignored
    return adata, dense


def single_fit(column, distribution):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryWarning)
        return SINGLE[distribution](column)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "csr_array"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_nb_matches_single_fits_on_every_format(fmt, dtype):
    adata, dense = make_adata(fmt, dtype)
    assert fit_genes(adata) is None
    var = adata.var
    for j, gene in enumerate(adata.var_names):
        if gene == "all_zero":
            continue
        res = single_fit(dense[:, j], "nb")
        # same kernel on the same histogram: identical, not just close
        assert var.loc[gene, "nb_mean"] == res.params["mu"]
        assert var.loc[gene, "nb_dispersion"] == res.params["alpha"]
        np.testing.assert_equal(var.loc[gene, "nb_dispersion_se"], res.se["alpha"])
        np.testing.assert_equal(var.loc[gene, "nb_mean_se"], res.se["mu"])
        assert var.loc[gene, "nb_loglik"] == res.loglik
    assert var["nb_converged"].all()
    assert var["nb_converged"].dtype == bool
    assert isinstance(var["nb_status"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("distribution", ["poisson", "zip", "zinb"])
def test_other_distributions_match_single_fits(distribution):
    adata, dense = make_adata("csc", np.float64)
    fit_genes(adata, distribution=distribution, key_added="m")
    for j, gene in enumerate(adata.var_names):
        if gene == "all_zero":
            continue
        res = single_fit(dense[:, j], distribution)
        for p, value in res.params.items():
            assert adata.var.loc[gene, f"m_{PARAM_COLS[p]}"] == value
            np.testing.assert_equal(adata.var.loc[gene, f"m_{PARAM_COLS[p]}_se"], res.se[p])
        assert adata.var.loc[gene, "m_loglik"] == res.loglik
    cols = set(adata.var.columns)
    assert ("m_dispersion" in cols) == (distribution == "zinb")
    assert ("m_zero_inflation_pval" in cols) == (distribution != "poisson")
    assert adata.uns["fit_genes"]["m"]["distribution"] == distribution


def test_lazy_top_level_access_and_layer_none():
    adata, dense = make_adata("csr", np.float32, layer=None)
    mnnkit.fit_genes(adata, layer=None)
    assert adata.var.loc["nb_mid", "nb_mean"] == pytest.approx(dense[:, 1].mean(), rel=1e-14)
    assert adata.uns["fit_genes"]["nb"]["source"] == "adata.X"


def test_overdispersion_pvalue_is_the_boundary_lrt():
    adata, dense = make_adata("csr", np.float32)
    fit_genes(adata)
    for j, gene in enumerate(adata.var_names):
        if gene in ("all_zero", "constant", "underdispersed"):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BoundaryWarning)
            test = mnnkit.stats.likelihood_ratio_test(fit_poisson(dense[:, j]), fit_nb(dense[:, j]))
        assert adata.var.loc[gene, "nb_overdispersion_pval"] == pytest.approx(test.pvalue, rel=1e-8, abs=1e-300)
    # a strongly overdispersed gene and the single-cell gene: independent check of 0.5*chi2(1) tail
    stat = 2 * (adata.var.loc["nb_mid", "nb_loglik"] - stats.poisson.logpmf(dense[:, 1], dense[:, 1].mean()).sum())
    assert adata.var.loc["nb_mid", "nb_overdispersion_pval"] == pytest.approx(0.5 * stats.chi2.sf(stat, 1), rel=1e-6)


def test_degenerate_genes_get_documented_values():
    adata, _ = make_adata("csr", np.float64)
    fit_genes(adata, distribution="nb")
    var = adata.var
    zero = var.loc["all_zero"]
    assert zero["nb_status"] == "all_zero"
    assert zero["nb_mean"] == 0.0 and zero["nb_loglik"] == 0.0 and zero["nb_overdispersion_pval"] == 1.0
    assert np.isnan([zero["nb_mean_se"], zero["nb_dispersion"], zero["nb_dispersion_se"]]).all()
    for gene in ("constant", "underdispersed"):
        row = var.loc[gene]
        assert row["nb_status"] == "no_overdispersion"
        assert row["nb_dispersion"] == 0.0 and math.isnan(row["nb_dispersion_se"])
        assert row["nb_overdispersion_pval"] == 1.0
        assert row["nb_mean_se"] == pytest.approx(math.sqrt(row["nb_mean"] / N_CELLS), rel=1e-12)
    assert var.loc["constant", "nb_mean"] == 3.0
    assert (var.loc[["nb_low", "nb_mid", "nb_big", "single"], "nb_status"] == "ok").all()
    # zero-inflated fits: NB data without excess zeros stop at pi = 0
    fit_genes(adata, distribution="zinb")
    assert adata.var.loc["all_zero", "zinb_status"] == "all_zero"
    assert adata.var.loc["zinb", "zinb_status"] == "ok"
    assert adata.var.loc["zinb", "zinb_zero_inflation_pval"] < 1e-10
    assert adata.var.loc["constant", "zinb_status"] == "no_overdispersion_no_zero_inflation"
    assert adata.var.loc["zip", "zinb_status"] == "no_overdispersion"
    nz = adata.var["zinb_status"] == "no_zero_inflation"
    assert (adata.var.loc[nz, "zinb_zero_inflation"] == 0.0).all()
    assert (adata.var.loc[nz, "zinb_zero_inflation_pval"] == 1.0).all()


def test_copy_semantics_and_caller_data_untouched():
    adata, _ = make_adata("csr", np.float32)
    layer = adata.layers["counts"]
    before = (layer.data.copy(), layer.indices.copy(), layer.indptr.copy())
    out = fit_genes(adata, copy=True)
    assert isinstance(out, AnnData) and out is not adata
    assert "nb_mean" in out.var and "nb_mean" not in adata.var
    for a, b in zip(before, (layer.data, layer.indices, layer.indptr), strict=True):
        np.testing.assert_array_equal(a, b)
    assert adata.layers["counts"] is layer


def test_deterministic_bit_for_bit():
    a, _ = make_adata("csr", np.float32)
    b, _ = make_adata("csr", np.float32)
    fit_genes(a, distribution="zinb")
    fit_genes(b, distribution="zinb")
    pd.testing.assert_frame_equal(a.var, b.var, check_exact=True)


def test_duplicates_and_explicit_zeros():
    adata, dense = make_adata("csc", np.float64)
    ref = fit_genes(adata, copy=True).var
    # non-canonical CSC: each entry split into two duplicates, plus explicit zeros
    coo = sparse.coo_matrix(dense)
    half = np.floor(coo.data / 2)
    rows = np.concatenate([coo.row, coo.row, [0, 5]])
    cols = np.concatenate([coo.col, coo.col, [5, 5]])
    data = np.concatenate([half, coo.data - half, [0.0, 0.0]])
    dup = sparse.csc_matrix((data, (rows, cols)), shape=dense.shape)
    dup.has_canonical_format = False
    nnz_before = dup.nnz
    adata.layers["dup"] = dup
    got = fit_genes(adata, layer="dup", copy=True).var
    pd.testing.assert_frame_equal(got[ref.columns], ref, check_exact=True)
    assert adata.layers["dup"].nnz == nnz_before  # caller's matrix not canonicalised in place


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize(
    ("value", "match"),
    [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (-2.0, "negative count"), (1.5, "non-integer count")],
)
def test_bad_values_name_the_gene(fmt, value, match):
    adata, dense = make_adata("dense", np.float64)
    dense = dense.copy()
    dense[7, 4] = value
    adata.layers["counts"] = {"dense": np.asarray, "csr": sparse.csr_matrix, "csc": sparse.csc_matrix}[fmt](dense)
    with pytest.raises(ValueError, match=rf"{match}.*gene 'underdispersed' \(column 4\)"):
        fit_genes(adata)
    assert "nb_mean" not in adata.var


def test_negative_integer_counts_named():
    adata, dense = make_adata("csr", np.int64)
    dense[3, 2] = -1
    adata.layers["counts"] = sparse.csr_matrix(dense.astype(np.int64))
    with pytest.raises(ValueError, match="negative count.*'nb_big'"):
        fit_genes(adata)


def test_parameter_validation():
    adata, _ = make_adata("csr", np.float32)
    with pytest.raises(ValueError, match=r"layer='raw' not found.*\['counts'\]"):
        fit_genes(adata, layer="raw")
    with pytest.raises(ValueError, match="distribution must be one of"):
        fit_genes(adata, distribution="gamma")
    with pytest.raises(TypeError, match="AnnData"):
        fit_genes(np.ones((3, 3)))
    with pytest.raises(ValueError, match="tol"):
        fit_genes(adata, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        fit_genes(adata, max_iter=0)
    with pytest.raises(ValueError, match="key_added"):
        fit_genes(adata, key_added="")
    with pytest.raises(TypeError, match="copy"):
        fit_genes(adata, copy="yes")
    with pytest.raises(TypeError, match="layer"):
        fit_genes(adata, layer=3)
    empty = AnnData(X=None, var=pd.DataFrame(index=["g"]), obs=pd.DataFrame(index=["c"]))
    with pytest.raises(ValueError, match="adata.X is None"):
        fit_genes(empty, layer=None)
    with pytest.raises(TypeError):
        fit_genes(adata, "nb")  # keyword-only


def test_convergence_warning():
    adata, _ = make_adata("csr", np.float32)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        fit_genes(adata, distribution="zinb", max_iter=1)
    assert not adata.var["zinb_converged"].all()
