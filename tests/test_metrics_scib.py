"""Every mnnkit metric named like a scib-metrics one equals it on the same neighbours (test-only dependency).

scib-metrics' neighbour lists (``NeighborsResults``) list each cell first, at distance 0; mnnkit's
exclude it. The same neighbours are therefore mnnkit's ``k`` nearest other cells and, for scib-metrics,
the cell followed by those ``k``. scib-metrics computes in JAX, in float32 unless 64-bit mode is on; the
comparisons run in JAX's 64-bit mode so that they test the definitions to 1e-6, not float32
rounding (its KMeans only runs in 32-bit mode, and there only the partition matters).
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from mnnkit.metrics import (
    ari_nmi,
    benchmark,
    clisi,
    evaluate,
    graph_connectivity,
    ilisi,
    kbet_global_acceptance,
    kbet_per_label,
    lisi,
    silhouette_batch,
    silhouette_label,
)
from mnnkit.neighbors import knn

scib_metrics = pytest.importorskip("scib_metrics", reason="scib-metrics (test extra) is not installed")
jax = pytest.importorskip("jax")
from scib_metrics.nearest_neighbors import NeighborsResults  # noqa: E402

TOL = 1e-6


def _x64():
    """JAX's 64-bit mode for the duration of a ``with`` block (``jax.experimental.enable_x64`` before jax 0.6)."""
    switch = getattr(jax, "enable_x64", None)
    if switch is None:
        from jax.experimental import enable_x64 as switch
    return switch(True)


# label, cells, clump, batches: labels in one clump, in two or three clumps (components of the kNN graph), a
# label too small for kBET, one from a single batch, and one whose large components hold under 75% of it
_CLUMPS = [
    ("alpha", 420, 0, 3),
    ("beta", 200, 1, 3),
    ("beta", 60, 2, 3),
    ("gamma", 150, 3, 2),
    ("gamma", 110, 4, 2),
    ("delta", 8, 5, 3),
    ("epsilon", 80, 6, 1),
    ("zeta", 70, 7, 3),
    ("zeta", 70, 8, 3),
    ("zeta", 40, 9, 3),
    ("eta", 150, 10, 3),
    ("eta", 60, 11, 3),
    ("eta", 60, 12, 3),
]


@pytest.fixture(scope="module")
def data():
    """A 6-d embedding: 13 clumps of 7 cell types, batches shifted apart by 1.2 (partly mixed)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=12.0, size=(len(_CLUMPS), 6))
    xs, labels, batches = [], [], []
    for label, n, clump, n_batches in _CLUMPS:
        batch = rng.integers(0, n_batches, n)
        xs.append(centres[clump] + rng.normal(size=(n, 6)) + 1.2 * np.eye(6)[batch])
        labels += [label] * n
        batches += [f"b{b}" for b in batch]
    return np.vstack(xs), np.array(labels), np.array(batches)


@pytest.fixture(scope="module")
def nn(data):
    return knn(data[0], data[0], 90, exclude_self=True)


def _scib(nn, k):
    """scib-metrics' form of mnnkit's first ``k`` neighbours: each cell first, at distance 0."""
    rows = np.arange(nn.n_obs)[:, None]
    return NeighborsResults(
        indices=np.hstack([rows, nn.indices[:, :k]]), distances=np.hstack([np.zeros(rows.shape), nn.distances[:, :k]])
    )


def test_lisi_ilisi_clisi(data, nn):
    _, labels, batch = data
    ref = _scib(nn, 90)
    with _x64():
        per_cell = scib_metrics.lisi_knn(ref, batch, perplexity=30)
        for scale in (True, False):
            assert ilisi(nn, batch, scale=scale) == pytest.approx(
                scib_metrics.ilisi_knn(ref, batch, perplexity=30, scale=scale), abs=TOL
            )
            assert clisi(nn, labels, scale=scale) == pytest.approx(
                scib_metrics.clisi_knn(ref, labels, perplexity=30, scale=scale), abs=TOL
            )
    np.testing.assert_allclose(lisi(nn, batch), per_cell, rtol=0, atol=TOL)
    assert 0.2 < ilisi(nn, batch) < 0.9  # partly mixed: the comparison is not at a bound


def test_silhouettes(data):
    x, labels, batch = data
    with _x64():
        for rescale in (True, False):
            assert silhouette_label(x, labels, rescale=rescale) == pytest.approx(
                scib_metrics.silhouette_label(x, labels, rescale=rescale), abs=TOL
            )
            assert silhouette_batch(x, labels, batch, rescale=rescale) == pytest.approx(
                scib_metrics.silhouette_batch(x, labels, batch, rescale=rescale), abs=TOL
            )


@pytest.mark.parametrize("k", [5, 15, 30])
def test_graph_connectivity_is_strong_components_of_the_directed_graph(data, nn, k):
    _, labels, _ = data
    ours = graph_connectivity(nn, labels, n_neighbors=k)
    assert ours == pytest.approx(scib_metrics.graph_connectivity(_scib(nn, k), labels), abs=TOL)
    # the sparse kNN graph gives the same; the symmetrised ("weak") graph, the original scib's, is higher here
    assert graph_connectivity(nn.subset(k).to_sparse(), labels) == ours
    assert graph_connectivity(nn, labels, n_neighbors=k, connection="weak") > ours + 1e-3


def test_kbet_global_acceptance_is_scib_metrics_kbet(data, nn):
    _, _, batch = data
    no_self = NeighborsResults(indices=nn.indices[:, :50], distances=nn.distances[:, :50])
    with _x64():
        ref = scib_metrics.kbet(no_self, batch)[0]
    ours = kbet_global_acceptance(nn, batch, n_neighbors=50)
    assert ours == pytest.approx(ref, abs=TOL)
    assert 0.05 < ours < 0.95


@pytest.mark.parametrize("k", [29, 50])
def test_kbet_per_label(data, nn, k):
    _, labels, batch = data
    ours, table = kbet_per_label(nn, batch, labels, n_neighbors=k, return_table=True)
    with _x64():
        ref, ref_table = scib_metrics.kbet_per_label(_scib(nn, k), batch, labels, return_df=True)
    assert ours == pytest.approx(ref, abs=TOL)
    ref_scores = ref_table.set_index("cluster")["kBET"]
    np.testing.assert_allclose(table["kbet"].to_numpy(), ref_scores.loc[table.index].to_numpy(), rtol=0, atol=TOL)
    # every branch of scIB's procedure is exercised by this data
    notes = table["note"].to_dict()
    assert notes["alpha"] == "one connected component"
    assert notes["beta"] == "1 of 2 components tested" and table.loc["beta", "n_tested"] == 200
    assert notes["gamma"] == "2 of 2 components tested"
    assert notes["eta"].endswith("under 75% of the cells, all rejected") and table.loc["eta", "kbet"] == 0
    assert np.isnan(table.loc["delta", "kbet"]) and np.isnan(table.loc["epsilon", "kbet"])
    assert 0.1 < table["kbet"].max() < 1.0 and ours > 0.05


def test_kbet_per_label_is_deterministic_and_accepts_embeddings(data, nn):
    x, labels, batch = data
    once = kbet_per_label(x, batch, labels)
    assert kbet_per_label(x, batch, labels) == once == kbet_per_label(nn, batch, labels)
    # a different eigensolver start vector gives the same eigenvectors, hence the same neighbourhoods
    assert kbet_per_label(nn, batch, labels, rng=7) == once


def test_kmeans_ari_nmi_with_one_initialisation(data):
    x, labels, _ = data
    # scib-metrics' KMeans is its own (JAX) k-means++ with one initialisation: on well-separated clumps both
    # find the same partition (one cluster per clump here), so ARI and NMI are equal
    clump = np.repeat(np.arange(len(_CLUMPS)), [n for _, n, _, _ in _CLUMPS])
    ref = scib_metrics.nmi_ari_cluster_labels_kmeans(x, clump)
    ours = ari_nmi(x, clump)
    assert ours["ari"] == pytest.approx(ref["ari"], abs=TOL) and ours["nmi"] == pytest.approx(ref["nmi"], abs=TOL)
    # the default is one scikit-learn KMeans run, seeded by rng
    for seed in (0, 3):
        expected = KMeans(np.unique(labels).size, n_init=1, random_state=seed).fit_predict(x)
        assert ari_nmi(x, labels, rng=seed)["ari"] == pytest.approx(adjusted_rand_score(labels, expected), abs=1e-12)


def test_evaluate_rows_are_the_scib_metrics_values(data):
    x, labels, batch = data
    adata = ad.AnnData(obs=pd.DataFrame({"batch": batch, "cell_type": labels}, index=[f"c{i}" for i in range(len(x))]))
    adata.obsm["X_emb"] = x
    table = evaluate(adata, label_key="cell_type", rep="X_emb", n_neighbors=15, kbet_neighbors=50)["value"]
    nn = knn(x, x, 90, exclude_self=True)
    with _x64():
        expected = {
            "ilisi_scaled": scib_metrics.ilisi_knn(_scib(nn, 90), batch, perplexity=30),
            "clisi_scaled": scib_metrics.clisi_knn(_scib(nn, 90), labels, perplexity=30),
            "kbet_per_label": scib_metrics.kbet_per_label(_scib(nn, 50), batch, labels),
            "graph_connectivity": scib_metrics.graph_connectivity(_scib(nn, 15), labels),
            "silhouette_label": scib_metrics.silhouette_label(x, labels),
            "silhouette_batch": scib_metrics.silhouette_batch(x, labels, batch),
        }
    for name, value in expected.items():
        assert table[name] == pytest.approx(value, abs=TOL), name


# scib-metrics calls scanpy's PCA with a deprecated argument
@pytest.mark.filterwarnings("ignore:Argument `use_highly_variable` is deprecated:FutureWarning")
def test_benchmark_runs_scib_metrics_benchmarker(data):
    from scib_metrics.benchmark import BatchCorrection, BioConservation

    x, labels, batch = data
    obs = pd.DataFrame({"batch": batch, "cell_type": labels}, index=[f"c{i}" for i in range(len(x))])
    adata = ad.AnnData(np.random.default_rng(1).normal(size=(len(x), 20)), obs=obs)
    adata.obsm["X_emb"] = x
    adata.obsm["X_shifted"] = x + np.where(batch == "b0", 5.0, 0.0)[:, None]
    before = adata.copy()
    bio_off = dict.fromkeys(("isolated_labels", "nmi_ari_cluster_labels_kmeans", "silhouette_label"), False)
    batch_off = dict.fromkeys(("bras", "ilisi_knn", "kbet_per_label", "pcr_comparison"), False)
    results = benchmark(
        adata,
        batch_key="batch",
        label_key="cell_type",
        embedding_obsm_keys=["X_emb", "X_shifted"],
        bio_conservation_metrics=BioConservation(**bio_off),
        batch_correction_metrics=BatchCorrection(**batch_off),
        neighbors_method="exact",
    )
    # the Benchmarker's 15-neighbour graph (cell included) is mnnkit's 14 other cells
    for key in ("X_emb", "X_shifted"):
        expected = graph_connectivity(adata.obsm[key], labels, n_neighbors=14)
        assert results.loc[key, "Graph connectivity"] == pytest.approx(expected, abs=TOL)
    assert results.loc["X_emb", "Graph connectivity"] > results.loc["X_shifted", "Graph connectivity"]
    # adata untouched: the Benchmarker's PCA of X (no pre-integrated key given) and its columns went elsewhere
    assert "X_pca" not in adata.obsm and "pca" not in adata.uns
    assert adata.obsm.keys() == before.obsm.keys() and adata.uns.keys() == before.uns.keys()
    assert list(adata.obs.columns) == list(before.obs.columns)


def test_benchmark_without_scib_metrics_names_the_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scib_metrics.benchmark", None)
    obs = pd.DataFrame({"b": list("abab"), "t": list("xxyy")}, index=list("1234"))
    adata = ad.AnnData(np.zeros((4, 2)), obs=obs)
    with pytest.raises(ImportError, match=r"pip install scib-metrics .*mnnkit\[test\]"):
        benchmark(adata, batch_key="b", label_key="t", embedding_obsm_keys=["X_pca"])
    with pytest.raises(ImportError, match=r'pip install "mnnkit\[scib\]"'):
        benchmark(adata, batch_key="b", label_key="t", embedding_obsm_keys=["X_pca"])
