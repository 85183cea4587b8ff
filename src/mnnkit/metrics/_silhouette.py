"""Silhouette widths: per cell, on labels (scIB ``silhouette_label``) and batch-ASW (scIB ``silhouette_batch``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mnnkit._config import CHUNK_BYTES
from mnnkit.metrics._inputs import as_embedding, as_labels

__all__ = ["silhouette_batch", "silhouette_label", "silhouette_samples"]

logger = logging.getLogger("mnnkit")


def _silhouette(x: np.ndarray, codes: np.ndarray, n_labels: int, chunk_bytes: int) -> np.ndarray:
    n_obs = x.shape[0]
    order = np.argsort(codes, kind="stable")
    position = np.empty(n_obs, dtype=np.int64)
    position[order] = np.arange(n_obs)
    grouped = x[order]
    counts = np.bincount(codes, minlength=n_labels)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sqnorm = np.einsum("ij,ij->i", x, x)
    grouped_sqnorm = sqnorm[order]
    step = max(1, chunk_bytes // (8 * n_obs))
    block = np.empty((min(step, n_obs), n_obs), dtype=np.float64)
    intra = np.empty(n_obs, dtype=np.float64)
    inter = np.empty(n_obs, dtype=np.float64)
    for start in range(0, n_obs, step):
        stop = min(start + step, n_obs)
        rows = np.arange(stop - start)
        dist = block[: stop - start]
        np.matmul(x[start:stop], grouped.T, out=dist)
        dist *= -2.0
        dist += sqnorm[start:stop, None]
        dist += grouped_sqnorm[None, :]
        np.maximum(dist, 0.0, out=dist)
        np.sqrt(dist, out=dist)
        dist[rows, position[start:stop]] = 0.0
        sums = np.add.reduceat(dist, starts, axis=1)
        own = codes[start:stop]
        intra[start:stop] = sums[rows, own]
        sums[rows, own] = np.inf
        sums /= counts
        inter[start:stop] = sums.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        intra /= counts[codes] - 1
        width = (inter - intra) / np.maximum(intra, inter)
    return np.nan_to_num(width, nan=0.0)


def silhouette_samples(X: Any, labels: Any) -> np.ndarray:
    """Silhouette width of every cell (Rousseeuw 1987), Euclidean; equals scikit-learn's ``silhouette_samples``.

    For cell ``i`` with mean distance ``a`` to the other cells of its label and smallest mean distance
    ``b`` to the cells of another label, ``s = (b - a) / max(a, b)``; 0 for a label with one cell.

    Parameters
    ----------
    X
        Embedding, dense ``(n_cells, n_dims)`` real array.
    labels
        One label per cell; between 2 and ``n_cells - 1`` distinct labels (as scikit-learn requires).

    Returns
    -------
    numpy.ndarray
        ``(n_cells,)`` float64 widths in ``[-1, 1]``.

    Notes
    -----
    Time ``O(n_cells^2 * n_dims)``. Memory: a label-sorted float64 copy of ``X`` and a block of
    distances of at most ``CHUNK_BYTES`` of :mod:`mnnkit._config` (64 MiB): rows of all-pairs distances
    are formed a chunk at a time and reduced to per-label sums at once; the ``n_cells x n_cells`` matrix
    is never held.
    """
    x = as_embedding(X)
    codes, categories = as_labels(labels, x.shape[0], "labels")
    if not 2 <= categories.size <= x.shape[0] - 1:
        msg = f"silhouette needs between 2 and n_cells - 1 = {x.shape[0] - 1} distinct labels, got {categories.size}."
        raise ValueError(msg)
    return _silhouette(x, codes, int(categories.size), CHUNK_BYTES)


def silhouette_label(X: Any, labels: Any, *, rescale: bool = True) -> float:
    """Label average silhouette width, the scIB ``silhouette_label`` (cell-type separation, higher = better).

    Parameters
    ----------
    X
        Embedding, dense ``(n_cells, n_dims)`` real array.
    labels
        Cell type of each cell.
    rescale
        Return ``(ASW + 1) / 2`` in ``[0, 1]`` (scIB) instead of the mean silhouette ``ASW`` in ``[-1, 1]``.

    Returns
    -------
    float
        The (rescaled) mean of :func:`silhouette_samples`. Time and memory as there.
    """
    asw = float(np.mean(silhouette_samples(X, labels)))
    return (asw + 1.0) / 2.0 if rescale else asw


def silhouette_batch(X: Any, labels: Any, batch: Any, *, rescale: bool = True) -> float:
    """Batch average silhouette width within labels, the scIB ``silhouette_batch`` (batch mixing).

    For each label, the silhouette of the batches among that label's cells is computed; each cell scores
    ``1 - |s|`` (``rescale=True``, 1 = batches indistinguishable) or ``|s|``; the score is the mean over
    labels of the per-label mean (each label counts once, whatever its size). Labels present in a single
    batch, or with as many batches as cells, are skipped, as in scIB.

    Parameters
    ----------
    X
        Embedding, dense ``(n_cells, n_dims)`` real array.
    labels
        Cell type of each cell (note the order: labels, then batch, as in scIB).
    batch
        Batch of each cell.
    rescale
        Score ``1 - |s|`` (higher = better mixed) instead of ``|s|``.

    Returns
    -------
    float
        The batch ASW; NaN (with a log message) when every label was skipped.

    Notes
    -----
    Time ``O(sum over labels of n_label^2 * n_dims)``; memory as :func:`silhouette_samples` for the
    largest label.
    """
    x = as_embedding(X)
    label_codes, label_names = as_labels(labels, x.shape[0], "labels")
    batch_codes, _ = as_labels(batch, x.shape[0], "batch")
    means = []
    for code, name in enumerate(label_names):
        members = np.nonzero(label_codes == code)[0]
        sub_codes, sub_batches = np.unique(batch_codes[members], return_inverse=True)
        if sub_codes.size == 1 or sub_codes.size == members.size:
            logger.debug(
                "silhouette_batch: label %r skipped (%d batches, %d cells)", name, sub_codes.size, members.size
            )
            continue
        width = np.abs(_silhouette(x[members], sub_batches.astype(np.int64), int(sub_codes.size), CHUNK_BYTES))
        means.append(float(np.mean(1.0 - width if rescale else width)))
    if not means:
        logger.warning("silhouette_batch: no label has cells from two or more batches; returning NaN.")
        return float("nan")
    return float(np.mean(means))
