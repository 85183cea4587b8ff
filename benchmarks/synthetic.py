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


def make_latent_batches(
    batch_sizes,
    *,
    n_genes: int = 1000,
    n_types: int = 6,
    type_probs=None,
    n_latent: int = 8,
    type_spread: float = 2.0,
    within_type: float = 0.5,
    effect: float = 1.0,
    library_size: float = 3000.0,
    seed: int = 0,
) -> ad.AnnData:
    """Raw counts from a latent cell-type mixture, with batch effects that are not a pure shift.

    Each cell has a cell type (drawn with ``type_probs[b]`` in batch ``b``; default: equal shares) and a
    position ``z`` in a ``n_latent``-dimensional biological space (its type's centre plus Gaussian noise of
    sd ``within_type``; centres have sd ``type_spread``). Its log expression rate is
    ``base + s_b * (z @ A_b @ W) + d_b``: ``W`` maps the latent space to the genes (shared by all batches),
    and each batch ``b`` has its own random linear map ``A_b`` of the latent space (identity plus noise),
    its own gene-wise scale ``s_b`` of the biological signal and its own gene-wise shift ``d_b``, all
    growing with ``effect``. The batch effect therefore differs between cell types: removing each
    batch's mean does not align the types, local (MNN-like) correction is needed. Counts are Poisson with a
    log-normal library size per cell (mean ``library_size``, a per-batch offset), so the usual
    ``normalize_total`` + ``log1p`` applies.

    Returns an AnnData of raw counts (float32 CSR) with ``obs['batch']`` (categories ``batch0``,
    ``batch1``, ... in order) and ``obs['cell_type']`` (``type0``, ...), and ``uns['synthetic']`` with the
    parameters and, per cell type, the batches it was drawn in (``types_in_batches``). Same seed, same data.
    """
    from scipy import sparse

    sizes = [int(n) for n in batch_sizes]
    n_batches = len(sizes)
    if type_probs is None:
        probs = np.full((n_batches, n_types), 1.0 / n_types)
    else:
        probs = np.asarray(type_probs, dtype=float)
        if probs.shape != (n_batches, n_types) or (probs < 0).any() or (probs.sum(axis=1) <= 0).any():
            msg = (
                f"type_probs must be a non-negative array of shape {(n_batches, n_types)} with a positive sum in"
                f" each row, got shape {probs.shape}."
            )
            raise ValueError(msg)
        probs = probs / probs.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, type_spread, size=(n_types, n_latent))
    loadings = rng.normal(0.0, 1.0 / np.sqrt(n_latent), size=(n_latent, n_genes))
    base = rng.normal(0.0, 1.0, size=n_genes)
    blocks, batch, types = [], [], []
    for b, n_cells in enumerate(sizes):
        latent_map = np.eye(n_latent) + effect * 0.3 * rng.normal(size=(n_latent, n_latent)) / np.sqrt(n_latent)
        scale = np.exp(rng.normal(0.0, 0.3 * effect, size=n_genes))
        shift = rng.normal(0.0, 0.6 * effect, size=n_genes)
        lib_offset = rng.normal(0.0, 0.3)
        t = rng.choice(n_types, size=n_cells, p=probs[b])
        z = centres[t] + rng.normal(0.0, within_type, size=(n_cells, n_latent))
        eta = base + scale * ((z @ latent_map) @ loadings) + shift
        rate = np.exp(eta - eta.max(axis=1, keepdims=True))
        rate /= rate.sum(axis=1, keepdims=True)
        lib = np.exp(rng.normal(np.log(library_size) + lib_offset, 0.25, size=n_cells))
        counts = rng.poisson(rate * lib[:, None]).astype(np.float32)
        blocks.append(sparse.csr_matrix(counts))
        batch += [f"batch{b}"] * n_cells
        types += [f"type{i}" for i in t]
    batch_names = [f"batch{b}" for b in range(n_batches)]
    type_names = [f"type{i}" for i in range(n_types)]
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(batch, categories=batch_names),
            "cell_type": pd.Categorical(types, categories=type_names),
        },
        index=[f"cell{i}" for i in range(sum(sizes))],
    )
    var = pd.DataFrame(index=[f"gene{g}" for g in range(n_genes)])
    in_batches = {
        name: [batch_names[b] for b in range(n_batches) if probs[b, i] > 0] for i, name in enumerate(type_names)
    }
    uns = {
        "synthetic": {
            "generator": "make_latent_batches",
            "batch_sizes": sizes,
            "n_types": n_types,
            "n_latent": n_latent,
            "effect": effect,
            "seed": seed,
            "types_in_batches": in_batches,
        }
    }
    return ad.AnnData(sparse.vstack(blocks, format="csr"), obs=obs, var=var, uns=uns)


EFFECT = 0.6  # batch-effect strength of quality_scenarios


def quality_scenarios(*, quick: bool = False) -> dict[str, ad.AnnData]:
    """The synthetic data sets of ``benchmarks/bench_quality.py``: one per failure mode of batchelor's MNN.

    - ``syn_1to5``: two batches of 80 and 400 cells (a small batch), the same cell types in both.
    - ``syn_1to10``: 100 and 1000 cells (60 and 600 with ``quick``).
    - ``syn_unique``: two batches of 600 cells (300 with ``quick``) sharing five cell types; types 5 and 6
      exist in batch0 only, type 7 in batch1 only (``uns['synthetic']['types_in_batches']``).
    - ``syn_3batches``: three batches of 300, 500 and 800 cells (150, 250, 400) with different type
      proportions; the merge-order permutations run on it.
    - ``syn_10batches``: ten batches of 100-350 cells with different type proportions (not with ``quick``).

    Each is raw counts from :func:`make_latent_batches` with its own fixed seed and ``effect=0.6``: batches
    apart before correction (kNN mixing near 0), yet the peers can mix them (at ``effect=1`` harmony and
    scranpy's MNN barely mixed two batches of 80 and 400 cells).
    """
    scenarios = {}
    scenarios["syn_1to5"] = make_latent_batches([80, 400], effect=EFFECT, seed=101)
    scenarios["syn_1to10"] = make_latent_batches([60, 600] if quick else [100, 1000], effect=EFFECT, seed=102)
    unique_probs = np.array([[1, 1, 1, 1, 1, 0.6, 0.6, 0], [1, 1, 1, 1, 1, 0, 0, 0.6]], dtype=float)
    scenarios["syn_unique"] = make_latent_batches(
        [300, 300] if quick else [600, 600], n_types=8, type_probs=unique_probs, effect=EFFECT, seed=103
    )
    three_probs = np.array([[3, 1, 1, 1, 1, 1], [1, 3, 1, 1, 2, 1], [1, 1, 3, 1, 1, 2]], dtype=float)
    scenarios["syn_3batches"] = make_latent_batches(
        [150, 250, 400] if quick else [300, 500, 800], type_probs=three_probs, effect=EFFECT, seed=104
    )
    if not quick:
        size_rng = np.random.default_rng(105)
        sizes = size_rng.integers(100, 351, size=10)
        ten_probs = size_rng.uniform(0.5, 2.0, size=(10, 6))
        scenarios["syn_10batches"] = make_latent_batches(sizes, type_probs=ten_probs, effect=EFFECT, seed=106)
    return scenarios
