"""Exact Euclidean kNN by brute force over row chunks of the query (memory bounded)."""

from __future__ import annotations

import contextlib

import numpy as np

from mnnkit._config import KNN_CHUNK_BYTES, KNN_PARALLEL_MIN_WORK, KNN_REVERSE_SLACK, KNN_TWO_PASS_MAX_DIM
from mnnkit._threads import thread_limits
from mnnkit.neighbors import _kernels

__all__ = ["exact_knn", "exact_knn_both_ways"]


def _chunk_rows(n_data: int, chunk_bytes: int) -> int:
    return max(1, chunk_bytes // (8 * max(n_data, 1)))


def _kernel_threads(n_rows: int, n_cols: int, n_dim: int) -> contextlib.AbstractContextManager[None]:
    """One numba thread for a small search (waking the threads costs more than it saves), else as they are.

    The kernels give each output row to one thread, so the result is the same either way.
    """
    if n_rows * n_cols * max(n_dim, 1) < KNN_PARALLEL_MIN_WORK:
        return thread_limits(numba=1)
    return contextlib.nullcontext()


def _error_scale(n_dim: int) -> float:
    """Relative bound on |expansion - exact| squared distances: gamma_{d+2}, times 4 for the re-measure."""
    unit = np.finfo(np.float64).eps / 2
    terms = n_dim + 2
    return 4.0 * terms * unit / (1.0 - terms * unit)


def exact_knn(
    query: np.ndarray,
    data: np.ndarray,
    k: int,
    *,
    exclude_self: bool,
    chunk_bytes: int = KNN_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest neighbours in ``data`` of each row of ``query`` (validated float64 C arrays).

    The query is processed in row chunks: BLAS gives each chunk's dot products with all data rows (a
    ``chunk x n_data`` block of at most ``chunk_bytes``), from which a numba kernel keeps every point that
    can, within a rigorous floating-point error bound, be among the ``k`` nearest, then re-measures those
    exactly and sorts them stably (ties: lower data index first). Returns ``(indices, distances)``
    (``int64``/``float64``, ``n_query x k``, Euclidean distances).

    Memory: ``chunk_bytes`` plus ``O(n_data)`` scratch plus the output; time ``O(n_query * n_data * d)``.
    """
    n_query, n_dim = query.shape
    n_data = data.shape[0]
    indices = np.empty((n_query, k), dtype=np.int64)
    distances = np.empty((n_query, k), dtype=np.float64)
    if n_query == 0:
        return indices, distances
    err_scale = _error_scale(n_dim)
    query_sqnorm = np.einsum("ij,ij->i", query, query)
    data_sqnorm = np.einsum("ij,ij->i", data, data)
    step = _chunk_rows(n_data, chunk_bytes)
    gram = np.empty((min(step, n_query), n_data), dtype=np.float64)
    with _kernel_threads(n_query, n_data, n_dim):
        _search_chunks(
            query, data, k, exclude_self, step, gram, query_sqnorm, data_sqnorm, err_scale, indices, distances
        )
    return indices, distances


def _search_chunks(query, data, k, exclude_self, step, gram, query_sqnorm, data_sqnorm, err_scale, indices, distances):
    """The row chunks of :func:`exact_knn`: one BLAS block and one selection each."""
    n_query = query.shape[0]
    for start in range(0, n_query, step):
        stop = min(start + step, n_query)
        block = gram[: stop - start]
        np.matmul(query[start:stop], data.T, out=block)
        _kernels.select_exact(
            block,
            query_sqnorm[start:stop],
            data_sqnorm,
            query[start:stop],
            data,
            err_scale,
            k,
            start if exclude_self else -1,
            indices[start:stop],
            distances[start:stop],
        )


def exact_knn_both_ways(
    left: np.ndarray,
    right: np.ndarray,
    k_right: int,
    k_left: int,
    *,
    chunk_bytes: int = KNN_CHUNK_BYTES,
    gram: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact kNN in both directions between two point sets from one pass of BLAS blocks.

    Returns ``(left_idx, left_dist, right_idx, right_dist)``: the ``k_right`` nearest ``right`` rows of
    every ``left`` row, and the ``k_left`` nearest ``left`` rows of every ``right`` row, each exactly as
    :func:`exact_knn` would give them (same ties, same distances), at the cost of one ``left x right``
    product instead of two. Where the whole product fits ``chunk_bytes``, both directions are selected
    from it and its transpose. Otherwise the reverse direction keeps, per right row, a heap of the ``k_left +
    KNN_REVERSE_SLACK`` smallest approximate distances over all chunks, re-measured exactly at the end; a right
    row with more near-ties than that (duplicated cells) is searched again directly. Memory: two ``chunk x
    n_right`` blocks (``2 * chunk_bytes``) plus ``O(n_right x (k_left + KNN_REVERSE_SLACK))`` candidates.
    ``gram``, if given, is ``left @ right.T`` computed already (C order): its row blocks replace the BLAS
    products.
    """
    n_left, n_dim = left.shape
    n_right = right.shape[0]
    if n_left * n_right * 8 <= chunk_bytes:
        # the whole product fits one chunk: select from it and from its transpose, with no heaps to keep
        # (nor their kernels to compile, on the small data of a first call)
        product = np.matmul(left, right.T) if gram is None else gram
        left_idx, left_dist = _select_block(product, left, right, k_right)
        right_idx, right_dist = _select_block(np.ascontiguousarray(product.T), right, left, k_left)
        return left_idx, left_dist, right_idx, right_dist
    if gram is None and n_dim <= KNN_TWO_PASS_MAX_DIM:
        # few dimensions: a second BLAS pass costs less than keeping a heap per right row
        left_idx, left_dist = exact_knn(left, right, k_right, exclude_self=False, chunk_bytes=chunk_bytes)
        right_idx, right_dist = exact_knn(right, left, k_left, exclude_self=False, chunk_bytes=chunk_bytes)
        return left_idx, left_dist, right_idx, right_dist
    err_scale = _error_scale(n_dim)
    left_sqnorm = np.einsum("ij,ij->i", left, left)
    right_sqnorm = np.einsum("ij,ij->i", right, right)
    left_idx = np.empty((n_left, k_right), dtype=np.int64)
    left_dist = np.empty((n_left, k_right), dtype=np.float64)
    # reverse direction: per right row a heap of the smallest approximate distances, re-measured at the end
    capacity = min(k_left + KNN_REVERSE_SLACK, n_left)
    heap_val = np.empty((n_right, capacity))
    heap_idx = np.empty((n_right, capacity), dtype=np.int64)
    heap_n = np.zeros(n_right, dtype=np.int64)
    step = _chunk_rows(n_right, chunk_bytes)
    work = np.empty((min(step, n_left), n_right), dtype=np.float64) if gram is None else None
    with _kernel_threads(n_left, n_right, n_dim):
        best_idx, best_d2, unsure = _both_ways_chunks(
            left, right, k_right, k_left, gram, work, step, left_sqnorm, right_sqnorm, err_scale,
            left_idx, left_dist, heap_val, heap_idx, heap_n,
        )  # fmt: skip
    best_dist = np.sqrt(best_d2)
    redo = np.flatnonzero(unsure)
    if redo.size:  # many near-tied distances: search those rows directly
        redo_right = np.ascontiguousarray(right[redo])
        found = exact_knn(redo_right, left, k_left, exclude_self=False, chunk_bytes=chunk_bytes)
        best_idx[redo], best_dist[redo] = found
    return left_idx, left_dist, best_idx, best_dist


def _select_block(gram: np.ndarray, query: np.ndarray, data: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_knn`'s result from the whole product ``gram = query @ data.T`` (C order), already made."""
    indices = np.empty((query.shape[0], k), dtype=np.int64)
    distances = np.empty((query.shape[0], k), dtype=np.float64)
    if query.shape[0]:
        with _kernel_threads(query.shape[0], data.shape[0], query.shape[1]):
            _kernels.select_exact(
                gram, np.einsum("ij,ij->i", query, query), np.einsum("ij,ij->i", data, data), query, data,
                _error_scale(query.shape[1]), k, -1, indices, distances,
            )  # fmt: skip
    return indices, distances


def _both_ways_chunks(
    left, right, k_right, k_left, gram, work, step, left_sqnorm, right_sqnorm, err_scale,
    left_idx, left_dist, heap_val, heap_idx, heap_n,
):  # fmt: skip
    """The kernels of :func:`exact_knn_both_ways`: the row chunks, then the reverse direction's selection."""
    n_left, n_right = left.shape[0], right.shape[0]
    for start in range(0, n_left, step):
        stop = min(start + step, n_left)
        if gram is None:
            block = work[: stop - start]
            np.matmul(left[start:stop], right.T, out=block)
        else:
            block = gram[start:stop]
        _kernels.select_exact(
            block, left_sqnorm[start:stop], right_sqnorm, left[start:stop], right, err_scale, k_right, -1,
            left_idx[start:stop], left_dist[start:stop],
        )  # fmt: skip
        _kernels.offer_reverse(block, start, right_sqnorm, left_sqnorm, heap_val, heap_idx, heap_n)
    best_idx = np.empty((n_right, k_left), dtype=np.int64)
    best_d2 = np.zeros((n_right, k_left))  # rows left unsure by the kernel are filled below
    unsure = np.zeros(n_right, dtype=np.bool_)
    _kernels.finish_reverse(
        heap_val, heap_idx, heap_n, right, left, right_sqnorm, left_sqnorm, n_left, err_scale, k_left,
        best_idx, best_d2, unsure,
    )  # fmt: skip
    return best_idx, best_d2, unsure
