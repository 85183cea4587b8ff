"""Multi-batch PCA (batchelor's ``multiBatchPCA``) of in-memory data: dense, CSR or CSC.

Cells are cosine-normalised (norms from the subset genes), centred on the unweighted mean of the
batch means, and each batch's rows are scaled by ``1/sqrt(n_b)`` for the SVD only, so that every
batch weighs the same in the rotation whatever its size. The scores are the unscaled centred data
times the rotation. The SVD is :func:`mnnkit.linalg.randomized_svd` (implicit centring and row
weights, so a sparse matrix is never densified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mnnkit._config import SVD_ITERATIONS
from mnnkit.correction._inputs import cosine_scale
from mnnkit.linalg import CenteredScaledMatrix, randomized_svd


def svd_options(d: int) -> dict:
    """Keyword arguments of the randomized SVD for ``d`` components."""
    return {"n_oversamples": d, "n_iter": SVD_ITERATIONS}


@dataclass
class PcaResult:
    """Scores (cells in input order), rotation (genes x d), centre, singular values, and the SVD's ``U``."""

    scores: np.ndarray
    rotation: np.ndarray
    center: np.ndarray
    singular_values: np.ndarray
    left_vectors: np.ndarray
    row_weights: np.ndarray
    batch_weights: np.ndarray | None = None


def batch_codes(members: list[np.ndarray], n_cells: int) -> np.ndarray:
    """Batch position of every cell."""
    codes = np.empty(n_cells, dtype=np.int64)
    for b, rows in enumerate(members):
        codes[rows] = b
    return codes


def row_weights(members: list[np.ndarray], n_cells: int, batch_weights: np.ndarray | None = None) -> np.ndarray:
    """``1/sqrt(n_b / w_b)`` for every cell of batch ``b`` (``w_b = 1`` without ``batch_weights``).

    Every batch then weighs ``w_b`` in the SVD whatever its size (batchelor's ``multiBatchPCA``).
    """
    weights = np.empty(n_cells)
    for b, rows in enumerate(members):
        weights[rows] = 1.0 / np.sqrt(rows.size) if batch_weights is None else np.sqrt(batch_weights[b] / rows.size)
    return weights


def grand_center(means: np.ndarray, batch_weights: np.ndarray | None = None) -> np.ndarray:
    """The PCA's centre: the mean of the batch means, weighted by ``batch_weights`` if given."""
    if batch_weights is None:
        return means.mean(axis=0)
    return (batch_weights[:, None] * means).sum(axis=0) / batch_weights.sum()


def cosine_columns(matrix: Any, cols: np.ndarray | None, scale_cols: np.ndarray | None, cos_norm: bool) -> Any:
    """Float64 copy of the columns ``cols`` of ``matrix`` (dense, CSR or CSC), each row divided by its l2 norm.

    The norm of a row is taken over ``scale_cols`` (the subset genes; ``None``: all genes) and floored
    at 1e-8 (batchelor's ``cosineNorm``). Sparse stays sparse (a copy of the selected entries).
    Memory: the copy (dense: cells x chosen genes x 8 bytes; sparse: 12 bytes per stored entry), plus
    a temporary copy of the ``scale_cols`` columns when they differ from ``cols``.
    """
    sparse = sp.issparse(matrix)
    sub = matrix if cols is None else matrix[:, cols]
    sub = sub.astype(np.float64, copy=True) if sparse else np.array(sub, dtype=np.float64, copy=True, order="C")
    if not cos_norm:
        return sub
    same = (scale_cols is None and cols is None) or (
        scale_cols is not None and cols is not None and np.array_equal(scale_cols, cols)
    )
    scale = cosine_scale(row_norms(sub if same else (matrix if scale_cols is None else matrix[:, scale_cols])))
    if not sparse:
        sub /= scale[:, None]
    elif sub.format == "csr":
        sub.data /= np.repeat(scale, np.diff(sub.indptr))
    else:
        sub.data /= scale[sub.indices]
    return sub


def row_norms(x: Any) -> np.ndarray:
    """l2 norm of each row (float64), dense or sparse, without densifying."""
    if sp.issparse(x):
        x = x.astype(np.float64)
        return np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = np.asarray(x, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def batch_means(x: Any, members: list[np.ndarray]) -> np.ndarray:
    """``(n_batches, genes)`` column means of each batch's rows (dense or sparse ``x``, never densified)."""
    n = x.shape[0]
    codes = batch_codes(members, n)
    indicator = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(members), n))
    sums = indicator @ x
    sums = sums.toarray() if sp.issparse(sums) else np.asarray(sums)
    return sums / np.array([m.size for m in members], dtype=np.float64)[:, None]


def multi_batch_pca(
    x: Any, members: list[np.ndarray], d: int, *, solver: str, rng: int, batch_weights: np.ndarray | None = None
) -> PcaResult:
    """Multi-batch PCA of cosine-normalised data ``x`` (float64 dense, CSR or CSC; cells x PCA genes).

    Parameters
    ----------
    x
        The (already cosine-normalised) matrix; not modified.
    members
        Rows of each batch.
    d
        Number of components.
    solver
        ``"exact"`` (dense LAPACK SVD: O(cells x genes) memory) or ``"randomized"``.
    rng
        Seed of the randomized SVD.
    batch_weights
        Weight of each batch in the centre and the SVD (batchelor's ``weights``); ``None``: equal.

    Returns
    -------
    :class:`PcaResult`; the rotation has the sign convention of :func:`mnnkit.linalg.svd_sign_flip`.

    Notes
    -----
    Memory (randomized): the scores and ``U`` (cells x d each) plus the SVD's ``O((cells + genes) d)``.
    """
    center = grand_center(batch_means(x, members), batch_weights)
    weights = row_weights(members, x.shape[0], batch_weights)
    U, S, Vt = randomized_svd(x, d, center=center, row_weights=weights, method=solver, rng=rng, **svd_options(d))
    rotation = np.ascontiguousarray(Vt.T)
    scores = np.empty((x.shape[0], d))
    CenteredScaledMatrix(x, center=center).matmat_blocks(rotation, scores)
    return PcaResult(scores, rotation, center, S, U, weights, batch_weights)


def extend_rotation(x_other: Any, members: list[np.ndarray], pca: PcaResult) -> tuple[np.ndarray, np.ndarray]:
    """Rotation rows and centre of genes left out of the PCA (batchelor's ``correct.all=TRUE``).

    ``x_other`` (cosine-normalised with the subset's norms) is centred on its own mean of batch
    means and scaled per batch like the PCA input; its rotation rows are ``Z_other^T U / S``. The PCs
    do not change. Memory: ``O(other genes x d)`` plus ``x_other`` itself.
    """
    center = grand_center(batch_means(x_other, members), pca.batch_weights)
    op = CenteredScaledMatrix(x_other, center=center, row_weights=pca.row_weights)
    tiny = np.finfo(np.float64).eps * max(x_other.shape) * (pca.singular_values[0] if pca.singular_values.size else 0)
    safe = np.where(pca.singular_values > tiny, pca.singular_values, np.inf)
    return op.rmatmat(pca.left_vectors) / safe, center
