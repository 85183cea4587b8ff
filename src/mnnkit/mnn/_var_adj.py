"""Variance adjustment of correction vectors (batchelor's ``var.adj``).

Each right cell's correction is lengthened (never shortened) so that the cell lands at the same
weighted quantile of the left data along its correction direction as it had in its own batch.
The cost is ``O(n_right x (n_left + n_right) x genes)`` for the projections and distances, done as
BLAS products in row chunks; the weighted quantiles run in a parallel numba kernel.
Memory: four ``chunk x n_cells`` float64 blocks (bounded by ``mnnkit._config.CHUNK_BYTES``).
"""

from __future__ import annotations

import numpy as np

from mnnkit._config import rows_per_chunk
from mnnkit.mnn._kernels import variance_scales
from mnnkit.mnn._smoothing import row_sq_norms


def variance_adjustment_scales(
    left: np.ndarray,
    right: np.ndarray,
    correction: np.ndarray,
    sigma: float,
) -> np.ndarray:
    """Scale factor ``>= 1`` for each right cell's correction vector.

    Parameters
    ----------
    left, right
        Dense ``(n_left, genes)`` and uncorrected ``(n_right, genes)`` data (in the space the
        correction lives in, restricted to the genes used for distances).
    correction
        ``(n_right, genes)`` correction vectors.
    sigma
        The kernel's divisor of squared distances, ``exp(-delta^2 / sigma)``.

    Returns
    -------
    ``(n_right,)`` scales. A cell whose correction is exactly zero keeps scale 1 (batchelor would
    produce 0/0 there).
    """
    n_right = right.shape[0]
    norms = np.sqrt(row_sq_norms(correction))
    scales = np.ones(n_right)
    moving = np.flatnonzero(norms > 0)
    if moving.size == 0:
        return scales
    left_sq = row_sq_norms(left)
    right_sq = row_sq_norms(right)
    chunk = rows_per_chunk(left.shape[0] + right.shape[0], n_blocks=4)
    for start in range(0, moving.size, chunk):
        cells = moving[start : start + chunk]
        b = cells.size
        query = np.empty((2 * b, right.shape[1]))
        np.divide(correction[cells], norms[cells, None], out=query[:b])
        query[b:] = right[cells]
        left_prod = query @ left.T
        right_prod = query @ right.T
        left_pos, left_d2 = left_prod[:b], left_prod[b:]
        right_pos, right_d2 = right_prod[:b], right_prod[b:]
        left_d2 *= -2.0
        left_d2 += right_sq[cells, None]
        left_d2 += left_sq[None, :]
        right_d2 *= -2.0
        right_d2 += right_sq[cells, None]
        right_d2 += right_sq[None, :]
        out = np.empty(b)
        variance_scales(left_pos, left_d2, right_pos, right_d2, cells, norms[cells], sigma, out)
        scales[cells] = out
    return scales
