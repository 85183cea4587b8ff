"""Input validation shared by the metrics: labels, embeddings and neighbour inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mnnkit._random import RngLike
from mnnkit._validation import as_float_matrix, is_int
from mnnkit.neighbors import KNeighborsLike, NeighborResult, knn

__all__ = [
    "NeighborsInput",
    "as_embedding",
    "as_labels",
    "check_count",
    "n_cells_of",
    "obs_column",
    "resolve_neighbors",
]

#: What the neighbour-based metrics accept for ``X``.
NeighborsInput = np.ndarray | NeighborResult | sparse.spmatrix | sparse.sparray


def check_count(value: object, name: str) -> int:
    """``value`` as an int if it is a positive integer (not a bool), else a ValueError naming ``name``."""
    if not is_int(value) or value < 1:
        msg = f"{name} must be a positive int, got {value!r}."
        raise ValueError(msg)
    return int(value)


def obs_column(adata: Any, key: object, name: str) -> pd.Series:
    """The column ``adata.obs[key]`` that parameter ``name`` names; an error listing the columns if absent."""
    if not isinstance(key, str):
        msg = f"{name} must be a string (an adata.obs column), got {type(key).__name__}."
        raise TypeError(msg)
    if key not in adata.obs.columns:
        msg = f"{name}={key!r} is not a column of adata.obs; available: {sorted(map(str, adata.obs.columns))}."
        raise ValueError(msg)
    return adata.obs[key]


def as_labels(labels: Any, n_obs: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Factorise ``labels`` into ``int64`` codes ``0..n_categories-1`` (sorted categories, only observed ones).

    Raises ``ValueError`` on a length different from ``n_obs`` or on missing values (NaN/None).
    Returns ``(codes, categories)``.
    """
    if isinstance(labels, pd.DataFrame):
        msg = f"{name} must be one-dimensional (one label per cell), got a DataFrame."
        raise TypeError(msg)
    values = labels if isinstance(labels, pd.Series | pd.Categorical | pd.Index) else np.asarray(labels)
    if getattr(values, "ndim", 1) != 1:
        msg = f"{name} must be one-dimensional (one label per cell), got shape {np.shape(values)}."
        raise ValueError(msg)
    if len(values) != n_obs:
        msg = f"{name} has {len(values)} entries but there are {n_obs} cells."
        raise ValueError(msg)
    codes, categories = pd.factorize(values, sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    if n_obs and codes.min() < 0:
        first = int(np.argmax(codes < 0))
        msg = f"{name} contains missing values (NaN/None), first at position {first}."
        raise ValueError(msg)
    return codes, np.asarray(categories)


def as_embedding(x: Any, name: str = "X") -> np.ndarray:
    """Validate a dense ``(cells, dims)`` embedding; float64 C order, copied only if needed."""
    if isinstance(x, NeighborResult) or sparse.issparse(x):
        msg = f"{name} must be an embedding (dense cells x dims array) for this metric, got {type(x).__name__}."
        raise TypeError(msg)
    return as_float_matrix(x, name)


def n_cells_of(x: Any) -> int:
    """Number of cells described by an embedding, a :class:`NeighborResult` or a square sparse graph."""
    if isinstance(x, NeighborResult):
        return x.n_obs
    if sparse.issparse(x):
        return int(x.shape[0])
    shape = np.shape(x)
    return int(shape[0]) if len(shape) >= 1 else 0


def resolve_neighbors(
    x: Any,
    n_neighbors: int,
    *,
    neighbors_method: str | KNeighborsLike = "exact",
    rng: RngLike = 0,
    name: str = "X",
) -> NeighborResult:
    """Return the ``n_neighbors`` nearest other cells of every cell, self excluded.

    ``x`` is an embedding (neighbours are computed with :func:`mnnkit.neighbors.knn`), a
    :class:`NeighborResult` over the same cells (its first ``n_neighbors`` columns are used) or a square
    sparse kNN distance graph (read with :meth:`NeighborResult.from_sparse`).
    """
    n_neighbors = check_count(n_neighbors, "n_neighbors")
    if sparse.issparse(x):
        if x.shape[0] != x.shape[1]:
            msg = f"{name}: a sparse kNN graph must be square (cells x cells), got shape {x.shape}."
            raise ValueError(msg)
        x = NeighborResult.from_sparse(x, exclude_self=True)
    if isinstance(x, NeighborResult):
        if x.n_neighbors < n_neighbors:
            msg = (
                f"{name} holds {x.n_neighbors} neighbours per cell but this metric needs {n_neighbors}; compute more "
                "neighbours or lower n_neighbors/perplexity."
            )
            raise ValueError(msg)
        if int(x.indices.max()) >= x.n_obs:
            msg = (
                f"{name}: neighbour indices must refer to the same {x.n_obs} cells (largest index is "
                f"{int(x.indices.max())}); the metrics need a cells x cells neighbour result."
            )
            raise ValueError(msg)
        own = x.indices == np.arange(x.n_obs)[:, None]
        if own.any():
            row = int(np.nonzero(own.any(axis=1))[0][0])
            msg = (
                f"{name}: row {row} lists the cell itself as a neighbour; the metrics need neighbours computed with "
                "exclude_self=True."
            )
            raise ValueError(msg)
        return x.subset(n_neighbors)
    emb = as_embedding(x, name)
    if n_neighbors > emb.shape[0] - 1:
        msg = f"n_neighbors={n_neighbors} needs more than {n_neighbors} cells, {name} has {emb.shape[0]}."
        raise ValueError(msg)
    return knn(emb, emb, n_neighbors, method=neighbors_method, rng=rng, exclude_self=True)
