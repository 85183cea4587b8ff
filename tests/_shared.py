"""Locating the team's shared material (../shared beside the checkout), for tests that need it.

Tests that read it skip with a clear reason when it is absent (a fresh clone); CI has it.
Set ``MNNKIT_SHARED`` to point elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("MNNKIT_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REFERENCE = SHARED / "reference"
DATA = SHARED / "data"

REFERENCE_BUNDLES = [
    "canek_simbatches",
    "cider_pancreas_human_mouse",
    "harmony_cell_lines_pcs",
    "kang_pbmc_ifnb_harmony",
    "synth3",
]


def reference_bundle(name: str) -> Path:
    """Path of a batchelor reference bundle, or skip the test with the reason."""
    path = REFERENCE / f"{name}.h5ad"
    if not path.is_file():
        pytest.skip(f"batchelor reference bundle {path} not available (../shared is absent in a fresh clone)")
    return path


#: batchelor 1.14.1 outputs for merge trees, restrict, weights, correct.all, clusterMNN and the linear methods.
REFERENCE_MORE = REFERENCE / "batchelor_more"


def reference_more_bundle(name: str) -> Path:
    """Path of a bundle of ``reference/batchelor_more`` (README there), or skip the test with the reason."""
    path = REFERENCE_MORE / f"{name}.h5ad"
    if not path.is_file():
        pytest.skip(f"batchelor reference bundle {path} not available (../shared is absent in a fresh clone)")
    return path


def shared_data(name: str) -> Path:
    """Path of a shared data set (GPL-3 ones are only read from ../shared), or skip."""
    path = DATA / f"{name}.h5ad"
    if not path.is_file():
        pytest.skip(f"shared data set {path} not available (../shared is absent in a fresh clone)")
    return path
