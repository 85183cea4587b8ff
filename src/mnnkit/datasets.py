"""Example data shipped with mnnkit (no network access needed).

Both data sets are MIT-licensed; sources and licences are in ``data/README.md`` of the repository
(shipped in the wheel as ``mnnkit/_data/README.md``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import anndata as ad

__all__ = ["pancreas", "simulated", "data_path"]


def data_path(filename: str) -> Path:
    """Path of a shipped data file, from an installed wheel or a source checkout.

    Raises
    ------
    FileNotFoundError
        If the file is neither in the installed package nor in the checkout's ``data/``.
    """
    candidates = [Path(str(resources.files("mnnkit") / "_data" / filename))]
    candidates.append(Path(__file__).resolve().parents[2] / "data" / filename)
    for path in candidates:
        if path.is_file():
            return path
    msg = f"shipped data file {filename!r} not found (looked in: {', '.join(map(str, candidates))})"
    raise FileNotFoundError(msg)


def pancreas() -> ad.AnnData:
    """Human and mouse pancreas cells (Baron et al. 2016, via CIDER): two batches, five cell types.

    350 cells x 12474 genes of **raw UMI counts** (float32, sparse CSR): normalise and log-transform
    before correction. ``obs['batch']`` is the species (human 175, mouse 175); ``obs['cell_type']`` is
    one of activated_stellate, alpha, beta, delta, macrophage (70 each). Licence: MIT (Zhiyuan Hu, 2021).

    Returns
    -------
    A fresh AnnData read from the shipped file.
    """
    return ad.read_h5ad(data_path("cider_pancreas_human_mouse.h5ad"))


def simulated() -> ad.AnnData:
    """Two simulated batches (Canek's SimBatches) with cell types present in one batch only.

    1579 cells x 500 genes of continuous log-expression-like values (dense float32), batches B1 (631)
    and B2 (948). ``obs['cell_type']``: Cell Type 1 (1451 cells, both batches); types 2-4 (53, 38, 37
    cells) each exist in one batch only, so a good correction must keep them apart.
    ``uns['mnn_pairs_B1_B2']`` holds the pairs shipped with Canek. Licence: MIT (Martin Loza, 2019).

    Returns
    -------
    A fresh AnnData read from the shipped file.
    """
    return ad.read_h5ad(data_path("canek_simbatches.h5ad"))
