"""``mnnkit normalize`` and ``mnnkit correct --method rescale|regress``: options, outputs, errors.

The options are checked against the API signatures (every parameter reachable, the same defaults); the
outputs against the Python API on the same file; the inputs are never modified.
"""

import hashlib
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mnnkit
from mnnkit.cli import _correct_options as correct_options
from mnnkit.cli import _normalize as normalize_options
from mnnkit.cli import build_parser, main

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dense(x) -> np.ndarray:
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def counts_adata(seed: int = 0) -> ad.AnnData:
    """Raw counts (CSR float32) of three batches sequenced to different depths; a control column."""
    rng = np.random.default_rng(seed)
    profile = rng.gamma(1.0, 3.0, 40)
    sizes_depths = ((30, 1), (25, 2), (35, 3))
    blocks = [rng.poisson(profile * depth, size=(n, 40)) + np.eye(n, 40, dtype=int) for n, depth in sizes_depths]
    labels = ["a"] * 30 + ["b"] * 25 + ["c"] * 35
    obs = pd.DataFrame({"batch": pd.Categorical(labels)}, index=[f"cell{i}" for i in range(90)])
    obs["control"] = np.arange(90) % 2 == 0
    var = pd.DataFrame({"hvg": np.arange(40) % 4 != 0}, index=[f"gene{g}" for g in range(40)])
    return ad.AnnData(sp.csr_matrix(np.vstack(blocks).astype(np.float32)), obs=obs, var=var)


@pytest.fixture
def counts_file(tmp_path) -> Path:
    path = tmp_path / "counts.h5ad"
    counts_adata().write_h5ad(path)
    return path


def run(*argv) -> int:
    return main([str(a) for a in argv])


# --- options against the API ---------------------------------------------------------------------------


def test_normalize_options_match_multi_batch_norm():
    params = inspect.signature(mnnkit.multi_batch_norm).parameters
    assert set(params) == {"adata", *normalize_options.API_DEFAULTS}
    for name, value in normalize_options.API_DEFAULTS.items():
        assert params[name].default == value, name
    args = build_parser().parse_args(["normalize", "in.h5ad", "-o", "out.h5ad"])
    assert normalize_options.normalize_kwargs(args) == {}
    args = build_parser().parse_args(
        ["normalize", "in.h5ad", "-o", "out.h5ad", "--layer", "counts", "--subset", "hvg", "--normalize-all",
         "--min-mean", "0.5", "--pseudo-count", "2", "--key-added", "mbn", "--batch-key", "sample"]
    )  # fmt: skip
    assert normalize_options.normalize_kwargs(args) == {
        "layer": "counts", "subset": "hvg", "normalize_all": True, "min_mean": 0.5, "pseudo_count": 2.0,
        "key_added": "mbn",
    }  # fmt: skip
    assert args.batch_key == "sample"


@pytest.mark.parametrize("method", sorted(correct_options.LINEAR_METHODS))
def test_linear_methods_options_match_their_api(method):
    function = getattr(mnnkit, correct_options.LINEAR_METHODS[method])
    params = inspect.signature(function).parameters
    own = correct_options.RESCALE_DEFAULTS if method == "rescale" else {}
    # every parameter is reachable: the shared options of mnnkit.correct, and rescale's own
    assert set(params) == {"adata", "batch_key", *correct_options.LINEAR_FORWARDED, *own}
    for name in ("batch_key", "layer", "subset", "restrict"):
        assert params[name].default == correct_options.API_DEFAULTS[name], name
    for name, value in own.items():
        assert params[name].default == value, name
    assert params["key_added"].default == correct_options.LINEAR_METHODS[method]  # the CLI's default key


def _parse(*argv):
    args, unknown = build_parser().parse_known_args(["correct", "in.h5ad", "-o", "out.h5ad", *argv])
    assert not unknown
    return args


def test_linear_options_forward_to_the_method():
    args = _parse("--method", "rescale", "--layer", "L", "--subset", "hv", "--restrict", "ctrl", "--key-added", "r",
                  "--log-base", "e", "--pseudo-count", "0.5")  # fmt: skip
    assert correct_options.correct_kwargs(args) == {
        "method": "rescale", "layer": "L", "subset": "hv", "restrict": "ctrl", "key_added": "r",
        "log_base": math.e, "pseudo_count": 0.5,
    }  # fmt: skip
    assert correct_options.correct_kwargs(_parse("--method", "regress")) == {"method": "regress"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "regress", "-k", "5", "--sigma", "1"], "--k, --sigma only apply to --method classic or fast"),
        (["--method", "rescale", "--d", "10"], "--d only applies to --method classic or fast"),
        (["--method", "rescale", "--correct-all"], "--correct-all only applies to --method classic or fast"),
        (["--method", "regress", "--log-base", "2"], "--log-base only applies to --method rescale"),
        (["--pseudo-count", "2"], "--pseudo-count only applies to --method rescale"),
        (["--method", "fast", "--log-base", "2"], "--log-base only applies to --method rescale"),
        (["--method", "rescale", "--plot", "p"], "--plot draws the MNN pairs and corrections of --method classic"),
        (["--method", "rescale", "--log-base", "1"], "--log-base: must be a positive number other than 1"),
        (["--method", "rescale", "--pseudo-count", "0"], "--pseudo-count: must be a positive number"),
        (["--method", "linear"], "invalid choice"),
    ],
)
def test_linear_usage_errors(argv, message, capsys, tmp_path):
    source = tmp_path / "in.h5ad"
    counts_adata().write_h5ad(source)
    assert run("correct", source, "-o", tmp_path / "out.h5ad", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnnkit correct: error:") and message in err[0], err
    assert not (tmp_path / "out.h5ad").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--min-mean", "0"], "--min-mean: must be a positive number"),
        (["--pseudo-count", "-1"], "--pseudo-count: must be a non-negative number"),
        (["--subset", "hvg", "--subset-genes", "genes.txt"], "give either --subset or --subset-genes"),
        (["--sigma", "3"], "unrecognized arguments: --sigma 3"),
        (["--key", "x"], "unrecognized arguments: --key x"),  # no abbreviations
    ],
)
def test_normalize_usage_errors(argv, message, capsys, counts_file):
    assert run("normalize", counts_file, "-o", counts_file.parent / "out.h5ad", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mnnkit normalize: error:") and message in err[0], err


# --- outputs against the API -------------------------------------------------------------------------------


def test_normalize_writes_what_the_api_computes(counts_file, tmp_path, capsys):
    digest = sha256(counts_file)
    out = tmp_path / "norm.h5ad"
    assert run("normalize", counts_file, "-o", out, "--json", "-q") == 0
    summary = json.loads(capsys.readouterr().out)
    expected = counts_adata()
    mnnkit.multi_batch_norm(expected)
    got = ad.read_h5ad(out)
    assert sp.issparse(got.layers["multi_batch_norm"])  # sparse counts stay sparse
    np.testing.assert_array_equal(dense(got.layers["multi_batch_norm"]), dense(expected.layers["multi_batch_norm"]))
    np.testing.assert_array_equal(got.obs["multi_batch_norm_size_factor"], expected.obs["multi_batch_norm_size_factor"])
    np.testing.assert_array_equal(dense(got.X), dense(counts_adata().X))  # .X is kept as it is
    record = got.uns["multi_batch_norm"]
    assert record["cli"]["command"].startswith("mnnkit normalize ")
    assert summary["reference_batch"] == record["reference_batch"] == "a"
    assert summary["rescaling_divisor"] == pytest.approx(dict(zip("abc", record["rescaling_divisor"], strict=True)))
    assert summary["values"] == "layers['multi_batch_norm']"
    written = ["layers['multi_batch_norm']", "obs['multi_batch_norm_size_factor']", "uns['multi_batch_norm']"]
    assert summary["written"] == written
    assert set(summary["size_factors"]) == {"a", "b", "c"} and summary["batches"] == {"a": 30, "b": 25, "c": 35}
    assert sha256(counts_file) == digest
    # an existing output is kept without --force
    assert run("normalize", counts_file, "-o", out, "-q") == 1
    assert "already exists; pass --force" in capsys.readouterr().err


def test_normalize_subset_options(counts_file, tmp_path, capsys):
    genes = tmp_path / "genes.txt"
    genes.write_text("# size-factor genes\n" + "\n".join(f"gene{g}" for g in range(0, 40, 2)) + "\n")
    assert run("normalize", counts_file, "-o", tmp_path / "a.h5ad", "--subset-genes", genes, "-q") == 0
    assert run("normalize", counts_file, "-o", tmp_path / "b.h5ad", "--subset", "hvg", "--normalize-all",
               "--min-mean", "0.5", "--key-added", "mbn", "-q") == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "genes for size factors: hvg (30)" in text and "layers['mbn']" in text
    a, b = ad.read_h5ad(tmp_path / "a.h5ad"), ad.read_h5ad(tmp_path / "b.h5ad")
    assert "multi_batch_norm" not in a.layers and a.obsm["multi_batch_norm"].shape == (90, 20)
    assert list(a.uns["multi_batch_norm"]["genes"]) == [f"gene{g}" for g in range(0, 40, 2)]
    expected = counts_adata()
    mnnkit.multi_batch_norm(expected, subset="hvg", normalize_all=True, min_mean=0.5, key_added="mbn")
    np.testing.assert_array_equal(dense(b.layers["mbn"]), dense(expected.layers["mbn"]))


def test_normalize_errors_from_the_data_are_one_line(counts_file, tmp_path, capsys):
    assert run("normalize", counts_file, "-o", tmp_path / "o.h5ad", "--pseudo-count", "2", "-q") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pseudo_count must be 1 for sparse counts" in err[0], err
    assert run("normalize", counts_file, "-o", tmp_path / "o.h5ad", "--batch-key", "sample", "-q") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no .obs column 'sample' (--batch-key)" in err[0], err
    assert not (tmp_path / "o.h5ad").exists()


@pytest.fixture
def normalized_file(counts_file, tmp_path) -> Path:
    out = tmp_path / "normalized.h5ad"
    assert run("normalize", counts_file, "-o", out, "-q") == 0
    return out


@pytest.mark.parametrize("method", ["rescale", "regress"])
def test_linear_method_writes_what_the_api_computes(method, normalized_file, tmp_path, capsys):
    digest = sha256(normalized_file)
    out = tmp_path / f"{method}.h5ad"
    argv = ["--method", method, "--layer", "multi_batch_norm", "--restrict", "control", "--subset", "hvg"]
    assert run("correct", normalized_file, "-o", out, *argv, "--json", "-q") == 0
    summary = json.loads(capsys.readouterr().out)
    key = correct_options.LINEAR_METHODS[method]
    expected = ad.read_h5ad(normalized_file)
    getattr(mnnkit, key)(expected, layer="multi_batch_norm", restrict="control", subset="hvg")
    got = ad.read_h5ad(out)
    np.testing.assert_array_equal(got.layers[key], expected.layers[key])  # NaN outside the subset on both
    assert summary["method"] == method and summary["key_added"] == key and summary["steps"] == []
    assert summary["written"] == [f"layers[{key!r}]", f"uns[{key!r}]"]
    assert got.uns[key]["params"]["restrict"] == "control"
    assert got.uns[key]["cli"]["command"].startswith("mnnkit correct ")
    assert sha256(normalized_file) == digest
    # mnnkit info lists the record
    assert run("info", out) == 0
    text = capsys.readouterr().out
    assert f"mnnkit correction uns['{key}']: {key} method, 3 batches" in text
    assert "mnnkit normalisation uns['multi_batch_norm']: multi_batch_norm method, 3 batches" in text


def test_rescale_after_normalize_flag_reads_natural_log(counts_file, tmp_path, capsys):
    """--normalize writes log1p (natural log), so rescale un-logs with base e unless --log-base says otherwise."""
    assert run("correct", counts_file, "-o", tmp_path / "r.h5ad", "--method", "rescale", "--normalize", "-q") == 0
    assert run("correct", counts_file, "-o", tmp_path / "r2.h5ad", "--method", "rescale", "--normalize",
               "--log-base", "2", "-q") == 0  # fmt: skip
    capsys.readouterr()
    got, two = ad.read_h5ad(tmp_path / "r.h5ad"), ad.read_h5ad(tmp_path / "r2.h5ad")
    assert got.uns["rescale_batches"]["params"]["log_base"] == pytest.approx(math.e)
    assert two.uns["rescale_batches"]["params"]["log_base"] == 2
    expected = got.copy()
    mnnkit.rescale_batches(expected, layer="lognorm", log_base=math.e, key_added="check")
    np.testing.assert_allclose(dense(got.layers["rescale_batches"]), dense(expected.layers["check"]), rtol=1e-6)


def test_entry_point_runs_normalize_then_rescale(tmp_path):
    """The installed ``mnnkit`` command, as a user runs it."""
    exe = shutil.which("mnnkit", path=str(Path(sys.executable).parent))
    assert exe is not None, "the mnnkit entry point is not installed next to this Python (pip install -e .)"
    source = tmp_path / "in.h5ad"
    counts_adata().write_h5ad(source)
    for argv in (
        ["normalize", source, "-o", tmp_path / "n.h5ad"],
        [
            "correct",
            tmp_path / "n.h5ad",
            "-o",
            tmp_path / "r.h5ad",
            "--method",
            "rescale",
            "--layer",
            "multi_batch_norm",
        ],
    ):
        done = subprocess.run([exe, *map(str, argv)], capture_output=True, text=True, env=ENV, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert "rescale method" in done.stdout and "genes corrected: all genes (40)" in done.stdout
    assert "rescale_batches" in ad.read_h5ad(tmp_path / "r.h5ad").layers
    top = subprocess.run([exe, "--help"], capture_output=True, text=True, env=ENV, timeout=120)
    assert top.returncode == 0 and "normalize" in top.stdout
    sub = subprocess.run([exe, "normalize", "--help"], capture_output=True, text=True, env=ENV, timeout=120)
    assert sub.returncode == 0
    for option in ("--layer", "--subset", "--normalize-all", "--min-mean", "--pseudo-count", "--key-added"):
        assert option in sub.stdout, option
