"""Removal of the biological subspace from correction vectors (batchelor's ``svd.dim``).

The main axes of variation among the MNN cells of each side are taken as biology, not batch;
projecting them out of the correction keeps the correction from distorting that biology.
Memory: an exact SVD of the distinct MNN cells of one side (``n_mnn x genes``).
"""

from __future__ import annotations

import numpy as np


def biological_basis(cells: np.ndarray, svd_dim: int, subset_cols: np.ndarray | None = None) -> np.ndarray:
    """Gene-space basis of the top ``svd_dim`` axes of variation among ``cells``.

    Parameters
    ----------
    cells
        ``(n_cells, genes)`` data of the distinct MNN cells of one side.
    svd_dim
        Number of axes.
    subset_cols
        If given, the SVD uses only these columns; the basis rows of the other genes are
        extrapolated as ``M_other^T P diag(1/S)`` from the centred data ``M``.

    Returns
    -------
    ``(genes, svd_dim)`` basis (orthonormal on the SVD columns).
    """
    centred = cells - cells.mean(axis=0)
    if subset_cols is None:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return vt[:svd_dim].T.copy()
    u, s, vt = np.linalg.svd(centred[:, subset_cols], full_matrices=False)
    basis = centred.T @ (u[:, :svd_dim] / s[:svd_dim])
    basis[subset_cols] = vt[:svd_dim].T
    return basis


def remove_subspace(correction: np.ndarray, basis: np.ndarray, subset_cols: np.ndarray | None = None) -> None:
    """In place: ``c <- c - (c B) B^T`` (coefficients from ``subset_cols`` only, when given)."""
    coef = correction @ basis if subset_cols is None else correction[:, subset_cols] @ basis[subset_cols]
    correction -= coef @ basis.T
