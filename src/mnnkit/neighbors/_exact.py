"""Exact Euclidean kNN by brute force over row chunks of the query (memory bounded)."""

from __future__ import annotations

import numpy as np

from mnnkit.neighbors import _kernels

__all__ = ["exact_knn"]

#: Upper bound, in bytes, on the ``(chunk rows x n_data)`` float64 block of dot products held at once.
CHUNK_BYTES = 64 * 2**20


def _chunk_rows(n_data: int, chunk_bytes: int) -> int:
    return max(1, chunk_bytes // (8 * max(n_data, 1)))


def exact_knn(
    query: np.ndarray,
    data: np.ndarray,
    k: int,
    *,
    exclude_self: bool,
    chunk_bytes: int = CHUNK_BYTES,
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
    unit = np.finfo(np.float64).eps / 2
    terms = n_dim + 2
    # |approx - exact| bound for the expansion (gamma_{d+2}), times 4 to also cover the direct re-measure
    err_scale = 4.0 * terms * unit / (1.0 - terms * unit)
    query_sqnorm = np.einsum("ij,ij->i", query, query)
    data_sqnorm = np.einsum("ij,ij->i", data, data)
    step = _chunk_rows(n_data, chunk_bytes)
    gram = np.empty((min(step, n_query), n_data), dtype=np.float64)
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
    return indices, distances
