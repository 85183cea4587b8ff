"""kBET-style batch mixing test: per-cell chi-square test of the batch composition of its neighbourhood."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import chdtrc

from mnnkit.metrics._inputs import NeighborsInput, as_labels, n_cells_of, resolve_neighbors
from mnnkit.neighbors import KNeighborsLike

__all__ = ["kbet_acceptance", "kbet_pvalues"]


def kbet_pvalues(
    X: NeighborsInput,
    batch: Any,
    *,
    n_neighbors: int = 50,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: int | np.random.Generator = 0,
) -> np.ndarray:
    """Per-cell p-value of Pearson's chi-square test of the batch counts among its ``n_neighbors`` neighbours.

    Observed: how many of the cell's neighbours come from each batch. Expected: ``n_neighbors`` times each
    batch's share of all cells. Statistic ``sum (obs - exp)^2 / exp`` against a chi-square law with
    ``n_batches - 1`` degrees of freedom (Büttner et al. 2019).

    Parameters
    ----------
    X
        Embedding, :class:`~mnnkit.neighbors.NeighborResult` (self excluded; first ``n_neighbors``
        columns) or square sparse kNN distance graph; see :func:`graph_connectivity`.
    batch
        Batch of each cell; at least two batches.
    n_neighbors
        Neighbourhood size ``k`` (the cell itself is not counted).
    neighbors_method, rng
        Neighbour search for an embedding; see :func:`mnnkit.neighbors.knn`.

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` p-values. Memory ``O(n_cells * (n_neighbors + n_batches))``.
    """
    n_obs = n_cells_of(X)
    codes, names = as_labels(batch, n_obs, "batch")
    if names.size < 2:
        msg = "kbet needs at least 2 batches in batch."
        raise ValueError(msg)
    nn = resolve_neighbors(X, n_neighbors, neighbors_method=neighbors_method, rng=rng)
    n_batches = names.size
    flat = np.repeat(np.arange(n_obs, dtype=np.int64) * n_batches, nn.n_neighbors) + codes[nn.indices.ravel()]
    observed = np.bincount(flat, minlength=n_obs * n_batches).reshape(n_obs, n_batches).astype(np.float64)
    expected = nn.n_neighbors * np.bincount(codes, minlength=n_batches) / n_obs
    statistic = np.sum((observed - expected) ** 2 / expected, axis=1)
    return chdtrc(n_batches - 1, statistic)


def kbet_acceptance(
    X: NeighborsInput,
    batch: Any,
    *,
    n_neighbors: int = 50,
    alpha: float = 0.05,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: int | np.random.Generator = 0,
) -> float:
    """kBET-style acceptance rate: the fraction of cells whose neighbourhood batch mix passes the test.

    A cell is accepted when :func:`kbet_pvalues` gives ``p >= alpha``. Well-mixed batches give about
    ``1 - alpha`` (the test's false-rejection rate), fully separated batches about 0; higher = better mixed.

    This is a simplification of kBET (Büttner et al. 2019), not the R package: every cell is tested (no
    random subsample), the neighbourhood size is fixed (no heuristic from batch sizes), the cell itself is
    not part of its neighbourhood, and the result is the acceptance rate ``1 - rejection rate`` over all
    cells (not per label as in scIB). Parameters as in :func:`kbet_pvalues`, plus ``alpha``, the test level
    in ``(0, 1)``.

    Parameters
    ----------
    X, batch, n_neighbors, neighbors_method, rng
        See :func:`kbet_pvalues`.
    alpha
        Test level.

    Returns
    -------
    float
        Acceptance rate in ``[0, 1]``.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.floating) or not 0 < alpha < 1:
        msg = f"alpha must be a number in (0, 1), got {alpha!r}."
        raise ValueError(msg)
    pvalues = kbet_pvalues(X, batch, n_neighbors=n_neighbors, neighbors_method=neighbors_method, rng=rng)
    return float(np.mean(pvalues >= alpha))
