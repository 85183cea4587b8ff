"""Pair-specific correction vectors and their Gaussian-kernel smoothing onto every right cell.

Memory: every function here works in row chunks, so its temporaries are bounded by
``mnnkit._config.CHUNK_BYTES`` (a chunk of right cells times the number of distinct MNN cells),
never by ``n_right x n_mnn`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from mnnkit._config import rows_per_chunk
from mnnkit.correction.classic._kernels import kernel_logits, row_logsumexp, softmax_rows_inplace, weighted_gather
from mnnkit.neighbors import knn


def squared_distances(rows: np.ndarray, rows_sq: np.ndarray, cols: np.ndarray, cols_sq: np.ndarray) -> np.ndarray:
    """``|rows_i - cols_j|^2`` by the BLAS expansion (may be a few ulp below 0; callers clamp)."""
    return expand_squared_distances(rows @ cols.T, rows_sq, cols_sq)


def expand_squared_distances(dots: np.ndarray, rows_sq: np.ndarray, cols_sq: np.ndarray) -> np.ndarray:
    """``|r_i|^2 - 2 dots_ij + |c_j|^2``, in place in ``dots`` (which it returns)."""
    dots *= -2.0
    dots += rows_sq[:, None]
    dots += cols_sq[None, :]
    return dots


def row_sq_norms(mat: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of each row."""
    return np.einsum("ij,ij->i", mat, mat)


def gene_space_averages(left: np.ndarray, right: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average correction vector of each distinct right MNN cell, for wide (gene-space) data.

    One sparse (cells x pairs) by dense product: BLAS does the work, which pays with thousands of
    genes and reproduces batchelor's ``mnnCorrect`` averages. The fast method's
    ``pc_space_averages`` computes the same quantity for a few dozen PCs with a numba kernel.

    Parameters
    ----------
    left, right
        Dense ``(n_left, genes)`` and ``(n_right, genes)`` data of the two sides.
    pairs
        ``(n_pairs, 2)`` MNN pairs as (left row, right row).

    Returns
    -------
    mnn_cells
        Sorted distinct right rows that appear in a pair.
    averages
        ``(len(mnn_cells), genes)``: the mean over each cell's pairs of ``left[l] - right[r]``.
        Memory ``O(len(mnn_cells) x genes)``; the per-pair vectors are never stored.
    """
    mnn_cells, slot = np.unique(pairs[:, 1], return_inverse=True)
    counts = np.bincount(slot, minlength=mnn_cells.size).astype(np.float64)
    sums = sp.csr_matrix((np.ones(pairs.shape[0]), (slot, pairs[:, 0])), shape=(mnn_cells.size, left.shape[0]))
    averages = np.asarray(sums @ left)
    averages /= counts[:, None]
    averages -= right[mnn_cells]
    return mnn_cells, averages


@dataclass(frozen=True)
class SmoothingStats:
    """What the kernel smoothing did, for ``.uns`` diagnostics.

    Attributes
    ----------
    max_truncated_mass
        Largest (over cells) upper bound on the kernel weight left out by truncation; 0 in exact mode.
    """

    max_truncated_mass: float


def smooth_corrections(
    right: np.ndarray,
    mnn_cells: np.ndarray,
    averages: list[np.ndarray],
    sigma: float,
    *,
    truncate: int | None = None,
    neighbors: str = "exact",
    rng: int = 0,
    right_gram: np.ndarray | None = None,
) -> tuple[list[np.ndarray], SmoothingStats]:
    """Gaussian-kernel smoothed correction of every right cell (batchelor's ``mnnCorrect``).

    For right cell ``j`` and MNN cell ``u``, ``K(u, j) = exp(-|R_u - R_j|^2 / sigma)`` on the
    uncorrected right data, the MNN density ``D_u = sum_u' K(u, u')``, the weight
    ``w_uj = K(u, j) / D_u``, and ``c_j = sum_u w_uj a_u / sum_u w_uj``: a softmax over
    ``u`` of ``-d^2/sigma - log D_u``, computed in log space so it never underflows to 0/0.

    Parameters
    ----------
    right
        ``(n_right, genes)`` uncorrected in-space data of the right side.
    mnn_cells
        Rows of ``right`` that are MNN cells (sorted, distinct).
    averages
        One or more ``(len(mnn_cells), genes_x)`` averaged vectors (in-space, and out-space when it
        differs); each gets the same weights.
    sigma
        Divisor of the squared distance in the kernel.
    truncate
        ``None`` (exact): every MNN cell contributes. An integer ``m``: only each cell's ``m`` nearest
        MNN cells contribute (found by ``neighbors``), in the density too; the dropped share of kernel
        weight is bounded and reported (see :func:`truncated_smoothing`).
    right_gram
        ``right @ right.T`` if computed already (:mod:`mnnkit.correction.classic._gram`); its entries then replace the
        BLAS products of the distances.

    Returns
    -------
    One ``(n_right, genes_x)`` correction per entry of ``averages``, and the smoothing statistics.
    Memory: the outputs plus one chunk of ``rows x len(mnn_cells)`` float64.
    """
    if truncate is not None and truncate < mnn_cells.size:
        return truncated_smoothing(right, mnn_cells, averages, sigma, truncate, neighbors=neighbors, rng=rng)
    mnn_data = np.ascontiguousarray(right[mnn_cells])
    mnn_sq = row_sq_norms(mnn_data)
    n_mnn = mnn_cells.size
    chunk = rows_per_chunk(n_mnn)

    log_density = np.empty(n_mnn)
    zero = np.zeros(n_mnn)
    for start in range(0, n_mnn, chunk):
        stop = min(start + chunk, n_mnn)
        if right_gram is None:
            logits = squared_distances(mnn_data[start:stop], mnn_sq[start:stop], mnn_data, mnn_sq)
        else:
            dots = right_gram[np.ix_(mnn_cells[start:stop], mnn_cells)]
            logits = expand_squared_distances(dots, mnn_sq[start:stop], mnn_sq)
        kernel_logits(logits, zero, sigma)
        row_logsumexp(logits, log_density[start:stop])

    right_sq = row_sq_norms(right)
    outputs = [np.empty((right.shape[0], avg.shape[1])) for avg in averages]
    for start in range(0, right.shape[0], chunk):
        stop = min(start + chunk, right.shape[0])
        if right_gram is None:
            logits = squared_distances(right[start:stop], right_sq[start:stop], mnn_data, mnn_sq)
        else:
            logits = expand_squared_distances(right_gram[start:stop, mnn_cells], right_sq[start:stop], mnn_sq)
        kernel_logits(logits, log_density, sigma)
        softmax_rows_inplace(logits)
        for out, avg in zip(outputs, averages, strict=True):
            np.matmul(logits, avg, out=out[start:stop])
    return outputs, SmoothingStats(max_truncated_mass=0.0)


def truncated_smoothing(
    right: np.ndarray,
    mnn_cells: np.ndarray,
    averages: list[np.ndarray],
    sigma: float,
    keep: int,
    *,
    neighbors: str = "exact",
    rng: int = 0,
) -> tuple[list[np.ndarray], SmoothingStats]:
    """The kernel smoothing restricted to each cell's ``keep`` nearest MNN cells (opt-in ``kernel_neighbors``).

    Both the MNN densities ``D_u`` and the per-cell weights use only the ``keep`` nearest MNN cells.
    Error bound: every dropped MNN cell ``u`` of cell ``j`` is at least as far as the ``keep``-th
    nearest one, so its weight ``K(u, j) / D_u <= exp(-d_keep^2 / sigma)`` (``D_u >= K(u, u) = 1``).
    The dropped share of the total weight of cell ``j`` is therefore at most ``r / (1 + r)`` with
    ``r = (n_mnn - keep) exp(-d_keep^2 / sigma) / sum_kept w``; the largest such bound over cells is
    reported, and the change of the correction is at most that share times ``2 max_u |a_u|``.

    Cost ``O(n_right x keep x genes)`` plus the neighbour searches; memory ``O(n_right x keep)``.
    """
    mnn_data = np.ascontiguousarray(right[mnn_cells])
    n_mnn = mnn_cells.size
    near_mnn = knn(mnn_data, mnn_data, keep, method=neighbors, rng=rng)
    log_density = np.empty(n_mnn)
    logits = -(near_mnn.distances**2) / sigma
    row_logsumexp(logits, log_density)

    near = knn(right, mnn_data, keep, method=neighbors, rng=rng)
    sq = near.distances**2
    logits = -sq / sigma - log_density[near.indices]
    log_kept = np.empty(right.shape[0])
    row_logsumexp(logits, log_kept)
    log_ratio = np.log(n_mnn - keep) - sq[:, -1] / sigma - log_kept
    worst = float(np.max(1.0 / (1.0 + np.exp(-log_ratio)))) if right.shape[0] else 0.0
    softmax_rows_inplace(logits)
    index = np.ascontiguousarray(near.indices, dtype=np.int64)
    outputs = []
    for avg in averages:
        out = np.empty((right.shape[0], avg.shape[1]))
        weighted_gather(logits, index, np.ascontiguousarray(avg), out)
        outputs.append(out)
    return outputs, SmoothingStats(max_truncated_mass=worst)
