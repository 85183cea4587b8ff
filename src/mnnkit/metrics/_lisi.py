"""Local inverse Simpson's index (LISI, Korsunsky et al. 2019) and its iLISI/cLISI summaries."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy import sparse

from mnnkit._random import RngLike
from mnnkit._warnings import ParameterWarning
from mnnkit.metrics import _kernels
from mnnkit.metrics._inputs import NeighborsInput, as_labels, n_cells_of, resolve_neighbors
from mnnkit.neighbors import KNeighborsLike, NeighborResult

__all__ = ["clisi", "ilisi", "lisi"]

logger = logging.getLogger("mnnkit")

#: Bisection settings of harmonypy's ``compute_lisi`` (and the R ``lisi`` package).
_TOL = 1e-5
_MAX_ITER = 50


def _check_perplexity(perplexity: float) -> float:
    if isinstance(perplexity, bool) or not isinstance(perplexity, int | float | np.integer | np.floating):
        msg = f"perplexity must be a number, got {type(perplexity).__name__}."
        raise TypeError(msg)
    if not np.isfinite(perplexity) or perplexity < 1:
        msg = f"perplexity must be finite and >= 1, got {perplexity}."
        raise ValueError(msg)
    return float(perplexity)


def lisi(
    X: NeighborsInput,
    labels: Any,
    *,
    perplexity: float = 30,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> np.ndarray:
    """Per-cell local inverse Simpson's index of ``labels`` (Korsunsky et al. 2019).

    Each cell's ``k = int(3 * perplexity)`` nearest other cells (Euclidean) are weighted with a Gaussian
    kernel ``exp(-beta * d)`` on the distances ``d``, ``beta`` set by bisection so the weights have the
    given perplexity (tolerance ``1e-5`` on the entropy, at most 50 steps); the LISI is ``1 / sum_c p_c^2``
    for the weight ``p_c`` of each label. It is the effective number of labels around a cell: 1 when all
    neighbours share one label, up to the number of labels when they are evenly mixed. This is the
    computation of harmonypy's ``compute_lisi`` (agreement within ``1e-6`` on the same input is tested).

    Parameters
    ----------
    X
        Embedding (dense ``(n_cells, n_dims)`` array, any real dtype), or a :class:`~mnnkit.neighbors.
        NeighborResult` over the same cells computed with ``exclude_self=True`` with at least
        ``int(3 * perplexity)`` Euclidean neighbours per cell (the first that many are used), or a square
        sparse kNN distance graph (``adata.obsp["distances"]``).
    labels
        One label per cell (array-like, pandas Series or Categorical; no missing values).
    perplexity
        Effective neighbourhood size, ``>= 1`` (harmonypy and scIB use 30).
    neighbors_method
        How neighbours of an embedding are found: ``"exact"`` (default, what harmonypy does),
        ``"pynndescent"`` or a fitted estimator; see :func:`mnnkit.neighbors.knn`.
    rng
        Randomness of ``neighbors_method="pynndescent"``: an int seed >= 0 (same seed, same result), a
        :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from the
        operating system: a different result on every call).

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` float64 LISI values. A cell whose kernel weights all underflow (distances beyond
        ~1e17) gets 0, as in harmonypy.

    Notes
    -----
    When an embedding has fewer than ``int(3 * perplexity) + 1`` cells, all other cells are used and a
    :class:`~mnnkit._warnings.ParameterWarning` is emitted (harmonypy does the same, silently).
    Memory: the neighbour search (see :func:`~mnnkit.neighbors.knn`) and ``16 * n_cells * k`` bytes.
    Which neighbour is kept among cells tied at exactly the ``k``-th distance is the lower index here and
    traversal-dependent in harmonypy's kd-tree, so results can differ there (only with duplicated cells).
    """
    perplexity = _check_perplexity(perplexity)
    n_obs = n_cells_of(X)
    codes, categories = as_labels(labels, n_obs, "labels")
    k = int(perplexity * 3)
    if not isinstance(X, NeighborResult) and not sparse.issparse(X) and k > n_obs - 1:
        if n_obs < 2:
            msg = f"lisi needs at least 2 cells, got {n_obs}."
            raise ValueError(msg)
        warnings.warn(
            f"lisi: perplexity={perplexity} asks for {k} neighbours but there are only {n_obs} cells; using "
            f"all {n_obs - 1} other cells.",
            ParameterWarning,
            stacklevel=2,
        )
        k = n_obs - 1
    nn = resolve_neighbors(X, k, neighbors_method=neighbors_method, rng=rng)
    logger.debug("lisi: %d cells, %d labels, %d neighbours, perplexity %g", n_obs, categories.size, k, perplexity)
    simpson = np.empty(n_obs, dtype=np.float64)
    _kernels.simpson_index(nn.distances, nn.indices, codes, int(categories.size), perplexity, _TOL, _MAX_ITER, simpson)
    out = np.zeros(n_obs, dtype=np.float64)
    valid = simpson > 0
    out[valid] = 1.0 / simpson[valid]
    return out


def _median_lisi(X: NeighborsInput, values: Any, name: str, too_few: str, **lisi_kwargs: Any) -> tuple[float, int]:
    """The median per-cell :func:`lisi` of ``values`` (parameter ``name``) and their number of labels.

    A ValueError saying ``too_few`` when there are fewer than 2 labels.
    """
    n_labels = as_labels(values, n_cells_of(X), name)[1].size
    if n_labels < 2:
        raise ValueError(too_few)
    median = float(np.median(lisi(X, values, **lisi_kwargs)))
    return median, n_labels


def ilisi(
    X: NeighborsInput,
    batch: Any,
    *,
    perplexity: float = 30,
    scale: bool = True,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> float:
    """Integration LISI: median per-cell :func:`lisi` of the batch labels (higher = better mixed).

    Parameters
    ----------
    X, perplexity, neighbors_method, rng
        As in :func:`lisi`.
    batch
        Batch of each cell; at least two batches.
    scale
        ``False``: the raw median, between 1 and ``n_batches``. ``True`` (default): the scIB form
        ``(median - 1) / (n_batches - 1)``, between 0 (no mixing) and 1 (perfect mixing).

    Returns
    -------
    float
        The (scaled) median iLISI.
    """
    too_few = "ilisi needs at least 2 batches in batch."
    median, n_batches = _median_lisi(
        X, batch, "batch", too_few, perplexity=perplexity, neighbors_method=neighbors_method, rng=rng
    )
    return (median - 1.0) / (n_batches - 1) if scale else median


def clisi(
    X: NeighborsInput,
    labels: Any,
    *,
    perplexity: float = 30,
    scale: bool = True,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
) -> float:
    """Cell-type LISI: median per-cell :func:`lisi` of the cell labels.

    Parameters
    ----------
    X, perplexity, neighbors_method, rng
        As in :func:`lisi`.
    labels
        Cell type (or cluster) of each cell; at least two labels.
    scale
        ``False``: the raw median, between 1 (pure neighbourhoods, best) and ``n_labels``. ``True``
        (default): the scIB form ``(n_labels - median) / (n_labels - 1)``, between 0 and 1, higher = labels
        better kept apart.

    Returns
    -------
    float
        The (scaled) median cLISI.
    """
    too_few = "clisi needs at least 2 distinct labels."
    median, n_labels = _median_lisi(
        X, labels, "labels", too_few, perplexity=perplexity, neighbors_method=neighbors_method, rng=rng
    )
    return (n_labels - median) / (n_labels - 1) if scale else median
