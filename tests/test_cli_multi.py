"""Several input files, one batch each (``python -m mnnkit``), and non-default options, against the Python API."""

import hashlib
import json
import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mnnkit

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _module_cli(*argv, cwd):
    done = subprocess.run(
        [sys.executable, "-m", "mnnkit", *map(str, argv)], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The simulated data split into one file per batch, each missing some genes; B2 keeps a stale batch column."""
    work = tmp_path_factory.mktemp("multi")
    full = mnnkit.datasets.simulated()
    b1 = full[full.obs["batch"] == "B1", full.var_names[:-20]].copy()  # last 20 genes missing
    b2 = full[full.obs["batch"] == "B2", full.var_names[10:]].copy()  # first 10 genes missing
    del b1.obs["batch"]
    b2.obs["batch"] = "stale"
    b1.write_h5ad(work / "B1.h5ad")
    b2.write_h5ad(work / "B2.h5ad")
    (work / "genes.txt").write_text("# genes for distances\n" + "\n".join(full.var_names[10:300]) + "\n")
    digests = {name: hashlib.sha256((work / name).read_bytes()).hexdigest() for name in ("B1.h5ad", "B2.h5ad")}
    return work, full, digests


def test_several_files_equal_the_api_on_the_shared_genes(files):
    work, full, digests = files
    summary, stderr = _module_cli(
        "correct", "B1.h5ad", "B2.h5ad", "-o", "joined.h5ad", "--json",
        "-k", "15,25", "--sigma", "0.2", "--merge-order", "B2,B1", "--no-correct-all", "--subset-genes", "genes.txt",
        "--no-var-adj", "--key-added", "corr", cwd=work,
    )  # fmt: skip
    shared = full.var_names[10:-20]
    assert summary["n_shared_genes"] == shared.size == 470
    assert summary["genes_dropped"] == {"B1": 10, "B2": 20}  # genes of each file not in the other
    assert summary["batches"] == {"B1": 631, "B2": 948}
    assert summary["merge_order"] == ["B2", "B1"]
    assert summary["key_added"] == "corr" and summary["n_subset_genes"] == 290
    assert summary["subset"] == "290 genes from genes.txt"
    assert "dropped per file: B1 10, B2 20" in stderr
    assert "obs['batch'] of B2.h5ad replaced by the file's batch" in stderr

    expected = full[:, shared].copy()  # cells: B1 then B2, as in the shipped file and as the files are given
    expected.obs["batch"] = pd.Categorical(expected.obs["batch"].astype(str), categories=["B1", "B2"])
    mnnkit.correct(
        expected, "batch", k=(15, 25), sigma=0.2, merge_order=["B2", "B1"], correct_all=False,
        subset=list(full.var_names[10:300]), var_adj=False, key_added="corr",
    )  # fmt: skip
    out = ad.read_h5ad(work / "joined.h5ad")
    assert list(out.obs_names) == list(expected.obs_names) and list(out.var_names) == list(shared)
    assert list(out.obs["batch"]) == list(expected.obs["batch"])
    np.testing.assert_array_equal(out.layers["corr"], expected.layers["corr"])
    subset = np.isin(shared, full.var_names[10:300])
    assert np.isfinite(out.layers["corr"][:, subset]).all() and np.isnan(out.layers["corr"][:, ~subset]).all()
    assert summary["steps"][0]["n_pairs"] == expected.uns["corr"]["steps"]["step_1"]["n_pairs"]
    assert list(out.uns["corr"]["cli"]["subset_genes"]) == list(full.var_names[10:300])
    for name, digest in digests.items():
        assert hashlib.sha256((work / name).read_bytes()).hexdigest() == digest


def test_fast_method_forwards_to_the_api(files):
    work, full, _ = files
    extra = ["--d", "20"]
    summary, _ = _module_cli("correct", work / "B1.h5ad", work / "B2.h5ad", "-o", "fast.h5ad", "--json",
                             "--method", "fast", *extra, cwd=work)  # fmt: skip
    shared = full.var_names[10:-20]
    expected = full[:, shared].copy()
    expected.obs["batch"] = pd.Categorical(expected.obs["batch"].astype(str), categories=["B1", "B2"])
    mnnkit.correct(expected, "batch", method="fast", d=20)
    out = ad.read_h5ad(work / "fast.h5ad")
    assert summary["method"] == str(expected.uns["X_mnn"]["method"])
    new_obsm = set(expected.obsm) - set(full.obsm)
    new_layers = set(expected.layers) - set(full.layers)
    assert new_obsm | new_layers, "the fast method wrote neither an obsm nor a layer entry"
    for key in new_obsm:
        np.testing.assert_array_equal(out.obsm[key], expected.obsm[key])
    for key in new_layers:
        np.testing.assert_array_equal(out.layers[key], expected.layers[key])
