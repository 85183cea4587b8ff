"""Bad input to the command line: one clear line, the documented exit status, nothing lost or half-written.

Most tests call ``mnnkit.cli.main`` in-process (fast); one runs the real entry point to check that no traceback
escapes. Every test that could damage a file checks its bytes afterwards.
"""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from mnnkit.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _small(n_per_batch=30, n_genes=20, seed=0, genes=None, batches=("a", "b")) -> ad.AnnData:
    """Two shifted Gaussian batches of log-like values."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(i, 1.0, (n_per_batch, n_genes)) for i in range(len(batches))]) + 5
    obs = pd.DataFrame(
        {"batch": np.repeat(batches, n_per_batch), "cell_type": np.tile(["t1", "t2"], len(batches) * n_per_batch // 2)},
        index=[f"c{i}" for i in range(len(batches) * n_per_batch)],
    )
    var = pd.DataFrame(index=genes if genes is not None else [f"g{i}" for i in range(n_genes)])
    return ad.AnnData(x.astype(np.float32), obs=obs, var=var)


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "in.h5ad"
    _small().write_h5ad(path)
    return path


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_error_line(err: str, command: str = "correct") -> str:
    lines = [line for line in err.splitlines() if not line.startswith("mnnkit: ")]  # progress notes
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mnnkit {command}: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name or "mnnkit-tmp" in p.name)


def test_missing_input_file(tmp_path, capsys):
    status, out, err = _run(["correct", tmp_path / "absent.h5ad", "-o", tmp_path / "out.h5ad"], capsys)
    assert status == 1 and out == ""
    assert f"input file not found: {tmp_path / 'absent.h5ad'}" in _one_error_line(err)
    assert not (tmp_path / "out.h5ad").exists()


@pytest.mark.parametrize("command", ["correct", "evaluate", "info"])
def test_file_that_is_not_hdf5(tmp_path, capsys, command):
    bad = tmp_path / "notes.h5ad"
    bad.write_text("cell,gene\n1,2\n")
    argv = [command, bad] + (["-o", tmp_path / "out.h5ad"] if command == "correct" else [])
    status, _, err = _run(argv, capsys)
    assert status == 1
    assert "is not an HDF5 (.h5ad) file" in _one_error_line(err, command)
    assert bad.read_text() == "cell,gene\n1,2\n"


@pytest.mark.parametrize("command", ["correct", "evaluate", "info"])
def test_truncated_file(tmp_path, data, capsys, command):
    truncated = tmp_path / "truncated.h5ad"
    truncated.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    argv = [command, truncated] + (["-o", tmp_path / "out.h5ad"] if command == "correct" else [])
    status, _, err = _run(argv, capsys)
    assert status == 1
    assert "truncated or not a valid .h5ad file" in _one_error_line(err, command)


def test_missing_batch_column_lists_the_columns(tmp_path, data, capsys):
    status, _, err = _run(["correct", data, "-o", tmp_path / "out.h5ad", "--batch-key", "donor"], capsys)
    assert status == 1
    line = _one_error_line(err)
    assert "no .obs column 'donor' (--batch-key)" in line
    assert line.endswith("; columns: batch (2 categories), cell_type (2 categories)")
    assert not (tmp_path / "out.h5ad").exists()


def test_output_in_a_missing_directory(tmp_path, data, capsys):
    before = _digest(data)
    status, _, err = _run(["correct", data, "-o", tmp_path / "no" / "such" / "out.h5ad"], capsys)
    assert status == 1
    assert f"output directory {tmp_path / 'no' / 'such'} does not exist" in _one_error_line(err)
    assert not (tmp_path / "no").exists() and _digest(data) == before


def test_existing_output_is_untouched_without_force(tmp_path, data, capsys):
    out = tmp_path / "out.h5ad"
    out.write_bytes(b"precious results")
    mtime = out.stat().st_mtime_ns
    status, _, err = _run(["correct", data, "-o", out], capsys)
    assert status == 1
    assert "already exists; pass --force to replace it" in _one_error_line(err)
    assert out.read_bytes() == b"precious results" and out.stat().st_mtime_ns == mtime
    # with --force it is replaced by a complete, readable result
    status, _, err = _run(["correct", data, "-o", out, "--force", "-q"], capsys)
    assert status == 0, err
    assert "mnn" in ad.read_h5ad(out).layers


def test_output_equal_to_input_is_refused_even_with_force(tmp_path, data, capsys):
    before = _digest(data)
    for path in (data, tmp_path / "." / "in.h5ad"):
        status, _, err = _run(["correct", data, "-o", path, "--force"], capsys)
        assert status == 1
        assert "is also an input file; mnnkit never overwrites its input" in _one_error_line(err)
    assert _digest(data) == before


def test_files_with_no_gene_in_common(tmp_path, capsys):
    a, b = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    _small(genes=[f"A{i}" for i in range(20)], batches=("x",)).write_h5ad(a)
    _small(genes=[f"B{i}" for i in range(20)], batches=("y",)).write_h5ad(b)
    status, _, err = _run(["correct", a, b, "-o", tmp_path / "out.h5ad"], capsys)
    assert status == 1
    line = _one_error_line(err)
    assert f"the input files have no genes in common: {a} (20 genes), {b} (20 genes)" in line
    assert not (tmp_path / "out.h5ad").exists()


def test_unknown_option(tmp_path, data, capsys):
    status, out, err = _run(["correct", data, "-o", tmp_path / "out.h5ad", "--sigmaa", "0.1"], capsys)
    assert status == 2 and out == ""
    assert "unrecognized arguments: --sigmaa 0.1" in _one_error_line(err)
    status, _, err = _run(["corect", data], capsys)
    assert status == 2 and "invalid choice: 'corect'" in err


def test_usage_conflicts(tmp_path, data, capsys):
    out = tmp_path / "out.h5ad"
    cases = [
        (["--batch-names", "x"], "--batch-names needs several input files"),
        (["--subset", "hv", "--subset-genes", "g.txt"], "either --subset or --subset-genes"),
        (["--n-top-genes", "5", "--subset", "other"], "--n-top-genes selects the genes"),
    ]
    for extra, fragment in cases:
        status, _, err = _run(["correct", data, "-o", out, *extra], capsys)
        assert status == 2 and fragment in _one_error_line(err), err
    status, _, err = _run(["correct", data, data, "-o", out, "--batch-names", "x,y,z"], capsys)
    assert status == 2 and "--batch-names has 3 names for 2 input files" in _one_error_line(err)
    status, _, err = _run(["correct", data, data, "-o", out], capsys)
    assert status == 2 and "batch names must be distinct, got 'in' more than once" in _one_error_line(err)
    assert not out.exists()


def test_parameters_the_data_reject_are_data_errors(tmp_path, data, capsys):
    out = tmp_path / "out.h5ad"
    status, _, err = _run(["correct", data, "-o", out, "--merge-order", "a,c"], capsys)
    assert status == 1 and "'c' is not a batch; batches: a, b" in _one_error_line(err)
    status, _, err = _run(["correct", data, "-o", out, "--subset", "highly_variable"], capsys)
    assert status == 1 and "'highly_variable' is not a column of adata.var" in _one_error_line(err)
    status, _, err = _run(["correct", data, "-o", out, "--layer", "counts"], capsys)
    assert status == 1 and "layer 'counts' not in adata.layers" in _one_error_line(err)
    status, _, err = _run(["correct", data, "-o", out, "--n-top-genes", "50"], capsys)
    assert status == 1 and "--n-top-genes 50 exceeds the 20 genes" in _one_error_line(err)
    assert not out.exists() and _leftovers(tmp_path) == []


class _Killed(KeyboardInterrupt):
    pass


@pytest.mark.parametrize("existing", [False, True])
def test_run_killed_while_writing_leaves_no_partial_output(tmp_path, data, capsys, monkeypatch, existing):
    out = tmp_path / "out.h5ad"
    if existing:
        out.write_bytes(b"old complete output")
    before = _digest(data)
    real_write = ad.AnnData.write_h5ad
    seen = []

    def write_then_die(self, filename, **kwargs):
        real_write(self, filename, **kwargs)  # a complete file at the temporary path ...
        seen.append(Path(filename))
        with open(filename, "r+b") as handle:  # ... cut short, then the process is "killed"
            handle.truncate(100)
        raise _Killed

    monkeypatch.setattr(ad.AnnData, "write_h5ad", write_then_die)
    status, out_text, err = _run(["correct", data, "-o", out, "--force"], capsys)
    assert status == 130 and out_text == ""
    assert "interrupted; no output was written" in err and "Traceback" not in err
    assert seen and seen[0].parent == tmp_path and seen[0] != out  # it wrote to a temporary file beside out
    assert _leftovers(tmp_path) == []
    if existing:
        assert out.read_bytes() == b"old complete output"
    else:
        assert not out.exists()
    assert _digest(data) == before


def test_error_inside_the_write_is_reported_and_cleaned_up(tmp_path, data, capsys, monkeypatch):
    def fail(self, filename, **kwargs):
        Path(filename).write_bytes(b"half")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", fail)
    status, _, err = _run(["correct", data, "-o", tmp_path / "out.h5ad", "--quiet"], capsys)
    assert status == 1
    assert err.splitlines() == ["mnnkit correct: unexpected error (RuntimeError): disk on fire; rerun with --debug"]
    assert not (tmp_path / "out.h5ad").exists() and _leftovers(tmp_path) == []
    status, _, err = _run(["correct", data, "-o", tmp_path / "out.h5ad", "--debug"], capsys)
    assert status == 1 and "Traceback (most recent call last)" in err and "disk on fire" in err


def test_existing_plot_files_are_not_replaced_without_force(tmp_path, data, capsys):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "umap.png").write_bytes(b"old plot")
    status, _, err = _run(["correct", data, "-o", tmp_path / "out.h5ad", "--plot", plots], capsys)
    assert status == 1 and "plot file(s) already exist" in _one_error_line(err)
    assert (plots / "umap.png").read_bytes() == b"old plot" and not (tmp_path / "out.h5ad").exists()


def test_real_entry_point_prints_one_line_without_traceback(tmp_path):
    exe = shutil.which("mnnkit", path=str(Path(sys.executable).parent))
    assert exe is not None, "the mnnkit entry point is not installed (pip install -e .)"
    missing = subprocess.run([exe, "correct", tmp_path / "x.h5ad", "-o", tmp_path / "y.h5ad"], capture_output=True)
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.decode().strip() == f"mnnkit correct: error: input file not found: {tmp_path / 'x.h5ad'}"
    usage = subprocess.run([sys.executable, "-m", "mnnkit", "evaluate"], capture_output=True, text=True)
    assert usage.returncode == 2
    assert usage.stderr.strip() == (
        "mnnkit evaluate: error: the following arguments are required: FILE.h5ad (see 'mnnkit evaluate --help')"
    )


def test_evaluate_without_a_recorded_correction(tmp_path, capsys):
    path = tmp_path / "plain.h5ad"
    _small(n_per_batch=60).write_h5ad(path)
    status, _, err = _run(["evaluate", path], capsys)
    assert status == 1
    line = _one_error_line(err, "evaluate")
    assert line.endswith(
        f"no mnnkit correction is recorded in {path}; pass --rep: an .obsm key (none), a layer (none) or X"
    )
    # --rep scores any representation as it is (no baseline), here X through its PCA
    status, out, err = _run(["evaluate", path, "--rep", "X", "--label-key", "cell_type", "--json"], capsys)
    assert status == 0, err
    summary = json.loads(out)
    assert summary["rep"] == "PCA(19) of adata.X" and summary["baseline"] is None and summary["key_added"] is None
    assert "uncorrected" not in summary["metrics"]["ilisi"] and summary["n_obs"] == 120
    status, _, err = _run(["evaluate", path, "--rep", "X", "--label-key", "celltype"], capsys)
    assert status == 1
    assert _one_error_line(err, "evaluate").endswith(
        "has no .obs column 'celltype' (--label-key); columns: batch (2 categories), cell_type (2 categories)"
    )
    status, _, err = _run(["evaluate", path, "--rep", "X", "--plot", tmp_path / "plots"], capsys)
    assert status == 2 and "--plot needs a recorded mnnkit correction" in _one_error_line(err, "evaluate")
    assert not (tmp_path / "plots").exists()  # nothing created by a failed command


def test_library_warnings_reach_stderr_as_one_line(tmp_path, capsys):
    counts = _small(n_per_batch=30)
    counts.X = np.round(np.abs(counts.X) * 30)  # integer-valued, large: looks like raw counts
    path = tmp_path / "counts.h5ad"
    counts.write_h5ad(path)
    status, _, err = _run(["correct", path, "-o", tmp_path / "out.h5ad", "--quiet"], capsys)
    assert status == 0
    assert err.splitlines() == [
        "mnnkit: warning: adata.X looks like raw integer counts; MNN correction expects log-normalised expression "
        "(e.g. sc.pp.normalize_total then sc.pp.log1p); on the command line, pass --normalize"
    ]
    status, _, err = _run(["correct", path, "-o", tmp_path / "norm.h5ad", "--quiet", "--normalize"], capsys)
    assert status == 0 and err == ""
    assert "lognorm" in ad.read_h5ad(tmp_path / "norm.h5ad").layers


def test_evaluate_asks_which_correction_when_there_are_several(tmp_path, capsys):
    path = tmp_path / "plain.h5ad"
    _small(n_per_batch=60).write_h5ad(path)
    assert main(["correct", str(path), "-o", str(tmp_path / "one.h5ad"), "-q"]) == 0
    assert (
        main(
            [
                "correct",
                str(tmp_path / "one.h5ad"),
                "-o",
                str(tmp_path / "two.h5ad"),
                "-q",
                "--key-added",
                "k5",
                "-k",
                "5",
            ]
        )
        == 0
    )
    capsys.readouterr()
    status, _, err = _run(["evaluate", tmp_path / "two.h5ad"], capsys)
    assert status == 2
    assert _one_error_line(err, "evaluate").endswith("holds several corrections (k5, mnn); choose one with --key")
    status, _, err = _run(["evaluate", tmp_path / "two.h5ad", "--key", "k7"], capsys)
    assert status == 1 and "no mnnkit correction recorded under uns['k7']; recorded: k5, mnn" in err
    status, out, err = _run(["evaluate", tmp_path / "two.h5ad", "--key", "k5", "--json"], capsys)
    assert status == 0, err
    summary = json.loads(out)
    assert summary["key_added"] == "k5" and summary["rep"] == "layers['k5'], 20 genes"
    # --no-baseline scores the same corrected values, without the uncorrected column
    status, out, _ = _run(["evaluate", tmp_path / "two.h5ad", "--key", "k5", "--json", "--no-baseline"], capsys)
    alone = json.loads(out)
    assert status == 0 and alone["baseline"] is None
    for name, row in alone["metrics"].items():
        assert "uncorrected" not in row and row["value"] == summary["metrics"][name]["value"], name
