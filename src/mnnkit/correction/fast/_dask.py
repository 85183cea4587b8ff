"""fastMNN on a dask array: the gene-space work runs as dask computations, the merge on the collected PCs.

The cells x genes matrix (``adata.X`` or a layer as a :class:`dask.array.Array`, chunked by rows,
with numpy or scipy.sparse chunks, e.g. from :func:`anndata.experimental.read_elem_lazy`) is never
computed as a whole. One pass gives each cell's l2 norm (and checks for NaN), one the batch means,
then the randomized SVD makes ``n_iter + 2`` passes and one more gives the PC scores (cells x d),
which are collected on the driver and corrected there. The gene-level reconstruction is returned as
a lazy dask array with the input's row chunks, so writing it (``to_zarr``, anndata's writers) runs
block by block.

Every computation runs on dask's current scheduler: the user's ``distributed.Client`` if there is
one, otherwise dask's local threads. mnnkit never starts a cluster. The functions shipped to the
workers use numpy/scipy and the ``*_serial`` numba kernels, which are compiled ``nogil`` and without
``parallel``, so that several of a worker's threads can run them at once.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from mnnkit.correction._inputs import cosine_scale
from mnnkit.correction.fast import _dask_kernels
from mnnkit.correction.fast._pca import batch_codes, grand_center, row_weights, svd_options
from mnnkit.correction.fast._prepare import Embedding, PcaSpec
from mnnkit.linalg import DaskCenteredScaledMatrix, check_dask_matrix, dask_randomized_svd, is_dask_array

__all__ = ["dask_embedding", "is_dask_array", "lazy_reconstruction"]

logger = logging.getLogger("mnnkit")


def _row_sumsq(block: Any) -> np.ndarray:
    if sp.issparse(block):
        block = block.tocsr()
        return _dask_kernels.csr_row_sumsq_serial(
            np.ascontiguousarray(block.data, dtype=np.float64), block.indptr.astype(np.int64), block.shape[0]
        )
    x = np.asarray(block, dtype=np.float64)
    return np.einsum("ij,ij->i", x, x)


def _group_sums(block: Any, divisor: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    if sp.issparse(block):
        block = block.tocsr()
        return _dask_kernels.csr_group_sums_serial(
            np.ascontiguousarray(block.data, dtype=np.float64),
            block.indices.astype(np.int64),
            block.indptr.astype(np.int64),
            divisor,
            codes,
            n_groups,
            block.shape[1],
        )
    x = np.asarray(block, dtype=np.float64) / divisor[:, None]
    out = np.zeros((n_groups, x.shape[1]))
    for g in range(n_groups):
        out[g] = x[codes == g].sum(axis=0)
    return out


def _divide_rows(block: Any, divisor: np.ndarray) -> Any:
    if sp.issparse(block):
        block = block.tocsr().astype(np.float64)
        block.data /= np.repeat(divisor[:, 0], np.diff(block.indptr))
        return block
    return np.asarray(block, dtype=np.float64) / divisor


def _rmatmat_part(block: Any, weights: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``X_b^T (w_b C_b)`` plus, in a last row, ``sum(w_b C_b)``."""
    wc = C * weights[:, None]
    x = block.tocsr() if sp.issparse(block) else np.asarray(block, dtype=np.float64)
    out = np.empty((block.shape[1] + 1, C.shape[1]))
    out[:-1] = np.asarray(x.T @ wc)
    out[-1] = wc.sum(axis=0)
    return out


def _blocks_compute(fn, X, per_block_args) -> list:
    import dask

    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    tasks = [
        dask.delayed(fn)(block, *per_block_args(starts[i], starts[i + 1]))
        for i, block in enumerate(X.to_delayed().ravel())
    ]
    return list(dask.compute(*tasks))


def _cosine_matrix(X, cols, scale) -> Any:
    import dask.array as da

    sub = X if cols is None else X[:, cols]
    if scale is None:
        return sub
    divisor = da.from_array(scale[:, None], chunks=(X.chunks[0], 1))
    return da.map_blocks(_divide_rows, sub, divisor, dtype=np.float64, meta=sub._meta)


def _batch_means(X, scale, codes, n_groups) -> np.ndarray:
    divisor = np.ones(X.shape[0]) if scale is None else scale
    parts = _blocks_compute(_group_sums, X, lambda lo, hi: (divisor[lo:hi], codes[lo:hi], n_groups))
    sums = np.sum(parts, axis=0)
    return sums / np.bincount(codes, minlength=n_groups)[:, None]


def dask_embedding(X: Any, cols: np.ndarray | None, members: list[np.ndarray], spec: PcaSpec, where: str) -> Embedding:
    """Multi-batch PCA of a dask matrix (cells x genes); returns the collected scores and the rotation.

    Same result as the in-memory path up to floating-point summation order. Memory on the driver:
    ``O(cells x d + genes x d)``; on a worker, one row block (densified only if it is dense already)
    plus ``O(genes x d)``.
    """
    X = check_dask_matrix(X, where)
    d, cos_norm, all_genes = spec.d, spec.cos_norm, spec.all_genes
    n, n_vars = (int(s) for s in X.shape)
    codes = batch_codes(members, n)
    sub = X if cols is None else X[:, cols]
    logger.info("dask: %d cells x %d genes in %d row blocks", n, sub.shape[1], len(X.chunks[0]))
    sumsq = np.concatenate(_blocks_compute(_row_sumsq, sub, lambda lo, hi: ()))
    _check_finite(sumsq, where, "the PCA genes")
    scale = cosine_scale(np.sqrt(sumsq)) if cos_norm else None
    x = _cosine_matrix(X, cols, scale)
    center = grand_center(_batch_means(sub, scale, codes, len(members)), spec.batch_weights)
    weights = row_weights(members, n, spec.batch_weights)
    U, S, Vt = dask_randomized_svd(
        x, d, center=center, row_weights=weights, method=spec.solver, rng=spec.seed, **svd_options(d)
    )
    rotation_sub = np.ascontiguousarray(Vt.T)
    scores = np.empty((n, d))
    DaskCenteredScaledMatrix(x, center=center).matmat_blocks(rotation_sub, scores)

    genes = np.arange(n_vars) if cols is None else cols
    rotation = np.full((n_vars, d), np.nan)
    full_center = np.full(n_vars, np.nan)
    rotation[genes] = rotation_sub
    full_center[genes] = center
    if all_genes and genes.size < n_vars:
        other = np.setdiff1d(np.arange(n_vars), genes)
        x_other_raw = X[:, other]
        _check_finite(np.concatenate(_blocks_compute(_row_sumsq, x_other_raw, lambda lo, hi: ())), where, "genes")
        center_other = grand_center(_batch_means(x_other_raw, scale, codes, len(members)), spec.batch_weights)
        x_other = _cosine_matrix(X, other, scale)
        parts = _blocks_compute(_rmatmat_part, x_other, lambda lo, hi: (weights[lo:hi], U[lo:hi]))
        total = np.sum(parts, axis=0)
        tiny = np.finfo(np.float64).eps * max(n, n_vars) * (S[0] if S.size else 0.0)
        safe = np.where(S > tiny, S, np.inf)
        rotation[other] = (total[:-1] - np.outer(center_other, total[-1])) / safe
        full_center[other] = center_other
    return Embedding(data=scores, rotation=rotation, center=full_center, singular_values=S)


def _check_finite(sumsq: np.ndarray, where: str, what: str) -> None:
    bad = ~np.isfinite(sumsq)
    if bad.any():
        rows = np.flatnonzero(bad)
        msg = (
            f"{where} contains NaN or infinite values among {what} in {rows.size} cells (first: row {rows[0]}); "
            "remove or impute them before correction"
        )
        raise ValueError(msg)


def lazy_reconstruction(corrected: np.ndarray, rotation: np.ndarray, row_chunks: tuple, dtype) -> Any:
    """``corrected @ rotation.T`` as a dask array with the given row chunks (computed block by block)."""
    import dask.array as da

    left = da.from_array(np.ascontiguousarray(corrected), chunks=(row_chunks, corrected.shape[1]))
    right = da.from_array(np.ascontiguousarray(rotation.T), chunks=rotation.T.shape)
    return (left @ right).astype(dtype)
