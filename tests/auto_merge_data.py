"""Data shared by the auto-merge count tests of both methods: many small batches with tied distances."""

from __future__ import annotations

import anndata as ad
import numpy as np


def many_small_batches(seed: int = 0) -> ad.AnnData:
    """Eight log-count batches of 4 to 30 cells over 40 genes; each batch repeats its first cell."""
    rng = np.random.default_rng(seed)
    sizes = [15, 4, 22, 9, 30, 12, 6, 18]
    genes = 40
    base = rng.gamma(2.0, 1.0, size=genes)
    blocks = []
    for n in sizes:
        block = np.log1p(rng.poisson(base * rng.gamma(2.0, 0.5, size=genes), size=(n, genes)).astype(np.float64))
        block[1 : max(2, n // 4)] = block[0]  # duplicated cells: tied distances
        blocks.append(block)
    adata = ad.AnnData(np.vstack(blocks))
    adata.obs["batch"] = np.repeat([f"b{i}" for i in range(len(sizes))], sizes)
    return adata


def merge_steps(adata: ad.AnnData, key: str) -> list[tuple]:
    """Each merge step's two sides (batch names) and number of MNN pairs, from ``adata.uns[key]``."""
    steps = adata.uns[key]["steps"].values()
    return [(list(s["left_names"]), list(s["right_names"]), int(s["n_pairs"])) for s in steps]
