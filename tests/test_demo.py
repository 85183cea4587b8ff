"""The README's first command ends in ``python -m mnnkit.demo``: it must run, show a correction that works
on its data (batches mix, cell types stay apart) and write its plot without overwriting a file."""

from __future__ import annotations

import re

import numpy as np

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
