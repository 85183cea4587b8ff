"""Synthetic log-expression data with known batch effects, for benchmarks (any size, seeded)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd


def make_batches(
    n_batches: int, n_cells: int, n_genes: int, *, n_types: int = 5, seed: int = 0, dtype=np.float32
) -> ad.AnnData:
    """``n_batches`` x ``n_cells`` cells x ``n_genes`` genes of log-expression-like values.

    Cell types are Gaussian clusters around type centres; each batch adds its own gene-wise
    shift; values are clipped at 0 as log counts are. ``obs`` has ``batch`` and ``cell_type``.
    """
    rng = np.random.default_rng(seed)
    centres = rng.gamma(2.0, 0.6, size=(n_types, n_genes))
    blocks, batch, types = [], [], []
    for b in range(n_batches):
        shift = rng.normal(0, 0.5, size=n_genes)
        t = rng.integers(0, n_types, size=n_cells)
        x = centres[t] + shift + rng.normal(0, 0.5, size=(n_cells, n_genes))
        blocks.append(np.clip(x, 0, None).astype(dtype))
        batch += [f"batch{b}"] * n_cells
        types += [f"type{i}" for i in t]
    obs = pd.DataFrame(
        {"batch": pd.Categorical(batch), "cell_type": pd.Categorical(types)},
        index=[f"cell{i}" for i in range(n_batches * n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{g}" for g in range(n_genes)])
    return ad.AnnData(np.vstack(blocks), obs=obs, var=var)
