"""Numba kernels of the kNN backends (compiled lazily on first call, cached on disk).

Callers validate everything in Python first; these kernels take plain, contiguous arrays only.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _squared_distance(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - traced by numba
    acc = 0.0
    for f in range(a.shape[0]):
        diff = a[f] - b[f]
        acc += diff * diff
    return acc


@numba.njit(cache=True)
def _sift_down(values, labels, size):  # pragma: no cover - traced by numba
    """Restore the max-heap property of ``values[:size]`` (with ``labels``) after its root was replaced."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and values[child + 1] > values[child]:
            child += 1
        if values[child] <= values[pos]:
            return
        values[pos], values[child] = values[child], values[pos]
        labels[pos], labels[child] = labels[child], labels[pos]
        pos = child


@numba.njit(cache=True)
def _heap_offer(values, labels, size, value, label):  # pragma: no cover - traced by numba
    """Offer ``(value, label)`` to a bounded max-heap of capacity ``len(values)``; return its new size.

    While the heap is not full the item is added (sift up); afterwards it replaces the root only if
    ``value`` is smaller than the largest value kept.
    """
    capacity = values.shape[0]
    if size < capacity:
        pos = size
        values[pos] = value
        labels[pos] = label
        while pos > 0:
            parent = (pos - 1) // 2
            if values[parent] >= values[pos]:
                break
            values[parent], values[pos] = values[pos], values[parent]
            labels[parent], labels[pos] = labels[pos], labels[parent]
            pos = parent
        return size + 1
    if value < values[0]:
        values[0] = value
        labels[0] = label
        _sift_down(values, labels, capacity)
    return size


@numba.njit(cache=True, parallel=True)
def select_exact(gram, query_sqnorm, data_sqnorm, query, data, err_scale, k, self_offset, out_idx, out_dist):
    """Turn one chunk of dot products into the exact ``k`` nearest neighbours of its query rows.

    ``gram[i, j] = query[i] . data[j]`` from BLAS gives approximate squared distances
    ``a_ij = |q_i|^2 - 2 gram_ij + |x_j|^2`` with ``|a_ij - d_ij| <= e_ij = err_scale * (|q_i| + |x_j|)^2``.
    A first pass keeps the ``k`` smallest ``a_ij`` in a max-heap; ``U_i = max (a_ij + e_ij)`` over them bounds
    the ``k``-th true distance from above, so every point of the true top ``k`` (ties at the ``k``-th
    distance included) has ``a_ij - e_ij <= U_i``. A second pass re-measures those candidates exactly
    (sequential sum of squared differences) and sorts them stably, so ties go to the lower data index.
    ``self_offset >= 0`` excludes data row ``self_offset + i`` from query row ``i``. Writes Euclidean
    distances (square roots) into ``out_dist``. Needs ``k <=`` the number of data rows left.
    """
    n_rows, n_data = gram.shape
    data_norm = np.sqrt(data_sqnorm)
    for i in numba.prange(n_rows):  # rows are independent: parallel, same result as serial
        heap = np.empty(k)
        heap_idx = np.empty(k, dtype=np.int64)
        cand = np.empty(n_data, dtype=np.int64)
        cand_d2 = np.empty(n_data)
        q_sq = query_sqnorm[i]
        q_norm = np.sqrt(q_sq)
        skip = self_offset + i if self_offset >= 0 else -1
        size = 0
        for j in range(n_data):
            if j == skip:
                continue
            approx = q_sq - 2.0 * gram[i, j] + data_sqnorm[j]
            size = _heap_offer(heap, heap_idx, size, approx, j)
        upper = -np.inf
        for t in range(k):
            s = q_norm + data_norm[heap_idx[t]]
            bound = heap[t] + err_scale * s * s
            if bound > upper:
                upper = bound
        n_cand = 0
        for j in range(n_data):
            if j == skip:
                continue
            approx = q_sq - 2.0 * gram[i, j] + data_sqnorm[j]
            s = q_norm + data_norm[j]
            if approx - err_scale * s * s <= upper:
                cand[n_cand] = j
                cand_d2[n_cand] = _squared_distance(query[i], data[j])
                n_cand += 1
        order = np.argsort(cand_d2[:n_cand], kind="mergesort")
        for r in range(k):
            out_idx[i, r] = cand[order[r]]
            out_dist[i, r] = np.sqrt(cand_d2[order[r]])


@numba.njit(cache=True, parallel=True)
def merge_reverse_exact(
    gram_t, offset, data_sqnorm, query_sqnorm, data, query, err_scale, k, best_d2, best_idx, best_n
):
    """Update each data row's running exact ``k`` nearest query rows with one chunk of query rows.

    Used to get the reverse direction of a kNN search from the same BLAS block: ``gram_t[r, i]`` is
    ``data[r] . query[offset + i]`` for the chunk's query rows. ``best_d2[r, :best_n[r]]`` holds the exact
    squared distances found so far, ascending, with their query rows in ``best_idx``. Candidates are
    filtered with the same rigorous bound as :func:`select_exact` (a point of the final top ``k`` is within
    the ``k`` best of its own chunk and no worse than the current ``k``-th), re-measured exactly, and inserted
    stably: chunks arrive in increasing row order, so ties keep the lower query row.
    """
    n_data, n_chunk = gram_t.shape
    data_norm_all = np.sqrt(data_sqnorm)
    for r in numba.prange(n_data):
        r_sq = data_sqnorm[r]
        r_norm = data_norm_all[r]
        upper = np.inf
        if n_chunk > k:
            heap = np.empty(k)
            heap_idx = np.empty(k, dtype=np.int64)
            size = 0
            for i in range(n_chunk):
                approx = r_sq - 2.0 * gram_t[r, i] + query_sqnorm[offset + i]
                size = _heap_offer(heap, heap_idx, size, approx, i)
            upper = -np.inf
            for t in range(k):
                s = r_norm + np.sqrt(query_sqnorm[offset + heap_idx[t]])
                bound = heap[t] + err_scale * s * s
                if bound > upper:
                    upper = bound
        if best_n[r] == k and best_d2[r, k - 1] < upper:
            upper = best_d2[r, k - 1]
        for i in range(n_chunk):
            row = offset + i
            approx = r_sq - 2.0 * gram_t[r, i] + query_sqnorm[row]
            s = r_norm + np.sqrt(query_sqnorm[row])
            if approx - err_scale * s * s > upper:
                continue
            d2 = _squared_distance(data[r], query[row])
            n = best_n[r]
            if n == k:
                if d2 >= best_d2[r, k - 1]:
                    continue
                pos = k - 1
            else:
                pos = n
                best_n[r] = n + 1
            while pos > 0 and best_d2[r, pos - 1] > d2:
                best_d2[r, pos] = best_d2[r, pos - 1]
                best_idx[r, pos] = best_idx[r, pos - 1]
                pos -= 1
            best_d2[r, pos] = d2
            best_idx[r, pos] = row


@numba.njit(cache=True)
def pair_distances(query, data, indices, out):
    """Euclidean distance of each query row ``i`` to the data rows ``indices[i, :]``, into ``out``."""
    for i in range(indices.shape[0]):
        for r in range(indices.shape[1]):
            out[i, r] = np.sqrt(_squared_distance(query[i], data[indices[i, r]]))
