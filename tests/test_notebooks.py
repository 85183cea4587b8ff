"""Execute every tutorial notebook in ``notebooks/`` in a fresh kernel; a cell error fails the test.

Deselect with ``-m "not notebooks"``. Needs nbclient, nbformat and ipykernel (the ``test`` extra);
skips with the reason where they are missing. Each notebook gets its own time limit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 300  # per notebook; each runs in under two minutes on a 2-core machine

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat (pip install nbformat)")
    nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient (pip install nbclient)")
    pytest.importorskip("ipykernel", reason="notebook tests need ipykernel (pip install ipykernel)")

    # a kernel spec for this very interpreter, found first through JUPYTER_PATH, so the notebooks run
    # with the mnnkit under test whatever other kernels the machine has
    spec = tmp_path / "kernels" / "mnnkit-tests"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "mnnkit tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="mnnkit-tests",
        resources={"metadata": {"path": str(path.parent)}},  # run where a reader would run it
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) on the first error
