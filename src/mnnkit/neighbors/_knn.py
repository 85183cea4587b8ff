"""The :func:`knn` front: validation and dispatch to the exact, pynndescent or user-supplied backend."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from mnnkit._random import RngLike, as_seed, check_rng
from mnnkit._validation import as_float_matrix, check_bool, check_int
from mnnkit.neighbors._exact import exact_knn, exact_knn_both_ways
from mnnkit.neighbors._pynndescent import pynndescent_knn
from mnnkit.neighbors._result import NeighborResult

__all__ = ["KNeighborsLike", "knn", "knn_both_ways"]


@runtime_checkable
class KNeighborsLike(Protocol):
    """A fitted scikit-learn style neighbours estimator (``NearestNeighbors``, ``KNeighborsTransformer``...)."""

    def kneighbors(self, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True) -> Any:
        """Return ``(distances, indices)`` of the ``n_neighbors`` nearest fitted points of each row of ``X``."""


def _from_estimator(
    estimator: KNeighborsLike, query: np.ndarray, data: np.ndarray, k: int, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray]:
    fitted = getattr(estimator, "n_samples_fit_", None)
    if fitted is not None and int(fitted) != data.shape[0]:
        msg = f"method: the estimator was fitted on {fitted} cells but data has {data.shape[0]} rows"
        raise ValueError(msg)
    n_search = k + (1 if exclude_self else 0)
    dist, found = estimator.kneighbors(query, n_neighbors=n_search, return_distance=True)
    found = np.asarray(found, dtype=np.int64)
    dist = np.asarray(dist, dtype=np.float64)
    if found.shape != (query.shape[0], n_search) or dist.shape != found.shape:
        msg = f"method: estimator.kneighbors returned shape {found.shape}, expected {(query.shape[0], n_search)}"
        raise ValueError(msg)
    if exclude_self:
        is_self = found == np.arange(found.shape[0])[:, None]
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), n_search - 1)
        keep = np.ones(found.shape, dtype=bool)
        keep[np.arange(found.shape[0]), drop] = False
        found = found[keep].reshape(-1, k)
        dist = dist[keep].reshape(-1, k)
    order = np.lexsort((found, dist), axis=-1)
    return np.take_along_axis(found, order, axis=1), np.take_along_axis(dist, order, axis=1)


def knn(
    query: np.ndarray,
    data: np.ndarray,
    k: int,
    *,
    method: Literal["exact", "pynndescent"] | KNeighborsLike = "exact",
    rng: RngLike = 0,
    exclude_self: bool = False,
) -> NeighborResult:
    """Find the ``k`` nearest neighbours (Euclidean) in ``data`` of every row of ``query``.

    Parameters
    ----------
    query
        Dense ``(n_query, n_features)`` real array (any float/int dtype; used as float64). Not modified.
    data
        Dense ``(n_data, n_features)`` real array searched for neighbours. Not modified.
    k
        Neighbours per query row, ``1 <= k <= n_data`` (``<= n_data - 1`` with ``exclude_self``).
    method
        ``"exact"``: brute force over row chunks of ``query`` with BLAS, then an exact re-measure of every
        candidate within a rigorous rounding-error bound; the result is the exact kNN, sorted by distance
        with ties broken by the lower data index (stable), whatever the chunking.
        ``"pynndescent"``: approximate, via :class:`pynndescent.NNDescent` seeded by ``rng`` and run
        single-threaded, so the same input and seed give the same result; distances are re-measured in
        float64 and rows sorted the same way. Much faster than exact for large ``n_data``; data with fewer
        than ``3 * max(k + 1, 60)`` rows are searched exactly instead.
        Or a fitted scikit-learn style estimator with ``kneighbors`` (``NearestNeighbors``,
        ``KNeighborsTransformer``, ...), fitted on ``data``: it is asked for ``k`` (``k + 1`` with
        ``exclude_self``) neighbours of ``query``; its metric and distances are kept, rows re-sorted by
        (distance, index). ``data`` then only fixes the expected number of fitted cells.
    rng
        Randomness of ``"pynndescent"`` (checked, then unused by the other methods): an int seed >= 0 (same
        seed, same result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None
        (fresh entropy from the operating system: a different result on every call).
    exclude_self
        Treat query row ``i`` as data row ``i`` (needs ``n_query == n_data``, normally ``query`` is
        ``data``) and leave position ``i`` out of row ``i``. Other cells identical to cell ``i`` remain
        neighbours at distance 0.

    Returns
    -------
    NeighborResult
        ``(n_query, k)`` neighbour indices into ``data`` (int64) and distances (float64), nearest first.

    Notes
    -----
    Memory (exact): a copy of each input as float64 if it is not already float64 C order, a
    ``chunk x n_data`` float64 block of at most 16 MiB (the query is processed in row chunks; no
    ``n_query x n_data`` matrix is ever built), ``O(n_data)`` scratch and the ``16 * n_query * k`` byte
    output. Time ``O(n_query * n_data * n_features)``. pynndescent: its index, ``O(n_data * max(k, 60))``.

    Examples
    --------
    >>> import numpy as np
    >>> from mnnkit.neighbors import knn
    >>> x = np.array([[0.0], [1.0], [3.0]])
    >>> knn(x, x, 1, exclude_self=True).indices.ravel().tolist()
    [1, 0, 1]
    """
    check_rng(rng)
    query_arr = as_float_matrix(query, "query")
    data_arr = query_arr if data is query else as_float_matrix(data, "data")
    if query_arr.shape[1] != data_arr.shape[1]:
        msg = f"query and data must have the same number of features, got {query_arr.shape[1]} and {data_arr.shape[1]}"
        raise ValueError(msg)
    exclude_self = check_bool(exclude_self, "exclude_self")
    n_data = data_arr.shape[0]
    if exclude_self and query_arr.shape[0] != n_data:
        msg = (
            f"exclude_self=True needs query and data to be the same cells, got {query_arr.shape[0]} query and "
            f"{n_data} data rows"
        )
        raise ValueError(msg)
    k = check_int(k, "k")
    available = n_data - 1 if exclude_self else n_data
    if not 1 <= k <= available:
        where = "n_data - 1 (exclude_self=True)" if exclude_self else "n_data"
        msg = f"k must be between 1 and {where} = {available}, got {k}"
        raise ValueError(msg)
    if isinstance(method, str):
        if method == "exact":
            idx, dist = exact_knn(query_arr, data_arr, k, exclude_self=exclude_self)
        elif method == "pynndescent":
            seed = as_seed(rng)
            same = query_arr is data_arr or (query_arr.shape == data_arr.shape and np.array_equal(query_arr, data_arr))
            idx, dist = pynndescent_knn(query_arr, data_arr, k, exclude_self=exclude_self, seed=seed, same=same)
        else:
            msg = f"method must be 'exact', 'pynndescent' or a fitted estimator with kneighbors(), got {method!r}"
            raise ValueError(msg)
    elif isinstance(method, KNeighborsLike):
        idx, dist = _from_estimator(method, query_arr, data_arr, k, exclude_self)
    else:
        kind = type(method).__name__
        msg = f"method must be 'exact', 'pynndescent' or a fitted estimator with kneighbors(), got {kind}"
        raise TypeError(msg)
    return NeighborResult(idx, dist)


def knn_both_ways(
    left: np.ndarray,
    right: np.ndarray,
    k_right: int,
    k_left: int,
    *,
    method: Literal["exact", "pynndescent"] = "exact",
    rng: RngLike = 0,
    gram: np.ndarray | None = None,
) -> tuple[NeighborResult, NeighborResult]:
    """Nearest neighbours both ways between two sets of cells (the two searches of an MNN step).

    Finds the ``k_right`` nearest ``right`` cells of every ``left`` cell and the ``k_left`` nearest ``left``
    cells of every ``right`` cell.

    With ``method="exact"`` both come from one pass of BLAS blocks (half the cost of two :func:`knn` calls)
    and equal them exactly, ties included. Other methods run :func:`knn` twice.

    Parameters
    ----------
    left, right
        Dense ``(n, n_features)`` real arrays. Not modified.
    k_right, k_left
        Neighbours sought in ``right`` (``<= len(right)``) and in ``left`` (``<= len(left)``).
    method, rng
        As in :func:`knn`.
    gram
        Exact method only: ``left @ right.T`` (float64, C order) if the caller has it already; its row
        blocks then replace the BLAS products (same neighbours, the search stays exact).

    Returns
    -------
    ``(left_to_right, right_to_left)`` neighbour results. Memory (exact): two ``chunk x n_right`` float64
    blocks of at most 16 MiB each, plus the outputs.
    """
    check_rng(rng)
    if not (isinstance(method, str) and method == "exact"):
        if gram is not None:
            msg = f"gram is only used by method='exact', got method={method!r}"
            raise ValueError(msg)
        return (
            knn(left, right, k_right, method=method, rng=rng),
            knn(right, left, k_left, method=method, rng=rng),
        )
    left_arr = as_float_matrix(left, "left")
    right_arr = as_float_matrix(right, "right")
    if left_arr.shape[1] != right_arr.shape[1]:
        msg = f"left and right must have the same number of features, got {left_arr.shape[1]} and {right_arr.shape[1]}"
        raise ValueError(msg)
    for name, k, n in (("k_right", k_right, right_arr.shape[0]), ("k_left", k_left, left_arr.shape[0])):
        if not 1 <= check_int(k, name) <= n:
            msg = f"{name} must be between 1 and {n}, got {k}"
            raise ValueError(msg)
    if gram is not None and gram.shape != (left_arr.shape[0], right_arr.shape[0]):
        msg = f"gram must be left @ right.T, of shape {(left_arr.shape[0], right_arr.shape[0])}, got {gram.shape}"
        raise ValueError(msg)
    left_idx, left_dist, right_idx, right_dist = exact_knn_both_ways(
        left_arr, right_arr, int(k_right), int(k_left), gram=gram
    )
    return NeighborResult(left_idx, left_dist), NeighborResult(right_idx, right_dist)
