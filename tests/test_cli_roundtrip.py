"""The real ``mnnkit`` entry point on the shipped pancreas data: correct -> evaluate -> info.

The three commands run once (module fixture, in subprocesses); each test checks one part of what they
produced against an independent truth: the Python API on the same data, the metrics API on matrices built
here by hand, the bytes of the input file.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
from PIL import Image
from threadpoolctl import threadpool_limits

import mnnkit
from mnnkit.cli import main

#: BLAS/OpenMP single-threaded in the subprocesses: faster on a shared 2-core machine, and considerate.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def entry_point() -> str:
    exe = shutil.which("mnnkit", path=str(Path(sys.executable).parent))
    assert exe is not None, "the mnnkit entry point is not installed next to this Python (pip install -e .)"
    return exe


def run_cli(*argv, cwd) -> dict:
    done = subprocess.run(
        [entry_point(), *map(str, argv)], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)  # --json: stdout is exactly one JSON document


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("roundtrip")
    source = work / "pancreas.h5ad"
    shutil.copyfile(mnnkit.datasets.data_path("cider_pancreas_human_mouse.h5ad"), source)
    digest = sha256(source)
    correct = run_cli(
        "correct", source, "-o", "corrected.h5ad", "--normalize", "--n-top-genes", "1000", "--json", cwd=work
    )
    evaluate = run_cli("evaluate", "corrected.h5ad", "--label-key", "cell_type", "--json", cwd=work)
    info = run_cli("info", "corrected.h5ad", "--json", cwd=work)
    return {"work": work, "source": source, "digest": digest, "correct": correct, "evaluate": evaluate, "info": info}


@pytest.fixture(scope="module")
def api():
    """The README's recipe with the Python API: what the command line must reproduce."""
    adata = mnnkit.datasets.pancreas()
    counts = adata.X.copy()
    with threadpool_limits(1):
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=1000, flavor="seurat")
        mnnkit.correct(adata, "batch", subset="highly_variable")
    adata.layers["counts"] = counts
    return adata


def test_input_file_is_unchanged(run):
    assert sha256(run["source"]) == run["digest"]
    assert sorted(p.name for p in run["work"].iterdir()) == ["corrected.h5ad", "pancreas.h5ad"]


def test_corrected_layer_equals_the_python_api(run, api):
    out = ad.read_h5ad(run["work"] / "corrected.h5ad")
    np.testing.assert_array_equal(out.layers["mnn"], api.layers["mnn"])
    assert np.isfinite(out.layers["mnn"]).all()  # the default corrects every gene, as the API's does
    assert bool(out.uns["mnn"]["params"]["correct_all"])
    np.testing.assert_array_equal(
        out.uns["mnn"]["steps"]["step_1"]["pairs"], api.uns["mnn"]["steps"]["step_1"]["pairs"]
    )
    np.testing.assert_array_equal(out.var["highly_variable"], api.var["highly_variable"])
    # X keeps the raw counts; the log-normalised values the correction read are in layers['lognorm']
    assert (out.X != api.layers["counts"]).nnz == 0
    assert (out.layers["lognorm"] != api.X).nnz == 0
    assert list(out.obs_names) == list(api.obs_names)
    cli = out.uns["mnn"]["cli"]
    assert cli["subset"] == "highly_variable" and bool(cli["normalize"]) and int(cli["n_top_genes"]) == 1000
    assert cli["command"].startswith("mnnkit correct ") and "--normalize" in cli["command"]


def test_correct_json_summary(run, api):
    summary = run["correct"]
    step = api.uns["mnn"]["steps"]["step_1"]
    assert summary["command"] == "correct" and summary["method"] == "classic"
    assert summary["n_cells"] == 350 and summary["n_genes"] == 12474
    assert summary["batches"] == {"human": 175, "mouse": 175} and summary["batch_key"] == "batch"
    assert summary["merge_order"] == ["human", "mouse"]
    [only] = summary["steps"]
    assert only["seconds"] > 0
    assert {k: v for k, v in only.items() if k != "seconds"} == {
        "step": 1,
        "left": ["human"],
        "right": ["mouse"],
        "n_pairs": step["n_pairs"],
    }
    assert step["n_pairs"] > 100
    assert summary["layer"] == "lognorm" and summary["normalized"] is True and summary["n_subset_genes"] == 1000
    assert summary["subset"] == "highly_variable"
    assert {"layers['mnn']", "uns['mnn']", "layers['lognorm']", "var['highly_variable']"} <= set(summary["written"])
    assert summary["params"]["sigma"] == 0.1 and summary["params"]["k_left"] == 20 and summary["params"]["var_adj"]
    seconds = summary["seconds"]
    assert 0 < seconds["correct"] <= seconds["total"]
    assert seconds["total"] == pytest.approx(sum(v for k, v in seconds.items() if k != "total"), rel=1e-6)


def _by_hand(api):
    """Uncorrected (cosine-normalised log values) and corrected matrices on the 1000 genes, built here."""
    hvg = api.var["highly_variable"].to_numpy()
    before = api.X[:, hvg].toarray().astype(np.float64)
    before /= np.linalg.norm(before, axis=1, keepdims=True)
    after = np.asarray(api.layers["mnn"][:, hvg], dtype=np.float64)
    obs = api.obs[["batch", "cell_type"]]
    return ad.AnnData(before, obs=obs.copy()), ad.AnnData(after, obs=obs.copy())


def test_evaluate_json_matches_the_metrics_api(run, api):
    summary = run["evaluate"]
    before, after = _by_hand(api)
    with threadpool_limits(1):
        expected_before = mnnkit.metrics.evaluate(before, batch_key="batch", label_key="cell_type", rep="X")
        expected_after = mnnkit.metrics.evaluate(after, batch_key="batch", label_key="cell_type", rep="X")
    metrics = summary["metrics"]
    assert list(metrics) == list(expected_after.index)  # the full panel, in evaluate's order
    for name, row in metrics.items():
        assert row["value"] == pytest.approx(expected_after.loc[name, "value"], rel=1e-6, abs=1e-9), name
        assert row["uncorrected"] == pytest.approx(expected_before.loc[name, "value"], rel=1e-6, abs=1e-9), name
        assert row["higher_is_better"] == bool(expected_after.loc[name, "higher_is_better"])
    assert summary["key_added"] == "mnn" and summary["batch_key"] == "batch"  # read from the correction
    assert summary["n_obs"] == 350 and summary["n_batches"] == 2 and summary["n_labels"] == 5
    assert summary["rep"] == "layers['mnn'], 1000 genes"
    assert summary["baseline"] == "layers['lognorm'], 1000 genes, cosine-normalised"
    # the correction mixes human and mouse cells: every batch-mixing score improves
    for name in ("ilisi", "kbet_global_acceptance", "silhouette_batch"):
        assert metrics[name]["value"] > metrics[name]["uncorrected"], name


def test_plot_option_writes_valid_images(run, tmp_path, capsys):
    # in-process (same entry function as the subprocesses): scanpy's UMAP compiles once per process, and the
    # plot tests of mnnkit.pl share that cost
    plots = tmp_path / "plots"
    with threadpool_limits(1):
        status = main(
            ["evaluate", str(run["work"] / "corrected.h5ad"), "--label-key", "cell_type", "--plot", str(plots)]
        )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"plot: {plots / 'metrics.png'}" in captured.out and "silhouette_label" in captured.out
    assert sorted(p.name for p in plots.iterdir()) == ["metrics.png", "mnn_pairs.png", "umap.png"]
    for path in plots.iterdir():
        with Image.open(path) as image:
            assert image.format == "PNG"
            image.verify()
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
        assert pixels.shape[0] >= 400 and pixels.shape[1] >= 600, (path.name, pixels.shape)
        colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
        assert len(colours) > 20 and pixels.std() > 10, path.name  # not blank: drawn content in several colours
    # plots are outputs too: not replaced without --force
    before = (plots / "umap.png").read_bytes()
    assert main(["evaluate", str(run["work"] / "corrected.h5ad"), "--plot", str(plots)]) == 1
    assert "plot file(s) already exist" in capsys.readouterr().err
    assert (plots / "umap.png").read_bytes() == before


def test_info_json(run, api):
    info = run["info"]
    assert info["n_obs"] == 350 and info["n_vars"] == 12474
    assert info["X"] == {"storage": "csr", "shape": [350, 12474], "dtype": "float32", "nnz": api.layers["counts"].nnz}
    assert info["obs"]["batch"]["n_categories"] == 2 and info["obs"]["batch"]["categories"] == ["human", "mouse"]
    assert info["obs"]["cell_type"]["n_categories"] == 5
    assert info["layers"]["mnn"] == {"storage": "dense", "shape": [350, 12474], "dtype": "float32"}
    assert info["layers"]["lognorm"]["storage"] == "csr"
    assert info["var"]["highly_variable"]["n_true"] == 1000
    correction = info["corrections"]["mnn"]
    assert correction["method"] == "classic" and correction["merge_order"] == ["human", "mouse"]
    assert correction["params"]["sigma"] == 0.1 and correction["params"]["layer"] == "lognorm"
    assert correction["steps"][0]["n_pairs"] == api.uns["mnn"]["steps"]["step_1"]["n_pairs"]
    assert "--normalize" in correction["cli"]["command"]


def test_info_text_names_what_a_person_needs(run, capsys):
    assert main(["info", str(run["work"] / "corrected.h5ad")]) == 0
    text = capsys.readouterr().out
    assert "350 cells x 12474 genes" in text
    assert "batch (2 categories: human, mouse)" in text and "cell_type (5 categories" in text
    assert "mnn (dense float32, 350 x 12474)" in text
    assert "mnnkit correction uns['mnn']: classic method, 2 batches, merge order human <- mouse" in text
    assert main(["info", str(run["source"])]) == 0
    assert "mnnkit corrections: none recorded" in capsys.readouterr().out
