"""The command line's promises under a hostile or careless user: no lost file, interrupts that work, bounded output.

Real processes, real signals, a real FIFO and a real second process racing for the output: each case checks the
files on disk afterwards (bytes of the inputs and of what was there before, leftover temporary files).
"""

import errno
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from mnnkit.cli import main

#: BLAS single-threaded in the subprocesses: the machine is shared.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "mnnkit"]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _small(batches=("a", "b"), n_per_batch=30, n_genes=20, seed=0) -> ad.AnnData:
    """Shifted Gaussian batches of log-like values."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal(i, 1.0, (n_per_batch, n_genes)) for i in range(len(batches))]) + 5
    obs = pd.DataFrame(
        {"batch": pd.Categorical(np.repeat(list(batches), n_per_batch), categories=list(batches))},
        index=[f"c{i}" for i in range(len(batches) * n_per_batch)],
    )
    return ad.AnnData(x.astype(np.float32), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "in.h5ad"
    _small().write_h5ad(path)
    return path


@pytest.fixture
def slow_write(tmp_path) -> Path:
    """A small correction whose output takes about two seconds to write (a 64 MB array in .uns, gzip-compressed)."""
    adata = _small()
    adata.uns["blob"] = np.random.default_rng(1).normal(size=8_000_000)
    path = tmp_path / "slow.h5ad"
    adata.write_h5ad(path)
    return path


def _temporaries(directory: Path, name: str) -> list[str]:
    """Hidden files beside ``directory/name`` that start with ``.name`` (what a write leaves behind)."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{name}"))


def _start(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, *map(str, argv)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def _wait_for_temporary(proc: subprocess.Popen, directory: Path, name: str, timeout: float = 180.0) -> str:
    """Poll until the run has created its temporary output file (it is writing); return its name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _temporaries(directory, name)
        if found:
            return found[0]
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (status {proc.returncode}) before writing: {err}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the run never started writing")


# ------------------------------------------------------------------------------------------------------ issue 17.6
def test_output_created_by_a_second_process_during_the_run_is_kept(tmp_path, data):
    """Run A checks the output path, then waits on a FIFO; run B writes the same output; A must not replace it."""
    fifo = tmp_path / "genes.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.h5ad"
    first = _start("correct", data, "-o", out, "--subset-genes", fifo, "-q")
    deadline = time.monotonic() + 180
    while True:  # a FIFO opens for writing (non-blocking) only once a reader has it open: A is past its checks
        try:
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as err:
            assert err.errno == errno.ENXIO
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "run A never opened the gene list"
            time.sleep(0.01)
    second = subprocess.run([*CLI, "correct", data, "-o", out, "-q"], env=ENV, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    theirs = _digest(out)
    os.write(writer, "\n".join(f"g{i}" for i in range(10)).encode() + b"\n")
    os.close(writer)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 1, err
    assert err.startswith(f"mnnkit correct: error: output {out} was created by another process during this run")
    assert "Traceback" not in err
    assert _digest(out) == theirs  # B's result, untouched
    assert _temporaries(tmp_path, "out.h5ad") == []


def test_existing_output_is_checked_again_when_the_result_is_published(tmp_path, data, capsys, monkeypatch):
    """In-process: a file appearing at the output path after the checks, before the write, is not replaced."""
    out = tmp_path / "out.h5ad"
    real_write = ad.AnnData.write_h5ad

    def someone_else_writes_first(self, filename, **kwargs):
        out.write_bytes(b"their output")
        real_write(self, filename, **kwargs)

    monkeypatch.setattr(ad.AnnData, "write_h5ad", someone_else_writes_first)
    assert main(["correct", str(data), "-o", str(out), "-q"]) == 1
    assert "was created by another process during this run" in capsys.readouterr().err
    assert out.read_bytes() == b"their output" and _temporaries(tmp_path, "out.h5ad") == []


# ------------------------------------------------------------------------------------------------------ issue 17.7
def test_force_refuses_to_replace_a_fifo(tmp_path, data):
    out = tmp_path / "out.h5ad"
    os.mkfifo(out)
    done = subprocess.run(
        [*CLI, "correct", str(data), "-o", str(out), "--force", "-q"], env=ENV, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"mnnkit correct: error: output {out} is a FIFO (named pipe), not a regular file; mnnkit replaces only "
        "regular files and symbolic links, even with --force"
    )
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert _temporaries(tmp_path, "out.h5ad") == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="creating a device node needs root")
def test_force_refuses_to_replace_a_device(tmp_path, data, capsys):
    out = tmp_path / "null"
    os.mknod(out, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null, in the test's own directory
    assert main(["correct", str(data), "-o", str(out), "--force", "-q"]) == 1
    assert f"output {out} is a character device, not a regular file" in capsys.readouterr().err
    assert stat.S_ISCHR(os.lstat(out).st_mode)


def test_force_refuses_a_fifo_among_the_plot_files_before_any_work(tmp_path, data, capsys):
    plots = tmp_path / "plots"
    plots.mkdir()
    os.mkfifo(plots / "umap.png")
    out = tmp_path / "out.h5ad"
    assert main(["correct", str(data), "-o", str(out), "--plot", str(plots), "--force", "-q"]) == 1
    assert f"output {plots / 'umap.png'} is a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(plots / "umap.png").st_mode) and not out.exists()


def test_force_replaces_a_symlink_itself_never_its_target(tmp_path, data, capsys):
    target = tmp_path / "target.h5ad"
    target.write_bytes(b"the link's target")
    out = tmp_path / "out.h5ad"
    out.symlink_to(target)
    assert main(["correct", str(data), "-o", str(out), "-q"]) == 1  # a link counts as existing, even to a file
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["correct", str(data), "-o", str(out), "--force", "-q"]) == 0
    assert not out.is_symlink() and "mnn" in ad.read_h5ad(out).layers
    assert target.read_bytes() == b"the link's target"


# --------------------------------------------------------------------------------------------------- issue 17.8, 9
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signal_while_writing_stops_the_run_without_output(tmp_path, slow_write, signum, status):
    before = _digest(slow_write)
    out = tmp_path / "out.h5ad"
    proc = _start("correct", slow_write, "-o", out, "--compression", "gzip", "-q")
    _wait_for_temporary(proc, tmp_path, "out.h5ad")
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == status, err
    assert "Exception ignored" not in err and "Traceback" not in err
    assert err.strip().endswith("no output was written (inputs untouched)"), err
    assert not out.exists() and _temporaries(tmp_path, "out.h5ad") == []
    assert _digest(slow_write) == before


def test_leftover_of_a_killed_run_is_removed_by_the_next_run(tmp_path, slow_write):
    out = tmp_path / "out.h5ad"
    proc = _start("correct", slow_write, "-o", out, "--compression", "gzip", "-q")
    _wait_for_temporary(proc, tmp_path, "out.h5ad")
    proc.kill()  # SIGKILL: nothing in the process can clean up
    proc.wait()
    [leftover] = _temporaries(tmp_path, "out.h5ad")
    pid = str(proc.pid)
    assert f"-{pid}-" in leftover  # the name says which process made it
    # look-alikes that the next run must keep: a live process's file, another tool's, another output's
    alive = leftover.replace(f"-{pid}-", f"-{os.getpid()}-")
    other_output = leftover.replace(".out.h5ad", ".other.h5ad")
    foreign = ".out.h5ad.tmp-a1b2c3"
    for name in (alive, other_output, foreign):
        (tmp_path / name).write_bytes(b"keep me")
    done = subprocess.run([*CLI, "correct", str(slow_write), "-o", str(out)], env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"removed 1 temporary file left by an interrupted run: {tmp_path / leftover}" in done.stderr
    assert not (tmp_path / leftover).exists()
    for name in (alive, other_output, foreign):
        assert (tmp_path / name).read_bytes() == b"keep me", name
    assert "mnn" in ad.read_h5ad(out).layers


# ----------------------------------------------------------------------------------------------------- issue 17.10
@pytest.mark.parametrize("command", ["correct", "evaluate", "info"])
def test_unknown_encoding_is_reported_as_an_invalid_file_naming_the_element(tmp_path, data, capsys, command):
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(data.read_bytes())
    with h5py.File(bad, "r+") as f:
        # info reads .obs (not .uns unless it holds a correction): an existing column is made unreadable there
        group = f["obs"]["batch"] if command == "info" else f["uns"].create_group("x")
        group.attrs["encoding-type"] = "quantum_frame"
        group.attrs["encoding-version"] = "9.9.9"
    element = "/obs/batch" if command == "info" else "/uns/x"
    argv = [command, str(bad)] + (["-o", str(tmp_path / "out.h5ad")] if command == "correct" else [])
    assert main(argv) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("mnnkit: ")]
    assert lines == [
        f"mnnkit {command}: error: cannot read {bad}: not a valid .h5ad file: element {element} has an unknown "
        "encoding ('quantum_frame', version 9.9.9), perhaps written by a newer anndata or another tool"
    ]


# ----------------------------------------------------------------------------------------------------- issue 17.11
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc (Linux)")
def test_long_batch_labels_are_cheap_and_printed_shortened(tmp_path):
    labels = np.array(["A" * 1_000_000, "B" * 1_000_000], dtype=object)  # object: no fixed-width copy here
    adata = _small(n_per_batch=150)
    adata.obs["batch"] = pd.Categorical(np.repeat(labels, 150), categories=labels)
    path = tmp_path / "long.h5ad"
    adata.write_h5ad(path)
    # the command in a fresh process that reports its own peak memory (VmHWM belongs to the process image;
    # getrusage would include the pytest process the child was forked from)
    code = (
        "import sys; from mnnkit.cli import main; status = main(sys.argv[2:]); "
        "open(sys.argv[1], 'w').write(open('/proc/self/status').read()); sys.exit(status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, tmp_path / "status", "correct", path, "-o", tmp_path / "out.h5ad", "-q"],
        env=ENV, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    peak_mib = int(re.search(r"VmHWM:\s+(\d+) kB", (tmp_path / "status").read_text()).group(1)) / 1024
    # 300 cells x two 1 MB labels: each fixed-width string copy of the column (astype(str)) takes 1.2 GB
    assert peak_mib < 800, peak_mib
    out = done.stdout
    assert len(out) < 5000, len(out)
    assert f"{'A' * 50}... (150)" in out and f"{'B' * 50}... (150)" in out
    assert max(map(len, out.splitlines())) < 400


# ----------------------------------------------------------------------------------------------------- issue 17.12
def _declaring(path: Path, n_obs: int, n_vars: int, dtype=np.float64) -> None:
    """A small file whose X declares ``n_obs x n_vars`` values (chunked, never written: zeros when read)."""
    obs = pd.DataFrame({"batch": pd.Categorical(np.where(np.arange(n_obs) % 2, "a", "b"))})
    obs.index = obs.index.astype(str)
    ad.AnnData(obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_vars)])).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        if "X" in f:
            del f["X"]
        x = f.create_dataset("X", shape=(n_obs, n_vars), dtype=dtype, chunks=(min(n_obs, 1000), min(n_vars, 1000)))
        x.attrs["encoding-type"] = "array"
        x.attrs["encoding-version"] = "0.2.0"


def test_declared_size_above_memory_is_refused_before_reading(tmp_path, capsys):
    huge = tmp_path / "huge.h5ad"
    _declaring(huge, 200_000, 500_000)  # 745 GiB of float64 declared; on disk only the cell and gene names
    assert huge.stat().st_size < 50e6
    for command in (["correct", str(huge), "-o", str(tmp_path / "out.h5ad")], ["evaluate", str(huge), "--rep", "X"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        line = err.strip().splitlines()[-1]
        assert f"{huge} declares X: dense float64, 200000 x 500000 (745.1 GiB)" in line, line
        assert "needs at least" in line and "pass --max-memory SIZE" in line and "--max-memory off" in line
        assert "reading" not in err  # refused before reading
    assert not (tmp_path / "out.h5ad").exists()


def test_max_memory_sets_the_limit(tmp_path, data, capsys):
    out = tmp_path / "out.h5ad"
    assert main(["correct", str(data), "-o", str(out), "--max-memory", "2K", "-q"]) == 1
    line = capsys.readouterr().err.strip()
    found = re.search(r"the run needs at least ([0-9.]+) KiB of memory and --max-memory is 2\.0 KiB", line)
    assert found, line
    assert float(found.group(1)) >= 9.375  # X (60 x 20 float32, 4800 bytes) and the corrected layer (the same)
    assert main(["correct", str(data), "-o", str(out), "--max-memory", "1G", "-q"]) == 0
    assert main(["correct", str(data), "-o", str(out), "--max-memory", "off", "-q", "--force"]) == 0
    assert main(["correct", str(data), "-o", str(out), "--max-memory", "lots"]) == 2
    assert "--max-memory: expected a size such as 500M, 16G or off" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------- issue 17.13
def test_control_characters_in_user_data_are_escaped(tmp_path, capsys):
    nasty = ["\x1b]0;pwned\x07", "red\x1b[31m\u202eevil"]
    path = tmp_path / "nasty.h5ad"
    adata = _small(batches=tuple(nasty))
    adata.obs["\x1b[2Jcol"] = "x"
    adata.write_h5ad(path)
    out = tmp_path / "out.h5ad"
    outputs = []
    for argv in (
        ["correct", str(path), "-o", str(out)],
        ["info", str(out)],
        ["correct", str(path), "-o", str(tmp_path / "x.h5ad"), "--merge-order", "\x1b[1mbold,nope"],
        ["correct", str(path), "-o", str(tmp_path / "x.h5ad"), "--batch-key", "missing"],
        ["evaluate", str(out)],
    ):
        main(argv)
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
    text = "".join(outputs)
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in text, repr(char)
    assert "\\x1b]0;pwned\\x07" in outputs[0] and "red\\x1b[31m\\u202eevil" in outputs[1]
    assert "\\x1b[2Jcol" in outputs[1] and "\\x1b[1mbold" in outputs[2] and "\\x1b[2Jcol" in outputs[3]


# -------------------------------------------------------------------------------------------------- issue 16 item 5
def test_info_summarises_long_lists(tmp_path, capsys):
    adata = _small(n_genes=400, n_per_batch=40)
    path = tmp_path / "genes.h5ad"
    adata.write_h5ad(path)
    genes = tmp_path / "genes.txt"
    genes.write_text("\n".join(f"g{i}" for i in range(300)))
    out = tmp_path / "out.h5ad"
    assert main(["correct", str(path), "-o", str(out), "--subset-genes", str(genes), "-q"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) < 400, text
    assert "subset_genes=300 values (g0, g1, g2, g3, g4, ... and 295 more)" in text
    assert main(["info", str(out), "--json"]) == 0  # the JSON keeps the full list
    info = json.loads(capsys.readouterr().out)
    assert info["corrections"]["mnn"]["params"]["subset_genes"] == [f"g{i}" for i in range(300)]


def _summarised(line: str, prefix: str, sep: str, total: int) -> list[str]:
    """The entries a summarised list shows after ``prefix``; checks that they and "... and N more" add up."""
    assert line.startswith(prefix), (prefix, line)
    *shown, tail = line[len(prefix) :].split(sep)
    found = re.fullmatch(r"\.\.\. and (\d+) more\)?", tail)
    assert found, line
    assert len(shown) >= 1 and len(shown) + int(found.group(1)) == total, line
    return shown


def test_every_list_info_and_correct_print_is_summarised(tmp_path, capsys):
    """A wide file (52 obs columns, 300 categories, 40 layers and embeddings, 62 uns keys, 30 batches with long
    names and a fast correction with per-batch weights): every list is cut with its count, every line is bounded,
    and --json keeps every entry."""
    names = [f"batch_with_a_rather_long_name_{i:03d}" for i in range(30)]
    adata = _small(batches=tuple(names), n_per_batch=12, n_genes=60)
    rng = np.random.default_rng(0)
    for j in range(50):
        adata.obs[f"obs_column_{j}"] = rng.integers(0, 5, adata.n_obs)
    adata.obs["many"] = pd.Categorical([f"category_{i}" for i in rng.integers(0, 300, adata.n_obs)])
    n_categories = adata.obs["many"].cat.categories.size
    adata.var["hv"] = np.arange(adata.n_vars) < 40
    for j in range(40):
        adata.layers[f"layer_{j}"] = adata.X
        adata.obsm[f"emb_{j}"] = adata.X[:, :3]
    for j in range(60):
        adata.uns[f"key_{j}"] = j
    path = tmp_path / "wide.h5ad"
    adata.write_h5ad(path)
    out = tmp_path / "out.h5ad"
    weights = ",".join(f"{name}={1 + i % 3}" for i, name in enumerate(names))
    assert main(["correct", str(path), "-o", str(tmp_path / "fast.h5ad"), "--method", "fast", "--d", "5",
                 "-k", "5", "--weights", weights, "-q"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["correct", str(tmp_path / "fast.h5ad"), "-o", str(out), "--subset", "hv", "-k", "5"]) == 0
    correct_text = capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    # lists at most 250 characters a line; the parameters (one value each, lists cut) and the command line (cut
    # at 300 characters) up to 400
    assert max(len(x) for x in lines if "params:" not in x and "made by:" not in x) <= 250, text
    assert max(map(len, lines)) <= 400, text

    def line(start: str) -> str:
        [found] = [x for x in lines if x.startswith(start)]
        return found

    _summarised(line("  obs ("), "  obs (52 columns): ", "; ", 52)
    assert line("  var (") == "  var (1 columns): hv (boolean, 40 True)"  # a short list is not cut
    _summarised(line("  layers:"), "  layers: ", "; ", 41)  # mnn and 40 layers
    _summarised(line("  obsm:"), "  obsm: ", "; ", 41)  # X_mnn and 40 embeddings
    _summarised(line("  uns ("), "  uns (62 keys): ", ", ", 62)  # 60 keys, X_mnn and mnn
    shown = _summarised(line("  mnnkit correction uns['mnn']"), "  mnnkit correction uns['mnn']: classic method, "
                        "30 batches, merge order ", " <- ", 30)  # fmt: skip
    assert shown == names[: len(shown)]
    [batch] = re.findall(r"batch \(30 categories: [^)]*\)", text)
    assert _summarised(batch, "batch (30 categories: ", ", ", 30) == names[:2]  # the names are long: two fit
    assert "subset_genes=40 values (g0, g1, g2, g3, g4, ... and 35 more)" in text
    weights = r"batch_weights=30 entries \(batch_with_a_rather_long_name_000: 1\.0, .*\.\.\. and \d+ more\)"
    assert re.search(weights, text)
    assert "--weights batch_with_a_rather_long_name_000=1," in text and "... (mnnkit " in text  # the command, cut
    assert "... 17 more steps (--json lists all)" in text  # 29 steps: the first 11 and the last
    assert "+... and 27 more <- batch_with_a_rather_long_name_029" in text  # the step's left side, cut
    # the correction's own summary: batches and merge order cut the same way
    correct_lines = correct_text.splitlines()
    assert max(map(len, correct_lines)) <= 250, correct_text
    [batches] = [x for x in correct_lines if x.startswith("  batches (30,")]
    assert re.fullmatch(r"  batches \(30, column 'batch'\): (batch_with_a_rather_long_name_\d{3} \(12\), )+"
                        r"\.\.\. and \d+ more", batches), batches  # fmt: skip
    _summarised([x for x in correct_lines if x.startswith("  merge order:")][0], "  merge order: ", " <- ", 30)
    # --json: every entry, exact
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["obs"]["many"]["n_categories"] == n_categories and len(info["obs"]["many"]["categories"]) == 8
    assert len(info["obs"]) == 52 and len(info["layers"]) == 41 and len(info["obsm"]) == 41 and len(info["uns"]) == 62
    assert info["corrections"]["mnn"]["merge_order"] == names
    assert len(info["corrections"]["mnn"]["steps"]) == 29
    assert info["corrections"]["X_mnn"]["params"]["batch_weights"] == {n: 1.0 + i % 3 for i, n in enumerate(names)}
