"""multi_batch_norm, rescale_batches, regress_batches: batchelor's outputs, known answers, layouts, checks.

The reference tests read ``../shared/reference/batchelor_more`` (its README documents every run) and
skip with the reason when it is absent. The others need no shared data: naive dense implementations
of the formulas, synthetic batches with a known answer, and every array layout against the dense one.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mnnkit
from tests._shared import reference_more_bundle

LINEAR_BUNDLES = [
    "canek_simbatches_linear",
    "cider_pancreas_human_mouse_linear",
    "kang_pbmc_ifnb_harmony_linear",
    "synth_nested_linear",
]
COUNT_BUNDLES = ["cider_pancreas_human_mouse_counts", "kang_pbmc_ifnb_harmony_counts"]
#: The README's tolerance for these layers: stored as float32 (values up to ~19), compared at 1e-6.
LAYER_TOL = {"rtol": 1e-6, "atol": 1e-6}
LAYOUTS = {"dense": np.asarray, "csr": sp.csr_matrix, "csc": sp.csc_matrix}


def dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def compare(ours, ref, what: str) -> float:
    """Assert ``ours`` equals the finite entries of ``ref`` (NaN: not stored) within LAYER_TOL; the max abs diff."""
    ours, ok = dense(ours).astype(np.float64), np.isfinite(ref)
    np.testing.assert_allclose(ours[ok], ref[ok], **LAYER_TOL, err_msg=what)
    return float(np.abs(ours[ok] - ref[ok]).max())


# --- naive implementations of batchelor's formulas (dense, loops over batches) -------------------


def naive_rescale(x, batch, log_base=2.0, pseudo_count=1.0, restrict=None):
    u = log_base**x - pseudo_count
    labels = list(pd.unique(np.sort(batch)))
    keep = np.ones(len(batch), bool) if restrict is None else restrict
    means = np.array([u[(batch == b) & keep].mean(axis=0) for b in labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = means.min(axis=0) / means
    scale[~np.isfinite(scale)] = 0
    out = np.empty_like(u)
    for i, b in enumerate(labels):
        out[batch == b] = np.log(u[batch == b] * scale[i] + pseudo_count) / np.log(log_base)
    return out


def naive_regress(x, batch, restrict=None):
    keep = np.ones(len(batch), bool) if restrict is None else restrict
    out = np.empty_like(x)
    for b in np.unique(batch):
        out[batch == b] = x[batch == b] - x[(batch == b) & keep].mean(axis=0)
    return out


def naive_size_factors(counts, batch, genes, min_mean=1.0):
    labels = list(np.unique(batch))
    sf, ave = np.empty(len(batch)), []
    for b in labels:
        lib = counts[batch == b][:, genes].sum(axis=1)
        sf[batch == b] = lib / lib.mean()
        ave.append((counts[batch == b][:, genes] / sf[batch == b, None]).mean(axis=0))
    n = len(labels)
    ratio = np.ones((n, n))
    for f in range(n):
        for s in range(f + 1, n):
            a, c = ave[f], ave[s]
            keep = (a / a.sum() + c / c.sum()) / 2 * (a.sum() + c.sum()) / 2 >= min_mean
            with np.errstate(divide="ignore"):
                ratio[f, s], ratio[s, f] = np.median(c[keep] / a[keep]), np.median(a[keep] / c[keep])
    divisor = ratio[:, np.argmin(ratio.min(axis=0))]
    return sf / divisor[np.searchsorted(labels, batch)]


# --- data -----------------------------------------------------------------------------------------


def log_data(seed=0, sizes=(40, 30, 50), genes=20, layout="dense", dtype=np.float64) -> ad.AnnData:
    """log2(x + 1)-like data of three batches with different scales; a sparse-ish pattern of zeros."""
    rng = np.random.default_rng(seed)
    blocks = []
    for b, n in enumerate(sizes):
        counts = rng.poisson(rng.gamma(2.0, 2.0, genes) * (1 + b), size=(n, genes))
        blocks.append(np.log2(counts + 1.0))
    x = np.vstack(blocks).astype(dtype)
    labels = np.repeat([f"b{b}" for b in range(len(sizes))], sizes)
    obs = pd.DataFrame({"batch": pd.Categorical(labels)}, index=[f"c{i}" for i in range(x.shape[0])])
    obs["control"] = np.arange(x.shape[0]) % 3 == 0
    var = pd.DataFrame({"hvg": np.arange(genes) % 2 == 0}, index=[f"g{g}" for g in range(genes)])
    return ad.AnnData(LAYOUTS[layout](x), obs=obs, var=var)


def count_data(seed=0, sizes=(40, 30, 50), genes=60, layout="csr", dtype=np.float32) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    profile = rng.gamma(1.0, 3.0, genes)
    blocks = [rng.poisson(profile * (1 + b) * rng.uniform(0.5, 1.5, (n, 1))) for b, n in enumerate(sizes)]
    x = np.vstack(blocks).astype(dtype)
    x[x.sum(axis=1) == 0, 0] = 1  # every cell has a count
    labels = np.repeat([f"b{b}" for b in range(len(sizes))], sizes)
    obs = pd.DataFrame({"batch": pd.Categorical(labels)}, index=[f"c{i}" for i in range(x.shape[0])])
    var = pd.DataFrame({"hvg": np.arange(genes) % 3 != 0}, index=[f"g{g}" for g in range(genes)])
    return ad.AnnData(LAYOUTS[layout](x), obs=obs, var=var)


# --- batchelor's outputs ---------------------------------------------------------------------------


def linear_input(bundle: ad.AnnData, layout: str) -> ad.AnnData:
    x = np.asarray(bundle.X, dtype=np.float64)  # exactly what R received
    return ad.AnnData(LAYOUTS[layout](x), obs=bundle.obs[["batch"]].copy(), var=pd.DataFrame(index=bundle.var_names))


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("name", LINEAR_BUNDLES)
def test_rescale_and_regress_match_batchelor(name, layout):
    bundle = ad.read_h5ad(reference_more_bundle(name))
    adata = linear_input(bundle, layout)
    # rescaleBatches ran with its defaults (log.base=2, pseudo.count=1) on the natural-log X (README)
    mnnkit.rescale_batches(adata, "batch")
    mnnkit.regress_batches(adata, "batch")
    compare(adata.layers["rescale_batches"], bundle.layers["rescaleBatches"], f"{name} rescaleBatches")
    compare(adata.layers["regress_batches"], bundle.layers["regressBatches"], f"{name} regressBatches")
    assert sp.issparse(adata.layers["rescale_batches"]) == (layout == "csr")  # zeros stay zeros
    assert isinstance(adata.layers["regress_batches"], np.ndarray)


@pytest.mark.parametrize("name", LINEAR_BUNDLES)
def test_rescale_and_regress_match_batchelor_from_float32(name):
    """The bundle's own float32 X: float32 output, still within the tolerance."""
    bundle = ad.read_h5ad(reference_more_bundle(name))
    adata = ad.AnnData(bundle.X.copy(), obs=bundle.obs[["batch"]].copy())
    mnnkit.rescale_batches(adata)
    mnnkit.regress_batches(adata)
    for key, run in (("rescale_batches", "rescaleBatches"), ("regress_batches", "regressBatches")):
        assert adata.layers[key].dtype == np.float32
        compare(adata.layers[key], bundle.layers[run], f"{name} {run}")


def counts_input(bundle: ad.AnnData, layout: str) -> ad.AnnData:
    counts = bundle.layers["counts"]
    counts = counts if layout == "csr" else LAYOUTS[layout](counts.toarray())
    return ad.AnnData(counts, obs=bundle.obs[["batch"]].copy(), var=bundle.var[["highly_variable"]].copy())


@pytest.mark.parametrize("layout", ["csr", "dense", "csc"])
@pytest.mark.parametrize("name", COUNT_BUNDLES)
def test_multi_batch_norm_matches_batchelor(name, layout):
    bundle = ad.read_h5ad(reference_more_bundle(name))
    runs = bundle.uns["runs"]
    cases = [
        ("multiBatchNorm", {}),
        ("multiBatchNorm_subset_normall", {"subset": "highly_variable", "normalize_all": True}),
    ]
    for run, kwargs in cases:
        adata = counts_input(bundle, layout)
        mnnkit.multi_batch_norm(adata, "batch", **kwargs, key_added="mbn")
        np.testing.assert_allclose(
            adata.obs["mbn_size_factor"], bundle.obs[f"{run}_size_factor"], rtol=1e-9, err_msg=f"{name} {run}"
        )
        expected = [runs[run]["rescaling_divisor"][b] for b in adata.uns["mbn"]["batches"]]
        np.testing.assert_allclose(adata.uns["mbn"]["rescaling_divisor"], expected, rtol=1e-9)
        out = adata.layers["mbn"]
        assert out.dtype == np.float32 and (sp.issparse(out) == (layout != "dense"))
        if layout != "dense":
            assert out.format == layout and out.nnz == bundle.layers["counts"].nnz  # same stored entries
        compare(out, bundle.layers[run], f"{name} {run}")


@pytest.mark.parametrize("name", COUNT_BUNDLES)
def test_multi_batch_norm_subset_only_is_the_subset_of_normalize_all(name):
    """batchelor's subset.row without normalize.all: the same size factors, only the subset genes returned."""
    bundle = ad.read_h5ad(reference_more_bundle(name))
    adata = counts_input(bundle, "csr")
    mnnkit.multi_batch_norm(adata, "batch", subset="highly_variable")
    hvg = bundle.var["highly_variable"].to_numpy()
    assert "multi_batch_norm" not in adata.layers
    assert adata.obsm["multi_batch_norm"].shape == (adata.n_obs, hvg.sum())
    assert list(adata.uns["multi_batch_norm"]["genes"]) == list(adata.var_names[hvg])
    run = "multiBatchNorm_subset_normall"
    np.testing.assert_allclose(adata.obs["multi_batch_norm_size_factor"], bundle.obs[f"{run}_size_factor"], rtol=1e-9)
    compare(adata.obsm["multi_batch_norm"], bundle.layers[run][:, hvg], f"{name} subset only")


# --- known answers -----------------------------------------------------------------------------------


def test_rescale_removes_a_known_scaling():
    """Batch b1 holds the counts of b0 doubled: rescaled to b0's coverage, it equals b0."""
    rng = np.random.default_rng(1)
    counts = rng.poisson(rng.gamma(2.0, 3.0, 15), size=(30, 15)).astype(float)
    x = np.log2(np.vstack([counts, 2 * counts]) + 1)
    adata = ad.AnnData(x, obs=pd.DataFrame({"batch": ["b0"] * 30 + ["b1"] * 30}, index=[f"c{i}" for i in range(60)]))
    mnnkit.rescale_batches(adata)
    out = adata.layers["rescale_batches"]
    np.testing.assert_allclose(out[:30], x[:30], atol=1e-12)  # the reference batch is unchanged
    np.testing.assert_allclose(out[30:], x[:30], atol=1e-12)


def test_regress_removes_a_known_shift():
    rng = np.random.default_rng(2)
    base = rng.normal(3, 1, size=(25, 12))
    shift = rng.normal(0, 2, size=12)
    obs = pd.DataFrame({"batch": ["x"] * 25 + ["y"] * 25}, index=[f"c{i}" for i in range(50)])
    adata = ad.AnnData(np.vstack([base, base + shift]), obs=obs)
    mnnkit.regress_batches(adata)
    out = adata.layers["regress_batches"]
    np.testing.assert_allclose(out[:25], out[25:], atol=1e-12)
    np.testing.assert_allclose(out[:25], base - base.mean(axis=0), atol=1e-12)


def test_multi_batch_norm_removes_a_known_coverage_difference():
    """Batch b1 is b0 sequenced three times deeper: b1 is scaled down onto b0 and the outputs are equal."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.gamma(2.0, 3.0, 40), size=(20, 40)) + np.eye(20, 40, dtype=int)
    x = sp.csr_matrix(np.vstack([counts, 3 * counts]).astype(np.float64))
    adata = ad.AnnData(x, obs=pd.DataFrame({"batch": ["b0"] * 20 + ["b1"] * 20}, index=[f"c{i}" for i in range(40)]))
    mnnkit.multi_batch_norm(adata)
    record = adata.uns["multi_batch_norm"]
    assert record["reference_batch"] == "b0"
    np.testing.assert_allclose(record["rescaling_divisor"], [1.0, 1 / 3])
    sf = adata.obs["multi_batch_norm_size_factor"].to_numpy()
    np.testing.assert_allclose(sf[20:], 3 * sf[:20])
    np.testing.assert_allclose(sf[:20].mean(), 1.0)  # library size factors have mean 1 within a batch
    out = adata.layers["multi_batch_norm"].toarray()
    np.testing.assert_allclose(out[20:], out[:20], atol=1e-12)
    np.testing.assert_allclose(out[:20], np.log2(counts / sf[:20, None] + 1), atol=1e-12)


@pytest.mark.parametrize("restrict", [None, "control"])
@pytest.mark.parametrize(("log_base", "pseudo_count"), [(2, 1), (np.e, 1), (10, 0.5)])
def test_rescale_equals_the_naive_formula(log_base, pseudo_count, restrict):
    adata = log_data()
    mask = None if restrict is None else adata.obs[restrict].to_numpy()
    mnnkit.rescale_batches(adata, log_base=log_base, pseudo_count=pseudo_count, restrict=restrict)
    batch = adata.obs["batch"].to_numpy().astype(str)
    expected = naive_rescale(adata.X, batch, log_base, pseudo_count, mask)
    np.testing.assert_allclose(adata.layers["rescale_batches"], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("restrict", [None, "control"])
def test_regress_equals_the_naive_formula(restrict):
    adata = log_data(seed=4)
    mask = None if restrict is None else adata.obs[restrict].to_numpy()
    mnnkit.regress_batches(adata, restrict=restrict)
    expected = naive_regress(adata.X, adata.obs["batch"].to_numpy().astype(str), mask)
    np.testing.assert_allclose(adata.layers["regress_batches"], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("min_mean", [1.0, 0.1, 5.0])
@pytest.mark.parametrize("subset", [None, "hvg"])
def test_multi_batch_norm_equals_the_naive_formula(subset, min_mean):
    adata = count_data(seed=5, sizes=(30, 45, 25, 35))  # four batches: six pairs of ratios
    counts = adata.X.toarray().astype(np.float64)
    genes = np.ones(adata.n_vars, bool) if subset is None else adata.var[subset].to_numpy()
    mnnkit.multi_batch_norm(adata, subset=subset, normalize_all=True, min_mean=min_mean)
    sf = naive_size_factors(counts, adata.obs["batch"].to_numpy().astype(str), genes, min_mean)
    np.testing.assert_allclose(adata.obs["multi_batch_norm_size_factor"], sf, rtol=1e-12)
    np.testing.assert_allclose(
        adata.layers["multi_batch_norm"].toarray(), np.log2(counts / sf[:, None] + 1), rtol=1e-6, atol=1e-6
    )


def test_restrict_column_and_mask_agree_and_only_restricted_cells_set_the_means():
    adata = log_data(seed=6)
    mask = adata.obs["control"].to_numpy()
    mnnkit.regress_batches(adata, restrict="control", key_added="col")
    mnnkit.regress_batches(adata, restrict=mask, key_added="mask")
    np.testing.assert_array_equal(adata.layers["col"], adata.layers["mask"])
    assert adata.uns["col"]["params"]["restrict"] == "control" and adata.uns["mask"]["params"]["restrict"] == "mask"
    assert adata.uns["col"]["params"]["n_restricted_cells"] == mask.sum()
    # the restricted cells of each batch are centred; changing unrestricted cells moves nothing else
    batch = adata.obs["batch"].to_numpy()
    for b in np.unique(batch):
        np.testing.assert_allclose(adata.layers["col"][(batch == b) & mask].mean(axis=0), 0, atol=1e-12)
    other = adata.copy()
    other.X[~mask] += 5.0
    mnnkit.regress_batches(other, restrict="control", key_added="col")
    np.testing.assert_allclose(other.layers["col"][mask], adata.layers["col"][mask], atol=1e-12)


def test_single_batch_is_a_warned_identity():
    adata = log_data(sizes=(30,))
    with pytest.warns(mnnkit.ParameterWarning, match="single batch"):
        mnnkit.rescale_batches(adata)
    np.testing.assert_allclose(adata.layers["rescale_batches"], adata.X, atol=1e-12)


# --- layouts, dtypes, subsets ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_sparse_equals_dense(layout, dtype):
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    dense_in, sparse_in = log_data(dtype=dtype), log_data(layout=layout, dtype=dtype)
    dense_counts, sparse_counts = count_data(layout="dense"), count_data(layout=layout)
    for adata, counts in ((dense_in, dense_counts), (sparse_in, sparse_counts)):
        for func in (mnnkit.rescale_batches, mnnkit.regress_batches):
            func(adata, restrict="control")
            func(adata, subset="hvg", key_added=f"{func.__name__}_hvg")
        mnnkit.rescale_batches(adata, pseudo_count=0.5, key_added="pc")  # dense output from sparse input
        mnnkit.multi_batch_norm(counts)
        mnnkit.multi_batch_norm(counts, subset="hvg", key_added="sub")
    for key in dense_in.layers:
        ours = sparse_in.layers[key]
        assert ours.dtype == dtype, key
        np.testing.assert_allclose(dense(ours), dense_in.layers[key], **tol, err_msg=key)
    assert sp.issparse(sparse_in.layers["rescale_batches"]) and sparse_in.layers["rescale_batches"].format == layout
    np.testing.assert_allclose(
        dense(sparse_counts.layers["multi_batch_norm"]), dense_counts.layers["multi_batch_norm"], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(dense(sparse_counts.obsm["sub"]), dense_counts.obsm["sub"], rtol=1e-6, atol=1e-6)
    for name in ("multi_batch_norm_size_factor", "sub_size_factor"):
        np.testing.assert_allclose(sparse_counts.obs[name], dense_counts.obs[name], rtol=1e-12)


def test_subset_genes_are_corrected_and_the_others_are_nan():
    adata = log_data(seed=7)
    hvg = adata.var["hvg"].to_numpy()
    for func in (mnnkit.rescale_batches, mnnkit.regress_batches):
        func(adata, key_added="all")
        func(adata, subset="hvg", key_added="sub")
        sub = adata.layers["sub"]
        assert np.isnan(sub[:, ~hvg]).all()
        np.testing.assert_array_equal(sub[:, hvg], adata.layers["all"][:, hvg])
        assert list(adata.uns["sub"]["params"]["subset_genes"]) == list(adata.var_names[hvg])


def test_small_blocks_give_the_same_result(monkeypatch):
    """Blocks of a few rows (or columns of a CSC matrix) cover every cell and gene exactly once."""
    import mnnkit.correction._per_gene as per_gene

    expected = {}
    for layout in ("dense", "csc"):
        adata = log_data(seed=8, layout=layout)
        mnnkit.regress_batches(adata)
        expected[layout] = adata.layers["regress_batches"]
        monkeypatch.setattr(per_gene, "rows_per_chunk", lambda n, **kw: 7)
        mnnkit.regress_batches(adata, key_added="small")
        monkeypatch.undo()
        np.testing.assert_allclose(adata.layers["small"], expected[layout], rtol=0, atol=1e-12)


def test_the_caller_data_is_not_modified():
    for layout in ("dense", "csr"):
        adata = log_data(layout=layout)
        counts = count_data(layout=layout)
        before = (dense(adata.X).copy(), dense(counts.X).copy(), adata.obs.copy(), counts.obs.copy())
        mnnkit.rescale_batches(adata, restrict="control")
        mnnkit.regress_batches(adata, subset="hvg")
        mnnkit.multi_batch_norm(counts, subset="hvg", normalize_all=True)
        np.testing.assert_array_equal(dense(adata.X), before[0])
        np.testing.assert_array_equal(dense(counts.X), before[1])
        pd.testing.assert_frame_equal(adata.obs, before[2])
        pd.testing.assert_frame_equal(counts.obs.drop(columns="multi_batch_norm_size_factor"), before[3])
        assert adata.layers["rescale_batches"] is not adata.X


def test_outputs_write_to_h5ad(tmp_path):
    adata, counts = log_data(layout="csr"), count_data()
    mnnkit.rescale_batches(adata, restrict="control", subset="hvg")
    mnnkit.regress_batches(adata)
    mnnkit.multi_batch_norm(counts, subset="hvg")
    adata.write_h5ad(tmp_path / "a.h5ad")
    counts.write_h5ad(tmp_path / "c.h5ad")
    back = ad.read_h5ad(tmp_path / "c.h5ad")
    assert back.uns["multi_batch_norm"]["output"] == "obsm['multi_batch_norm']"
    np.testing.assert_array_equal(dense(back.obsm["multi_batch_norm"]), dense(counts.obsm["multi_batch_norm"]))


def test_top_level_names():
    from mnnkit.correction.linear import regress_batches, rescale_batches
    from mnnkit.correction.normalization import multi_batch_norm

    assert mnnkit.rescale_batches is rescale_batches and mnnkit.regress_batches is regress_batches
    assert mnnkit.multi_batch_norm is multi_batch_norm
    assert {"rescale_batches", "regress_batches", "multi_batch_norm"} <= set(mnnkit.__all__)


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"log_base": 1}, ValueError, "log_base must be a positive number other than 1"),
        ({"log_base": -2}, ValueError, "log_base must be a positive finite number"),
        ({"log_base": "2"}, ValueError, "log_base must be a positive finite number"),
        ({"pseudo_count": 0}, ValueError, "pseudo_count must be a positive finite number"),
        ({"key_added": ""}, ValueError, "key_added must be a non-empty string"),
        ({"batch_key": "sample"}, ValueError, "batch_key 'sample' not in adata.obs"),
        ({"layer": "counts"}, ValueError, "layer 'counts' not in adata.layers"),
        ({"subset": "nope"}, ValueError, "subset 'nope' is not a column of adata.var"),
        ({"restrict": "nope"}, ValueError, "restrict 'nope' is not a column of adata.obs"),
        ({"restrict": np.zeros(120, bool)}, ValueError, "restrict selects no cell of batch"),
        ({"restrict": np.ones(3, bool)}, ValueError, "restrict mask must have one entry per cell"),
    ],
)
def test_rescale_bad_input_names_the_parameter(kwargs, error, fragment):
    adata = log_data()
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        mnnkit.rescale_batches(adata, **kwargs)
    assert not adata.layers and "rescale_batches" not in adata.uns


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"key_added": 3}, ValueError, "key_added must be a non-empty string"),
        ({"restrict": "batch"}, TypeError, "restrict column adata.obs\\['batch'\\] must be boolean"),
        ({"subset": ["g0", "zz"]}, ValueError, "subset has 1 gene names not in adata.var_names"),
    ],
)
def test_regress_bad_input_names_the_parameter(kwargs, error, fragment):
    adata = log_data()
    with pytest.raises(error, match=fragment):
        mnnkit.regress_batches(adata, **kwargs)
    assert not adata.layers


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"min_mean": 0}, ValueError, "min_mean must be a positive finite number"),
        ({"min_mean": float("inf")}, ValueError, "min_mean must be a positive finite number"),
        ({"normalize_all": "yes"}, TypeError, "normalize_all must be True or False"),
        ({"pseudo_count": 2.0}, ValueError, "pseudo_count must be 1 for sparse counts"),
        ({"min_mean": 1e9}, ValueError, "min_mean=1e\\+09 leaves no gene to compare batches 'b0' and 'b1'"),
        ({"batch_key": 1}, ValueError, "batch_key 1 not in adata.obs"),
    ],
)
def test_multi_batch_norm_bad_input_names_the_parameter(kwargs, error, fragment):
    counts = count_data()
    with pytest.raises(error, match=fragment):
        mnnkit.multi_batch_norm(counts, **kwargs)
    assert not counts.layers and "multi_batch_norm_size_factor" not in counts.obs


def test_multi_batch_norm_rejects_negative_and_empty_cells_and_warns_on_log_data():
    counts = count_data(layout="dense")
    counts.X[0, 0] = -1
    with pytest.raises(ValueError, match="adata.X must hold raw counts"):
        mnnkit.multi_batch_norm(counts)
    counts = count_data(layout="dense")
    counts.X[[3, 50]] = 0
    with pytest.raises(ValueError, match="2 cell\\(s\\) have no counts in any gene.*'c3' \\(batch 'b0'\\)"):
        mnnkit.multi_batch_norm(counts)
    with pytest.warns(mnnkit.InputDataWarning, match="non-integer values"):
        mnnkit.multi_batch_norm(log_data())
    with pytest.raises(TypeError, match="adata must be an AnnData object"):
        mnnkit.multi_batch_norm(np.ones((3, 3)))


def test_rescale_warns_on_negative_input():
    adata = log_data()
    adata.X[0, 0] = -0.5
    with pytest.warns(mnnkit.InputDataWarning, match="negative values"):
        mnnkit.rescale_batches(adata)
