import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

from mnnkit.metrics import (
    ari_nmi,
    clisi,
    evaluate,
    graph_connectivity,
    ilisi,
    kbet_global_acceptance,
    kbet_per_label,
    silhouette_batch,
    silhouette_label,
)

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def adata():
    a = ad.read_h5ad(DATA / "canek_simbatches.h5ad")
    a.obsm["X_pca"] = sc.pp.pca(a.X, n_comps=10, random_state=0, dtype="float64")
    a.layers["logcounts"] = sparse.csr_matrix(a.X)
    return a


@pytest.fixture(scope="module")
def table(adata):
    return evaluate(adata, label_key="cell_type")


def test_values_equal_the_array_functions(adata, table):
    x = adata.obsm["X_pca"]
    batch, labels = adata.obs["batch"], adata.obs["cell_type"]
    expected = {
        "ilisi": ilisi(x, batch, scale=False),
        "ilisi_scaled": ilisi(x, batch),
        "kbet_global_acceptance": kbet_global_acceptance(x, batch, n_neighbors=50),
        "kbet_per_label": kbet_per_label(x, batch, labels, n_neighbors=50),
        "clisi": clisi(x, labels, scale=False),
        "clisi_scaled": clisi(x, labels),
        "silhouette_label": silhouette_label(x, labels),
        "silhouette_batch": silhouette_batch(x, labels, batch),
        **ari_nmi(x, labels, rng=0),
        "graph_connectivity": graph_connectivity(x, labels, n_neighbors=15),
    }
    assert list(table.index) == list(expected)
    assert table.index.name == "metric"
    for name, value in expected.items():
        assert table.loc[name, "value"] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert not table.loc["clisi", "higher_is_better"] and table.loc["ilisi", "higher_is_better"]
    assert table["description"].map(len).min() > 10
    # uncorrected simulated batches stay apart; the cell types are kept apart too
    assert table.loc["ilisi_scaled", "value"] < 0.2 and table.loc["kbet_global_acceptance", "value"] < 0.2
    assert table.loc["kbet_per_label", "value"] < 0.2
    assert table.loc["clisi_scaled", "value"] > 0.95


def test_json_ready_and_deterministic(adata, table):
    payload = json.dumps({"metrics": table["value"].to_dict(), "inputs": table.attrs})
    back = json.loads(payload)
    assert back["inputs"]["n_obs"] == 1579 and back["inputs"]["source"] == "obsm['X_pca']"
    again = evaluate(adata, label_key="cell_type")
    assert again["value"].to_numpy().tobytes() == table["value"].to_numpy().tobytes()


def test_batch_only_and_gene_level_rep_with_pca(adata):
    before = adata.copy()
    out = evaluate(adata, rep="logcounts", n_pcs=10)
    assert list(out.index) == ["ilisi", "ilisi_scaled", "kbet_global_acceptance"]
    assert out.attrs["source"] == "PCA(10) of adata.layers['logcounts']" and out.attrs["n_dims"] == 10
    # rep="X" is scanpy's PCA of X, exactly how obsm["X_pca"] was made: same values
    on_obsm = evaluate(adata)
    via_x = evaluate(adata, rep="X", n_pcs=10)
    np.testing.assert_array_equal(via_x["value"], on_obsm["value"])
    # the sparse layer holds the same numbers; scanpy's sparse PCA solver differs in rounding only (at
    # scanpy 1.10, the lowest version allowed, by 2.3e-4 relative in the median iLISI)
    np.testing.assert_allclose(out["value"], on_obsm["value"], rtol=1e-3)
    # adata untouched
    assert adata.obsm.keys() == before.obsm.keys() and adata.uns.keys() == before.uns.keys()
    np.testing.assert_array_equal(adata.obsm["X_pca"], before.obsm["X_pca"])
    np.testing.assert_array_equal(adata.X, before.X)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_key": "sample"}, ValueError, r"batch_key='sample' is not a column of adata.obs; available: \['batch'"),
        ({"label_key": "celltype"}, ValueError, r"label_key='celltype' .* available: \['batch', 'cell_type'\]"),
        ({"rep": "X_mnn"}, ValueError, r"rep='X_mnn' is neither .* obsm \['X_pca'\], layers \['logcounts'\], and 'X'"),
        ({"rep": 3}, TypeError, "rep must be a string"),
        ({"perplexity": 600}, ValueError, "needs more than 1800 cells"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors must be a positive int"),
        ({"n_pcs": 2.5}, ValueError, "n_pcs must be a positive int"),
        ({"rng": -3}, ValueError, "non-negative int seed"),
    ],
)
def test_bad_arguments(adata, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate(adata, **kwargs)


def test_bad_data():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"batch": ["a", "b"] * 60, "t": ["x"] * 120}, index=[f"c{i}" for i in range(120)])
    a = ad.AnnData(rng.normal(size=(120, 8)), obs=obs)
    a.obsm["X_pca"] = rng.normal(size=(120, 3))
    a.obsm["X_pca"][4, 1] = np.nan
    with pytest.raises(ValueError, match=r"adata.obsm\['X_pca'\] contains NaN or infinite values \(first in row 4\)"):
        evaluate(a)
    a.X[0, 0] = np.inf
    with pytest.raises(ValueError, match="adata.X contains NaN"):
        evaluate(a, rep="X")
    with pytest.raises(ValueError, match="has 1 label; the label metrics need at least 2"):
        evaluate(a, label_key="t")
    a.obs["batch"] = ["a"] * 120
    with pytest.raises(ValueError, match="has 1 batch; evaluate needs at least 2"):
        evaluate(a)
    a.obs["batch"] = pd.Series([None] + ["a", "b"] * 59 + ["a"], index=a.obs.index)
    with pytest.raises(ValueError, match=r"adata.obs\['batch'\] contains missing values .* position 0"):
        evaluate(a)
    with pytest.raises(TypeError, match="adata must be an AnnData"):
        evaluate(a.X)
