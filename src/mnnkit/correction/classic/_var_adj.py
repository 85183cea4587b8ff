"""Variance adjustment of correction vectors (batchelor's ``var.adj``).

Each right cell's correction is lengthened (never shortened) so that the cell lands at the same
weighted quantile of the left data along its correction direction as it had in its own batch.
The cost is ``O(n_right x (n_left + n_right) x genes)`` for the projections and distances, done as
BLAS products in row chunks; the weighted quantiles run in a parallel numba kernel.
Memory: the two product blocks of a chunk of ``b`` right cells, ``2b x n_left`` and ``2b x n_right``, together
``2 * mnnkit._config.CHUNK_BYTES`` (128 MiB by default; BLAS needs a few hundred rows to run near its peak).

With ``approximate=True`` the two populations whose quantiles are matched can be replaced by seeded uniform
samples of ``sample`` cells each (cost ``O(n_right x 2 sample x genes)``), and the products run in
float32. Both are approximations of the exact procedure; their error is measured against exact mode.
"""

from __future__ import annotations

import numpy as np

from mnnkit._config import rows_per_chunk
from mnnkit.correction.classic._gram import StepGram
from mnnkit.correction.classic._kernels import variance_scales
from mnnkit.correction.classic._smoothing import row_sq_norms


def variance_adjustment_scales(
    left: np.ndarray,
    right: np.ndarray,
    correction: np.ndarray,
    sigma: float,
    *,
    dtype: type = np.float64,
    sample: int | None = None,
    seed: int = 0,
    gram: StepGram | None = None,
    restricted: tuple[np.ndarray, np.ndarray] | None = None,
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
    dtype
        Precision of the projections and distances: float64 (exact mode) or float32 (``approximate=True``:
        BLAS runs about twice as fast; positions and squared distances carry relative errors near 1e-7).
    sample
        If set and smaller than a side, that side's quantile is taken over a seeded uniform sample of
        ``sample`` of its cells instead of all of them (each cell is still adjusted).
    seed
        Seed of the samples.
    gram
        The step's dot products of right cells with all cells, if kept (:mod:`mnnkit.correction.classic._gram`; used in
        exact mode, when ``left`` and ``right`` are the data they were computed from): then only the
        projections on the correction directions are computed here, half the BLAS work.
    restricted
        batchelor's ``restrict``: positions of the restricted cells of each side (left, right). The
        left quantile is then taken over the restricted left cells and the own-batch quantile over the
        restricted right cells (a right cell counts itself only if it is restricted), with batchelor's
        quirk for an unrestricted cell below every restricted one (see the kernel). Not combined with
        ``sample``.

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
    if restricted is not None:
        left_rows, right_rows = (np.asarray(r, dtype=np.int64) for r in restricted)
    else:
        rng = np.random.default_rng(seed)
        left_rows = _population(left.shape[0], sample, rng)
        right_rows = _population(n_right, sample, rng)
    left_pop = np.asarray(left if left_rows is None else left[left_rows], dtype=dtype)
    right_pop = np.asarray(right if right_rows is None else right[right_rows], dtype=dtype)
    # column of each right cell in the right population, -1 where a sample left it out
    slot = np.arange(n_right) if right_rows is None else np.full(n_right, -1)
    if right_rows is not None:
        slot[right_rows] = np.arange(right_rows.size)
    if restricted is not None:
        own_log_weight = -np.inf  # an unrestricted cell is not part of its own batch's quantile
    else:
        own_log_weight = 0.0 if right_rows is None else float(np.log(right_rows.size / n_right))

    use_gram = gram is not None and left_rows is None and right_rows is None and dtype == np.float64
    left_sq = row_sq_norms(left_pop)
    right_pop_sq = row_sq_norms(right_pop)
    chunk = rows_per_chunk(left_pop.shape[0] + right_pop.shape[0])  # two rows per cell in each product
    every_cell = moving.size == n_right  # then chunks are row ranges: views, not copies
    for start in range(0, moving.size, chunk):
        cells = moving[start : start + chunk]
        b = cells.size
        rows = slice(start, start + b) if every_cell else cells
        own = np.asarray(right[rows], dtype=dtype)
        own_sq = row_sq_norms(own)
        directions = correction[rows] / norms[rows, None]
        if use_gram:
            left_proj, right_proj = directions @ left_pop.T, directions @ right_pop.T
            left_dot, right_dot = gram.right_left[rows], gram.right_right[rows]
        else:  # one product per side: rows are the directions, then the cells themselves
            query = np.empty((2 * b, right.shape[1]), dtype=dtype)
            query[:b] = directions
            query[b:] = own
            left_prod = query @ left_pop.T
            if restricted is None:
                right_prod = query @ right_pop.T
            else:
                # every right cell's position from one product (then the population's columns): a cell
                # and its duplicates in the batch get the same position, so their ties compare as in R
                every_right = query[:b] @ right.T
                own_all_pos = every_right[np.arange(b), cells]
                right_prod = np.concatenate([every_right[:, right_rows], query[b:] @ right_pop.T])
            left_proj, left_dot, right_proj, right_dot = left_prod[:b], left_prod[b:], right_prod[:b], right_prod[b:]
        own_slot = slot[cells]
        if right_rows is None:
            own_pos = right_proj[np.arange(b), own_slot]
        elif restricted is not None:
            own_pos = own_all_pos
        else:
            own_pos = np.einsum("ij,ij->i", query[:b], own)
        out = np.empty(b)
        variance_scales(
            left_proj, left_dot, left_sq, right_proj, right_dot, right_pop_sq, own_sq, own_slot, own_pos,
            own_log_weight, restricted is not None, norms[cells], sigma, out,
        )  # fmt: skip
        scales[cells] = out
    return scales


def _population(n: int, sample: int | None, rng: np.random.Generator) -> np.ndarray | None:
    """Sorted rows of a uniform sample of ``sample`` of ``n`` cells, or None for all of them."""
    if sample is None or sample >= n:
        return None
    return np.sort(rng.choice(n, size=sample, replace=False))
