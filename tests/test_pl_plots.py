"""mnnkit.pl: the figures exist, are valid images, show what they claim, and leave adata and matplotlib alone."""

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from matplotlib.figure import Figure
from PIL import Image
from threadpoolctl import threadpool_limits

import mnnkit
from mnnkit.pl import correction_data


@pytest.fixture(scope="module")
def corrected():
    adata = mnnkit.datasets.pancreas()
    with threadpool_limits(1):
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=1000, flavor="seurat")
        mnnkit.correct(adata, "batch", subset="highly_variable")
    return adata


def _snapshot(adata):
    return {
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "layers": {k: np.array(v, copy=True) for k, v in adata.layers.items()},
        "X": adata.X.copy(),
        "obsm": sorted(adata.obsm),
        "uns": sorted(adata.uns),
        "steps": sorted(adata.uns["mnn"]["steps"]),
    }


def _assert_unchanged(adata, before):
    pd.testing.assert_frame_equal(adata.obs, before["obs"])
    pd.testing.assert_frame_equal(adata.var, before["var"])
    assert sorted(adata.layers) == sorted(before["layers"])
    for key, value in before["layers"].items():
        np.testing.assert_array_equal(adata.layers[key], value)
    assert (adata.X != before["X"]).nnz == 0
    assert sorted(adata.obsm) == before["obsm"] and sorted(adata.uns) == before["uns"]
    assert sorted(adata.uns["mnn"]["steps"]) == before["steps"]


def _check_png(path, min_size=(400, 600)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[0] >= min_size[0] and pixels.shape[1] >= min_size[1], pixels.shape
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3)[::5], axis=0)) > 20  # not blank


def _same_batch_fraction(xy, labels, k=10):
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def test_umap_comparison(corrected, tmp_path):
    import matplotlib.pyplot as plt

    before = _snapshot(corrected)
    rc = dict(matplotlib.rcParams)
    figures = plt.get_fignums()
    with threadpool_limits(1):
        fig = mnnkit.pl.umap_comparison(corrected, label_key="cell_type", save=tmp_path / "umap.png")
    assert isinstance(fig, Figure)
    _check_png(tmp_path / "umap.png")
    _assert_unchanged(corrected, before)
    assert plt.get_fignums() == figures  # nothing registered with pyplot, nothing left open
    assert dict(matplotlib.rcParams) == rc
    panels = [ax for ax in fig.axes if ax.collections]
    assert len(panels) == 4
    titles = [ax.get_title() for ax in panels]  # rows: uncorrected, corrected; columns: batch, cell_type
    assert titles == [
        "uncorrected (X, 1000 genes, cosine-normalised)\ncoloured by batch",
        "uncorrected (X, 1000 genes, cosine-normalised)\ncoloured by cell_type",
        "corrected (layers['mnn'], 1000 genes)\ncoloured by batch",
        "corrected (layers['mnn'], 1000 genes)\ncoloured by cell_type",
    ]
    # the drawn points: every cell once per panel; colours by batch; the batches mix after correction
    drawn = {}
    for ax, state in zip([panels[0], panels[2]], ("uncorrected", "corrected"), strict=True):
        points = ax.collections[0]
        xy = np.asarray(points.get_offsets())
        assert xy.shape == (corrected.n_obs, 2)
        colours = np.asarray(points.get_facecolors())[:, :3]
        assert len(np.unique(colours, axis=0)) == 2
        drawn[state] = (xy, colours)
    xy0, col0 = drawn["uncorrected"]
    xy1, col1 = drawn["corrected"]
    assert _same_batch_fraction(xy0, col0[:, 0]) > 0.95  # species apart before
    assert _same_batch_fraction(xy1, col1[:, 0]) < 0.8  # mixed after
    legend_texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert {"human", "mouse", "alpha", "beta", "delta", "macrophage", "activated_stellate"} <= set(legend_texts)


def test_umap_comparison_with_mnnkits_umap(corrected, tmp_path):
    before = _snapshot(corrected)
    fig = mnnkit.pl.umap_comparison(corrected, umap_method="mnnkit", save=tmp_path / "umap.png")
    _check_png(tmp_path / "umap.png")
    _assert_unchanged(corrected, before)
    (uncorrected, fixed) = [np.asarray(ax.collections[0].get_offsets()) for ax in fig.axes if ax.collections]
    batch = corrected.obs["batch"].to_numpy()
    order = np.random.default_rng(0).permutation(corrected.n_obs)  # the seeded drawing order
    assert _same_batch_fraction(uncorrected, batch[order]) > 0.95  # species apart before
    assert _same_batch_fraction(fixed, batch[order]) < 0.8  # mixed after
    with pytest.raises(ValueError, match="umap_method"):
        mnnkit.pl.umap_comparison(corrected, umap_method="umap-learn")


def test_mnn_pairs(corrected, tmp_path):
    before = _snapshot(corrected)
    fig = mnnkit.pl.mnn_pairs(corrected, save=tmp_path / "pairs.png")
    _check_png(tmp_path / "pairs.png")
    _assert_unchanged(corrected, before)
    ax_pairs, ax_len = fig.axes[:2]
    heights = [patch.get_height() for patch in ax_pairs.patches]
    assert heights == [corrected.uns["mnn"]["steps"]["step_1"]["n_pairs"]]
    # the correction vectors, computed here: corrected minus cosine-normalised input on the 1000 genes
    hvg = corrected.var["highly_variable"].to_numpy()
    x = corrected.X[:, hvg].toarray().astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lengths = np.linalg.norm(corrected.layers["mnn"][:, hvg] - x, axis=1)
    mouse = corrected.obs["batch"].to_numpy() == "mouse"
    assert lengths[~mouse].max() < 1e-5  # the reference batch does not move
    labels = [t.get_text() for t in ax_len.get_legend().get_texts()]
    assert labels == [f"mouse (n=175, median {np.median(lengths[mouse]):.3f})", "not moved (reference): human"]
    # the drawn histogram is the histogram of those lengths (41 bins from 0 to just past the longest)
    counts, _ = np.histogram(lengths[mouse], bins=np.linspace(0, lengths.max() * 1.02, 41))
    outline = np.concatenate([patch.get_xy()[:, 1] for patch in ax_len.patches])
    assert outline.max() == counts.max() and set(np.unique(outline)) <= {0.0, *counts.astype(float)}
    np.testing.assert_allclose(correction_data(corrected, "mnn").vector_lengths, lengths, atol=1e-6)


def test_metrics_comparison_draws_the_table(corrected, tmp_path):
    table = pd.DataFrame(
        {
            "uncorrected": [0.1, 0.2, 0.7, 0.9, 0.5, 0.4, 0.6, 0.8, 1.5],
            "corrected": [0.3, 0.4, 0.8, 0.85, 0.55, 0.45, 0.65, 0.95, 1.9],
        },
        index=pd.Index(
            [
                "ilisi_scaled", "kbet_acceptance", "silhouette_batch", "clisi_scaled", "silhouette_label", "ari",
                "nmi", "graph_connectivity", "ilisi",
            ],
            name="metric",
        ),
    )  # fmt: skip
    fig = mnnkit.pl.metrics_comparison(corrected, table=table, save=tmp_path / "metrics.png")
    _check_png(tmp_path / "metrics.png", min_size=(400, 500))
    batch_ax, bio_ax = fig.axes[:2]
    assert [t.get_text() for t in batch_ax.get_yticklabels()] == ["ilisi_scaled", "kbet_acceptance", "silhouette_batch"]
    widths = sorted(round(p.get_width(), 6) for p in batch_ax.patches)
    assert widths == sorted([0.1, 0.2, 0.7, 0.3, 0.4, 0.8])
    bio_widths = sorted(round(p.get_width(), 6) for p in bio_ax.patches)
    assert bio_widths == sorted([0.9, 0.5, 0.4, 0.6, 0.8, 0.85, 0.55, 0.45, 0.65, 0.95])  # raw ilisi is not drawn
    with pytest.raises(ValueError, match="table needs columns 'uncorrected' and 'corrected'"):
        mnnkit.pl.metrics_comparison(corrected, table=table.rename(columns={"corrected": "after"}))


def test_show_hands_the_figure_to_pyplot_and_closes_it(corrected):
    import matplotlib.pyplot as plt

    figures = plt.get_fignums()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Agg is non-interactive
        assert mnnkit.pl.mnn_pairs(corrected, show=True) is None
    assert plt.get_fignums() == figures


def test_missing_or_unrecorded_information_is_a_clear_error(corrected):
    with pytest.raises(ValueError, match=r"adata.uns\['other'\] is not an mnnkit correction record; corrections "):
        mnnkit.pl.mnn_pairs(corrected, key_added="other")
    # every gene corrected on a gene subset: the record names the subset's genes; without them it must be given
    adata = corrected.copy()
    mnnkit.correct(adata, "batch", subset="highly_variable", key_added="all")
    np.testing.assert_array_equal(correction_data(adata, "all").genes, np.flatnonzero(adata.var["highly_variable"]))
    del adata.uns["all"]["params"]["subset_genes"]  # a record without them (mnnkit before subset_genes)
    with pytest.raises(ValueError, match="subset of 1000 of 12474 genes that is not recorded; pass subset="):
        correction_data(adata, "all")
    data = correction_data(adata, "all", subset="highly_variable")
    reference = adata.obs["batch"].to_numpy() == "human"
    # the reference batch is unmoved only if the baseline is scaled exactly as the correction scaled it
    assert data.vector_lengths[reference].max() < 1e-5 and data.vector_lengths[~reference].min() > 0.1
    # keys are checked up front, naming the parameter and listing what there is
    with pytest.raises(ValueError, match=r"label_key 'celltype' not in adata.obs; available: .*batch"):
        mnnkit.pl.umap_comparison(corrected, label_key="celltype")
    with pytest.raises(ValueError, match=r"batch_key 'nope' not in adata.obs; available: .*batch"):
        mnnkit.pl.compare_metrics(corrected, batch_key="nope", data=data)
    with pytest.raises(ValueError, match=r"subset 'hvg' not in adata.var; available: "):
        correction_data(adata, "all", subset="hvg")
