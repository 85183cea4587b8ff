"""The synthetic data sets of benchmarks/bench_quality.py hold what they claim, and its harness keeps cell order."""

import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from sklearn.neighbors import NearestNeighbors

from benchmarks.synthetic import make_latent_batches, quality_scenarios


@pytest.fixture(scope="module")
def scenarios():
    return quality_scenarios(quick=True)


def _log_pca(adata, n_comps=30):
    adata = adata.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    return np.asarray(sc.pp.pca(adata.X, n_comps=n_comps, svd_solver="arpack", random_state=0))


def _neighbours(x, k):
    return NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]


def _mixing(x, batch, k=15):
    """Other-batch share of each cell's k neighbours over its expectation under perfect mixing, averaged: 1 = mixed."""
    other = (batch[_neighbours(x, k)] != batch[:, None]).mean(axis=1)
    _, inverse, counts = np.unique(batch, return_inverse=True, return_counts=True)
    expected = 1 - (counts[inverse] - 1) / (len(batch) - 1)
    return float(np.mean(other / expected))


def _centred(x, batch):
    out = x.copy()
    for name in np.unique(batch):
        out[batch == name] -= out[batch == name].mean(axis=0)
    return out


def test_batch_sizes_and_ratios(scenarios):
    full = quality_scenarios()
    sizes = {name: adata.obs["batch"].value_counts(sort=False).tolist() for name, adata in full.items()}
    assert sizes["syn_1to5"] == [80, 400]
    assert sizes["syn_1to10"] == [100, 1000]
    assert sizes["syn_unique"] == [600, 600]
    assert sizes["syn_3batches"] == [300, 500, 800]
    assert len(sizes["syn_10batches"]) == 10
    assert min(sizes["syn_10batches"]) >= 100
    assert max(sizes["syn_10batches"]) <= 350
    quick = {name: adata.obs["batch"].value_counts(sort=False).tolist() for name, adata in scenarios.items()}
    assert quick["syn_1to10"] == [60, 600]
    assert "syn_10batches" not in quick


def test_batch_unique_types_exist_in_one_batch_only(scenarios):
    adata = scenarios["syn_unique"]
    table = pd.crosstab(adata.obs["cell_type"], adata.obs["batch"])
    assert set(table.index[(table > 0).sum(axis=1) == 1]) == {"type5", "type6", "type7"}
    assert (table.loc["type5", "batch1"], table.loc["type6", "batch1"], table.loc["type7", "batch0"]) == (0, 0, 0)
    assert (table.loc[["type5", "type6"], "batch0"] >= 20).all()
    assert table.loc["type7", "batch1"] >= 20
    assert (table.loc[[f"type{i}" for i in range(5)]] >= 20).all().all()


def test_types_in_batches_claim_matches_the_cells(scenarios):
    for adata in scenarios.values():
        claim = adata.uns["synthetic"]["types_in_batches"]
        seen = adata.obs.groupby("cell_type", observed=True)["batch"].unique()
        for cell_type, batches in claim.items():
            assert sorted(map(str, seen.get(cell_type, []))) == sorted(batches)


def test_counts_are_integers_with_per_cell_depth(scenarios):
    x = scenarios["syn_1to5"].X
    assert x.dtype == np.float32
    assert np.array_equal(x.data, np.round(x.data))
    depth = np.asarray(x.sum(axis=1)).ravel()
    assert 1000 < np.median(depth) < 6000


def test_batch_effect_is_strong_and_not_a_shift(scenarios):
    for name in ("syn_1to5", "syn_1to10", "syn_unique", "syn_3batches"):
        adata = scenarios[name]
        x = _log_pca(adata)
        batch = adata.obs["batch"].to_numpy()
        assert _mixing(x, batch) < 0.1, name
        # removing each batch's mean does not align the cell types: MNN-like local correction is needed
        assert _mixing(_centred(x, batch), batch) < 0.2, name


def test_mixing_score_sees_mixed_batches_without_an_effect():
    adata = make_latent_batches([300, 300], effect=0.0, seed=5)
    assert _mixing(_log_pca(adata), adata.obs["batch"].to_numpy()) > 0.8


def test_cell_types_are_separable_within_each_batch(scenarios):
    for name, adata in scenarios.items():
        x = _log_pca(adata)
        batch = adata.obs["batch"].to_numpy()
        labels = adata.obs["cell_type"].to_numpy()
        for b in np.unique(batch):
            cells = batch == b
            same = labels[cells][_neighbours(x[cells], 5)] == labels[cells][:, None]
            assert same.mean() > 0.9, (name, b)


def test_generator_is_seeded():
    a = make_latent_batches([50, 70], n_genes=100, seed=3)
    b = make_latent_batches([50, 70], n_genes=100, seed=3)
    c = make_latent_batches([50, 70], n_genes=100, seed=4)
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    assert (a.X != c.X).nnz > 0


def test_bad_type_probs():
    with pytest.raises(ValueError, match="type_probs"):
        make_latent_batches([10, 10], n_types=3, type_probs=np.ones((3, 3)))
    with pytest.raises(ValueError, match="type_probs"):
        make_latent_batches([10, 10], n_types=3, type_probs=-np.ones((2, 3)))
    with pytest.raises(ValueError, match="type_probs"):
        make_latent_batches([10, 10], n_types=3, type_probs=[[1, 1, 1], [0, 0, 0]])


def test_permuted_runs_return_cells_in_the_original_order():
    from benchmarks import bench_quality as bq

    ds = bq._prepare("t", make_latent_batches([40, 60, 50], n_genes=300, seed=7), counts=True, note="")
    registry, _, _ = bq.build_registry()
    order = ["batch2", "batch0", "batch1"]
    same, _ = bq.run_method(registry["uncorrected"], ds, order)
    np.testing.assert_array_equal(same, ds.adata.obsm["X_pca"])
    # ComBat does not depend on the order of cells or batches: the permuted run, put back, is the plain run
    plain, _ = bq.run_method(registry["combat"], ds)
    permuted, _ = bq.run_method(registry["combat"], ds, order)
    signs = np.sign((permuted * plain).sum(axis=0))  # PCA components are defined up to their sign
    np.testing.assert_allclose(permuted * signs, plain, atol=1e-6)


def test_registry_adds_the_flavours_the_installed_mnnkit_accepts(monkeypatch):
    import mnnkit
    from benchmarks import bench_quality as bq

    seen = []

    def fast_mnn(adata, batch_key="batch", *, use_rep=None, merge_order=None, flavor="batchelor"):
        seen.append((flavor, merge_order))
        adata.obsm["X_mnn"] = np.asarray(adata.obsm[use_rep])

    def fast_mnn_before(adata, batch_key="batch", *, use_rep=None, merge_order=None, **kwargs):
        fast_mnn(adata, batch_key, use_rep=use_rep, merge_order=merge_order)

    monkeypatch.setattr(mnnkit, "fast_mnn", fast_mnn_before)  # no flavor parameter of its own
    registry, default, notes = bq.build_registry()
    assert "mnnkit fast robust" not in registry
    assert any("mnnkit fast robust" in note for note in notes)

    monkeypatch.setattr(mnnkit, "fast_mnn", fast_mnn)
    registry, default, notes = bq.build_registry()
    assert "mnnkit fast robust" in default
    assert not any("mnnkit fast robust" in note for note in notes)
    ds = bq._prepare("t", make_latent_batches([30, 40, 30], n_genes=200, seed=8), counts=True, note="")
    bq.run_method(registry["mnnkit fast robust"], ds)
    bq.run_method(registry["mnnkit fast"], ds, ["batch1", "batch2", "batch0"])
    assert seen == [("robust", None), ("batchelor", ["batch1", "batch2", "batch0"])]
