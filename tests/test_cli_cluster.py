"""``mnnkit correct --method cluster`` runs mnnkit.cluster_mnn (batchelor's clusterMNN), writing what the API writes."""

from __future__ import annotations

import inspect
import json

import anndata as ad
import numpy as np
import pytest

import mnnkit
from mnnkit.cli import _correct_options as options
from mnnkit.cli import main
from tests.conftest import three_batches, to_adata


@pytest.fixture
def data_file(tmp_path):
    adata = to_adata(three_batches(n=(40, 35, 38), genes=12))
    adata.var_names = [f"g{i}" for i in range(adata.n_vars)]
    x = np.asarray(adata.X)
    adata.obs["cl"] = np.where(x[:, 0] > np.median(x[:, 0]), "hi", "lo")
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    return path, adata


def test_cluster_defaults_equal_the_api_signature() -> None:
    params = inspect.signature(mnnkit.cluster_mnn).parameters
    # clusters is a required keyword of the API; the command line's absent --clusters means None (k-means)
    assert params["clusters"].default is inspect.Parameter.empty and options.CLUSTER_DEFAULTS["clusters"] is None
    assert params["n_clusters"].default == options.CLUSTER_DEFAULTS["n_clusters"]
    assert set(options.CLUSTER_FORWARDED) <= set(params)


def test_cluster_method_writes_what_the_api_writes(data_file, tmp_path, capsys) -> None:
    path, adata = data_file
    out = tmp_path / "out.h5ad"
    status = main(
        ["correct", str(path), "-o", str(out), "--method", "cluster", "--clusters", "cl", "--quiet", "--json"]
    )
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "cluster"
    expected = mnnkit.cluster_mnn(adata, "batch", clusters="cl", copy=True)
    written = ad.read_h5ad(out)
    np.testing.assert_array_equal(written.obsm["X_cluster_mnn"], expected.obsm["X_cluster_mnn"])
    np.testing.assert_array_equal(
        written.uns["X_cluster_mnn"]["clusters"]["meta"], expected.uns["X_cluster_mnn"]["clusters"]["meta"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "cluster", "--sigma", "0.5"], "--sigma only applies to --method classic, fast or rescale"),
        (["--clusters", "cl"], "--clusters only applies to --method cluster"),
        (["--method", "cluster", "--plot", "plots"], "--plot draws the MNN pairs"),
    ],
)
def test_cluster_usage_errors(data_file, tmp_path, capsys, extra, message) -> None:
    path, _ = data_file
    status = main(["correct", str(path), "-o", str(tmp_path / "o.h5ad"), *extra])
    assert status == 2
    assert message in capsys.readouterr().err
