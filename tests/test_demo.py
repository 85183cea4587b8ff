"""The README's first command ends in ``python -m mnnkit.demo``: it must run, show a correction that works
on its data (batches mix, cell types stay apart), write its plot without overwriting a file, and agree with
the command line it prints."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mnnkit import demo


def _rows(out: str) -> dict[str, tuple[float, float]]:
    pattern = r"^\s+(\w+)\s+(-?[\d.]+)\s+(-?[\d.]+)$"
    return {m.group(1): (float(m.group(2)), float(m.group(3))) for m in re.finditer(pattern, out, re.M)}


def test_demo_shows_a_working_correction(capsys) -> None:
    assert demo.main(["--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "MNN pairs" in out
    rows = _rows(out)
    for metric in demo.DEMO_METRICS:
        assert all(np.isfinite(v) for v in rows[metric])
    assert rows["ilisi_scaled"][1] > rows["ilisi_scaled"][0] + 0.15  # the batches mix
    assert rows["clisi_scaled"][1] >= 0.95  # and the cell types stay apart
    assert rows["silhouette_batch"][1] >= rows["silhouette_batch"][0]


def test_demo_plot_never_overwrites(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / demo.DEFAULT_PLOT).write_bytes(b"mine")
    assert demo.main([]) == 0
    assert (tmp_path / demo.DEFAULT_PLOT).read_bytes() == b"mine"
    written = tmp_path / "mnnkit_demo_umap-1.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(written.name) in capsys.readouterr().out


def test_the_printed_command_line_gives_the_demo_numbers(tmp_path, capsys) -> None:
    """The commands the demo prints, run by the installed ``mnnkit`` on the same file: the same MNN pairs, the
    same corrected layer and the same metrics as the demo's Python calls."""
    assert demo.main(["--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert all(f"  {command}\n" in printed for command in demo.CLI_COMMANDS)
    with threadpool_limits(1):
        adata, table, _ = demo.correct_and_score()

    exe = shutil.which("mnnkit", path=str(Path(sys.executable).parent))
    assert exe is not None, "the mnnkit entry point is not installed next to this Python (pip install -e .)"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def cli(command: str) -> str:
        done = subprocess.run(
            [exe, *shlex.split(command)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    data = cli("data simulated").strip()
    assert Path(data).is_file()
    correct, evaluate = (c.replace('"$(mnnkit data simulated)"', shlex.quote(data)) for c in demo.CLI_COMMANDS)
    summary = json.loads(cli(correct.removeprefix("mnnkit ") + " --json"))
    metrics = json.loads(cli(evaluate.removeprefix("mnnkit ") + " --json"))["metrics"]

    out = ad.read_h5ad(tmp_path / "corrected.h5ad")
    step = adata.uns["mnn"]["steps"]["step_1"]
    assert [s["n_pairs"] for s in summary["steps"]] == [step["n_pairs"]]
    np.testing.assert_array_equal(out.uns["mnn"]["steps"]["step_1"]["pairs"], step["pairs"])
    np.testing.assert_array_equal(out.layers["mnn"], adata.layers["mnn"])
    assert list(metrics) == list(table.index)
    for name, row in metrics.items():
        assert row["value"] == pytest.approx(table.loc[name, "corrected"], rel=1e-6, abs=1e-9), name
        assert row["uncorrected"] == pytest.approx(table.loc[name, "uncorrected"], rel=1e-6, abs=1e-9), name
    # and the demo printed those numbers (3 decimals)
    rows = _rows(printed)
    for metric in demo.DEMO_METRICS:
        assert rows[metric] == pytest.approx((metrics[metric]["uncorrected"], metrics[metric]["value"]), abs=6e-4)
    assert f"{step['n_pairs']} MNN pairs" in printed
