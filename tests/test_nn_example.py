"""The runnable example: synthetic cells, a CNN trained with mnnkit.nn, embeddings in an .h5ad (no torch)."""

from __future__ import annotations

import numpy as np

from mnnkit.nn.examples import cell_images


def test_synthetic_cells_are_seeded_and_distinct():
    images, labels, plates = cell_images.make_cells(60, size=24, seed=3)
    again, _, _ = cell_images.make_cells(60, size=24, seed=3)
    np.testing.assert_array_equal(images, again)
    assert images.shape == (60, 2, 24, 24) and images.dtype == np.float32
    assert np.bincount(labels).tolist() == [20, 20, 20] and set(plates) == {0, 1}
    # multinucleated cells have more nuclear signal spread than round ones; elongated cells are anisotropic
    nuclei = images[:, 1] > 0.5
    area = nuclei.sum(axis=(1, 2))
    assert area[labels == 2].mean() > area[labels == 0].mean()
    # plate 2 stains the cytoplasm brighter (the batch effect)
    assert images[plates == 1, 0].mean() > images[plates == 0, 0].mean()


def test_example_trains_above_chance_and_writes_embeddings(tmp_path):
    import anndata as ad

    out = tmp_path / "cells.h5ad"
    result = cell_images.run(n_cells=600, epochs=4, size=24, seed=1, out=out, verbose=False)
    assert result["accuracy"] > 0.75  # chance is 1/3
    adata = ad.read_h5ad(out)
    assert adata.shape == (600, 32)
    assert adata.obsm["X_cnn"].shape == (600, 32)
    np.testing.assert_array_equal(adata.X, adata.obsm["X_cnn"])
    assert set(adata.obs["plate"].cat.categories) == {"plate1", "plate2"}
    assert list(adata.obs["shape"].cat.categories) == list(cell_images.CLASSES)
    assert (adata.obs["split"] == "test").sum() == 120
    assert np.isclose(adata.uns["cnn_example"]["test_accuracy"], result["accuracy"])


def test_example_command_line(tmp_path, capsys):
    out = tmp_path / "sub" / "cli.h5ad"
    cell_images.main(["--cells", "60", "--epochs", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and str(out) in printed
    assert out.exists()
