"""The command line's options map onto mnnkit.correct's parameters, with its defaults (in-process, fast)."""

import inspect
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import mnnkit
from mnnkit.cli import _correct_options as options
from mnnkit.cli import build_parser, main


def _parse(*argv):
    args, unknown = build_parser().parse_known_args(["correct", "in.h5ad", "-o", "out.h5ad", *argv])
    assert not unknown
    return args


def test_help_defaults_equal_the_api_signature():
    params = inspect.signature(mnnkit.correct).parameters
    for name, value in options.API_DEFAULTS.items():
        assert params[name].default == value, name
    # every parameter of the API is reachable from the command line (copy has no meaning for files;
    # progress is --quiet; fast-method parameters are checked below)
    reachable = set(options.API_DEFAULTS) | {"adata", "copy", "progress", "method", *options.FAST_ONLY}
    named = {name for name, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert named <= reachable, named - reachable
    # the fast method's own keywords: those of mnnkit.fast_mnn that mnnkit.correct does not name
    api_fast_only = set(inspect.signature(mnnkit.fast_mnn).parameters) - set(params)
    assert set(options.FAST_ONLY) == api_fast_only


def test_options_left_out_are_not_passed():
    args = _parse()
    assert options.correct_kwargs(args) == {}
    assert args.batch_key == "batch"


def test_every_option_forwards_to_its_parameter():
    args = _parse(
        "--layer", "L", "--subset", "hv", "--correct-all", "-k", "15,25", "--prop-k", "0.2", "--sigma", "0.5",
        "--no-cos-norm-in", "--cos-norm-out", "--no-var-adj", "--svd-dim", "2", "--merge-order", "b, a",
        "--approximate", "--neighbors", "pynndescent", "--kernel-neighbors", "7", "--var-adj-sample", "100",
        "--key-added", "corr", "--seed", "3", "--n-jobs", "-1", "--restrict", "ctrl", "--flavor", "robust",
    )  # fmt: skip
    assert options.correct_kwargs(args) == {
        "layer": "L", "subset": "hv", "correct_all": True, "k": (15, 25), "prop_k": 0.2, "sigma": 0.5,
        "cos_norm_in": False, "cos_norm_out": True, "var_adj": False, "svd_dim": 2, "merge_order": ["b", "a"],
        "approximate": True, "neighbors": "pynndescent", "kernel_neighbors": 7, "var_adj_sample": 100,
        "key_added": "corr", "rng": 3, "n_jobs": -1, "restrict": "ctrl", "flavor": "robust",
    }  # fmt: skip
    assert options.correct_kwargs(_parse("-k", "9", "--merge-order", "auto")) == {
        "k": 9,
        "merge_order": "auto",
    }
    # batchelor's layout (only the subset genes, the others NaN) is one flag away from the default
    assert options.correct_kwargs(_parse("--no-correct-all")) == {"correct_all": False}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["-k", "0"], "-k/--k: must be >= 1"),
        (["-k", "1,2,3"], "K_LEFT,K_RIGHT"),
        (["--sigma", "-1"], "--sigma: must be a positive number"),
        (["--sigma", "nan"], "--sigma: must be a positive number"),
        (["--prop-k", "1.5"], "--prop-k: must lie in (0, 1]"),
        (["--svd-dim", "x"], "expected an integer"),
        (["--neighbors", "annoy"], "invalid choice"),
        (["--method", "slow"], "invalid choice"),
        (["--merge-order", "a,,b"], "comma-separated names"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_values_are_usage_errors(argv, fragment, capsys):
    assert main(["correct", "in.h5ad", "-o", "out.h5ad", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mnnkit correct: error:") and fragment in err[0], err[0]
    assert "see 'mnnkit correct --help'" in err[0]


def test_fast_options_need_the_fast_method():
    with pytest.raises(options.UsageError, match="--d only applies to --method fast"):
        options.correct_kwargs(_parse("--d", "30"))
    with pytest.raises(options.UsageError, match="--d, --ndist only apply to --method fast"):
        options.correct_kwargs(_parse("--method", "classic", "--d", "30", "--ndist", "2"))
    with pytest.raises(options.UsageError, match="--svd-solver only applies to --method fast"):
        options.correct_kwargs(_parse("--svd-solver", "exact"))
    # the method is passed as given
    assert options.correct_kwargs(_parse("--method", "classic")) == {"method": "classic"}
    assert options.correct_kwargs(_parse("--method", "fast", "--d", "30")) == {"method": "fast", "d": 30}
    args = _parse(
        "--method", "fast", "-k", "10", "--d", "30", "--ndist", "2.5", "--no-cos-norm", "--use-rep", "X_pca",
        "--min-batch-skip", "0.1", "--svd-solver", "exact", "--reconstruct", "layer",
    )  # fmt: skip
    assert options.correct_kwargs(args) == {
        "method": "fast", "k": 10, "d": 30, "ndist": 2.5, "cos_norm": False, "use_rep": "X_pca",
        "min_batch_skip": 0.1, "svd_solver": "exact", "reconstruct": "layer",
    }  # fmt: skip


def test_fast_option_without_the_fast_method_is_one_line_usage_error(tmp_path, capsys):
    data = tmp_path / "in.h5ad"
    ad.AnnData(np.ones((4, 3)), obs=pd.DataFrame({"batch": list("aabb")}, index=list("wxyz"))).write_h5ad(data)
    assert main(["correct", str(data), "-o", str(tmp_path / "out.h5ad"), "--ndist", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mnnkit correct: error: --ndist only applies to --method fast"]
    assert not (tmp_path / "out.h5ad").exists()


def test_help_lists_exit_codes_and_needs_no_heavy_imports():
    code = (
        "import sys; from mnnkit.cli import main; rc = main(['--help']); "
        "heavy = [m for m in ('scanpy', 'anndata', 'numba', 'matplotlib') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    for text in ("exit status:", "0    success", "1    data or file error", "2    usage error", "correct", "evaluate"):
        assert text in out.stdout, text
    sub = subprocess.run([sys.executable, "-m", "mnnkit", "correct", "--help"], capture_output=True, text=True)
    assert sub.returncode == 0 and "--batch-key" in sub.stdout and "--normalize" in sub.stdout
    assert "usage: mnnkit correct" in sub.stdout


def test_evaluate_defaults_equal_the_metrics_api():
    args = build_parser().parse_args(["evaluate", "f.h5ad"])
    params = inspect.signature(mnnkit.metrics.evaluate).parameters
    for option, name in [
        ("n_neighbors", "n_neighbors"),
        ("kbet_neighbors", "kbet_neighbors"),
        ("perplexity", "perplexity"),
        ("n_pcs", "n_pcs"),
        ("neighbors", "neighbors_method"),
        ("seed", "rng"),
    ]:
        assert getattr(args, option) == params[name].default, option


def test_trees_and_weights_parse_into_the_api_forms():
    args = _parse("--method", "fast", "--merge-order", "[[b, c], a]", "--weights", "a=1,b=3, c=2")
    assert options.correct_kwargs(args) == {
        "method": "fast", "merge_order": [["b", "c"], "a"], "weights": {"a": 1.0, "b": 3.0, "c": 2.0}
    }  # fmt: skip
    args = _parse("--merge-order", "[[s1_a,s1_b],[s2_a,[s2_b,s2_c]]]")
    assert options.correct_kwargs(args) == {"merge_order": [["s1_a", "s1_b"], ["s2_a", ["s2_b", "s2_c"]]]}
    assert options.correct_kwargs(_parse("--method", "fast", "--weights", "[[a,b],c]"))["weights"] == [["a", "b"], "c"]
    with pytest.raises(options.UsageError, match="--weights only applies to --method fast"):
        options.correct_kwargs(_parse("--weights", "a=1"))


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--merge-order", "[[a,b],c"], "--merge-order: expected a bracketed tree of names"),
        (["--merge-order", "[a,,b]"], "--merge-order: expected a bracketed tree of names"),
        (["--weights", "a=1,b"], "--weights: expected NAME=WEIGHT,... or a tree"),
        (["--weights", "a=0"], "--weights: must be a positive number"),
    ],
)
def test_bad_trees_and_weights_are_usage_errors(argv, fragment, capsys):
    assert main(["correct", "in.h5ad", "-o", "out.h5ad", "--method", "fast", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_tree_and_weights_reach_fast_mnn(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(2, 1, size=(90, 12)) + np.repeat(rng.normal(0, 1, size=(3, 12)), 30, axis=0), 0, None)
    obs = pd.DataFrame({"batch": pd.Categorical(np.repeat(["a", "b", "c"], 30))}, index=[f"c{i}" for i in range(90)])
    source = tmp_path / "in.h5ad"
    ad.AnnData(x.astype(np.float32), obs=obs).write_h5ad(source)
    argv = ["--method", "fast", "--d", "5", "-k", "5", "--merge-order", "[[b,c],a]", "--weights", "a=1,b=2,c=2"]
    assert main(["correct", str(source), "-o", str(tmp_path / "out.h5ad"), "-q", *argv]) == 0
    capsys.readouterr()
    expected = ad.read_h5ad(source)
    mnnkit.fast_mnn(expected, d=5, k=5, merge_order=[["b", "c"], "a"], weights={"a": 1.0, "b": 2.0, "c": 2.0})
    got = ad.read_h5ad(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(got.obsm["X_mnn"], expected.obsm["X_mnn"])


def test_flavour_and_pairing_reach_fast_mnn(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = np.clip(
        rng.normal(2, 1, size=(90, 12)) + np.repeat(rng.normal(0, 1, size=(3, 12)), [20, 40, 30], axis=0), 0, None
    )
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.repeat(["a", "b", "c"], [20, 40, 30]))}, index=[f"c{i}" for i in range(90)]
    )
    source = tmp_path / "in.h5ad"
    ad.AnnData(x.astype(np.float32), obs=obs).write_h5ad(source)
    argv = ["--method", "fast", "--d", "5", "-k", "5", "--flavor", "robust", "--pairing", "dual_softmax"]
    assert main(["correct", str(source), "-o", str(tmp_path / "out.h5ad"), "-q", *argv]) == 0
    capsys.readouterr()
    expected = ad.read_h5ad(source)
    mnnkit.fast_mnn(expected, d=5, k=5, flavor="robust", pairing="dual_softmax")
    got = ad.read_h5ad(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(got.obsm["X_mnn"], expected.obsm["X_mnn"])
    assert list(got.uns["X_mnn"]["merge_order"]) == ["b", "c", "a"]  # largest first
    # --pairing belongs to the fast method; a bad pairing for the flavour is a one-line error
    assert main(["correct", str(source), "-o", str(tmp_path / "o2.h5ad"), "--pairing", "dual_softmax"]) == 2
    assert (
        main(["correct", str(source), "-o", str(tmp_path / "o3.h5ad"), "--method", "fast", "--pairing", "dual_softmax"])
        == 1
    )
    assert "needs flavor='robust'" in capsys.readouterr().err
