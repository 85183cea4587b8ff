"""The space the merge works in: PCs of the genes (multi-batch PCA), or an embedding from ``.obsm``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from anndata import AnnData

from mnnkit.correction._inputs import cosine_scale
from mnnkit.correction.fast._params import DEFAULT_D
from mnnkit.correction.fast._pca import PcaResult, cosine_columns, extend_rotation, multi_batch_pca


@dataclass(frozen=True)
class PcaSpec:
    """What the multi-batch PCA of the genes computes; the in-memory and the dask paths read the same one.

    ``d`` components; ``cos_norm``: cosine-normalise the cells first (norms from the PCA genes);
    ``solver``: ``"randomized"`` or ``"exact"``; ``seed`` of the randomized SVD; ``all_genes``: give every
    gene a rotation row and a centre (batchelor's ``correct.all``), not only the PCA genes;
    ``batch_weights``: each batch's weight in the centre and the SVD (batchelor's ``weights``), or None.
    """

    d: int
    cos_norm: bool
    solver: str
    seed: int
    all_genes: bool
    batch_weights: np.ndarray | None = None


@dataclass
class Embedding:
    """The data to correct (cells x d, float64, input order) and, in gene space, the PCA's outputs."""

    data: np.ndarray
    rotation: np.ndarray | None = None
    center: np.ndarray | None = None
    singular_values: np.ndarray | None = None


def resolve_d(d: int | None, n_cells: int, n_genes: int, where: str) -> int:
    """The number of PCs: ``d`` (default 50), checked against the cells and the genes used."""
    d = DEFAULT_D if d is None else d
    if d > n_genes or d > n_cells:
        msg = (
            f"d={d} is larger than the number of {where} ({n_genes}) or of cells ({n_cells}); "
            f"pass d <= {min(n_genes, n_cells)}"
        )
        raise ValueError(msg)
    return d


def from_rep(adata: AnnData, use_rep: str, d: int | None, cos_norm: bool | None) -> Embedding:
    """The embedding ``adata.obsm[use_rep]`` (first ``d`` columns), checked, as a float64 copy.

    Like batchelor's ``reducedMNN``, it is used as it is (``cos_norm=True`` divides each row by its l2
    norm first). Memory: the copy, cells x d x 8 bytes.
    """
    if not isinstance(use_rep, str) or use_rep not in adata.obsm:
        available = ", ".join(map(str, adata.obsm.keys())) or "(none)"
        msg = f"use_rep {use_rep!r} not in adata.obsm; available: {available}"
        raise ValueError(msg)
    rep = adata.obsm[use_rep]
    if hasattr(rep, "compute") and hasattr(rep, "chunks"):
        rep = rep.compute()
    if hasattr(rep, "to_numpy"):
        rep = rep.to_numpy()
    if hasattr(rep, "toarray"):
        msg = f"adata.obsm[{use_rep!r}] is sparse; use_rep needs a dense embedding (cells x dimensions)"
        raise TypeError(msg)
    rep = np.asarray(rep)
    if rep.ndim != 2 or rep.dtype.kind not in "biuf":
        msg = f"adata.obsm[{use_rep!r}] must be a 2-D real array, got dtype {rep.dtype} and shape {rep.shape}"
        raise TypeError(msg)
    n_dims = rep.shape[1]
    if d is not None and d > n_dims:
        msg = f"d={d} is larger than the {n_dims} dimensions of adata.obsm[{use_rep!r}]; pass d <= {n_dims} or None"
        raise ValueError(msg)
    data = np.array(rep[:, : (n_dims if d is None else d)], dtype=np.float64, order="C", copy=True)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)
        msg = (
            f"adata.obsm[{use_rep!r}] contains NaN or infinite values in {rows.size} cells "
            f"(first: row {rows[0]}, {adata.obs_names[rows[0]]!r}); remove or impute them first"
        )
        raise ValueError(msg)
    if cos_norm:
        data /= cosine_scale(np.sqrt(np.einsum("ij,ij->i", data, data)))[:, None]
    return Embedding(data=data)


def from_genes(matrix: Any, cols: np.ndarray | None, members: list[np.ndarray], spec: PcaSpec) -> Embedding:
    """Multi-batch PCA of an in-memory matrix (dense, CSR or CSC), on the genes ``cols``.

    With ``all_genes``, the rotation and centre of the other genes are computed too (batchelor's
    ``correct.all=TRUE``); otherwise their rows are NaN. Memory: a float64 copy of the PCA genes
    (dense or sparse, like the input; with ``all_genes`` a copy of the other genes as well), the
    scores and the SVD's ``U`` (cells x d each).
    """
    n_vars = matrix.shape[1]
    d, cos_norm = spec.d, spec.cos_norm
    x = cosine_columns(matrix, cols, cols, cos_norm)
    pca: PcaResult = multi_batch_pca(x, members, d, solver=spec.solver, rng=spec.seed, batch_weights=spec.batch_weights)
    del x
    genes = np.arange(n_vars) if cols is None else cols
    rotation = np.full((n_vars, d), np.nan)
    center = np.full(n_vars, np.nan)
    rotation[genes] = pca.rotation
    center[genes] = pca.center
    if spec.all_genes and genes.size < n_vars:
        other = np.setdiff1d(np.arange(n_vars), genes)
        x_other = cosine_columns(matrix, other, cols, cos_norm)
        rotation[other], center[other] = extend_rotation(x_other, members, pca)
    return Embedding(data=np.ascontiguousarray(pca.scores), rotation=rotation, center=center,
                     singular_values=pca.singular_values)  # fmt: skip
