"""Numba kernels of the kNN backends (compiled lazily on first call, cached on disk; see docs/compile_cache.md).

Callers validate everything in Python first; these kernels take plain, contiguous arrays only.
"""

from __future__ import annotations

import numba
import numpy as np

from mnnkit._config import KNN_REVERSE_TILE, SELECT_BLOCK_ROWS
from mnnkit._sort import sort_pairs
from mnnkit._threads import run_in_ranges


@numba.njit(cache=True)
def _squared_distance(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - traced by numba
    acc = 0.0
    for f in range(a.shape[0]):
        diff = a[f] - b[f]
        acc += diff * diff
    return acc


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
    if value < values[0]:  # replace the root, then sift it down
        values[0] = value
        labels[0] = label
        pos = 0
        while True:
            child = 2 * pos + 1
            if child >= capacity:
                break
            if child + 1 < capacity and values[child + 1] > values[child]:
                child += 1
            if values[child] <= values[pos]:
                break
            values[pos], values[child] = values[child], values[pos]
            labels[pos], labels[child] = labels[child], labels[pos]
            pos = child
    return size


@numba.njit(cache=True)
def _kth_smallest(values, n, k, scratch):  # pragma: no cover - traced by numba
    """The ``k``-th smallest (1-based) of ``values[:n]``, by quickselect on a copy in ``scratch``."""
    for i in range(n):
        scratch[i] = values[i]
    target = k - 1
    lo = 0
    hi = n - 1
    while lo < hi:
        # Hoare's partition around the middle value: values <= pivot end up at lo..j, values >= pivot
        # at i..hi, and any between equal the pivot
        pivot = scratch[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while scratch[i] < pivot:
                i += 1
            while scratch[j] > pivot:
                j -= 1
            if i <= j:
                scratch[i], scratch[j] = scratch[j], scratch[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    return scratch[target]


@numba.njit(cache=True)
def nearest_candidates(
    gram_row, q_sq, data_sqnorm, start, stop, skip, slack, k, seen, seen_approx, scratch
):  # fmt: skip  # pragma: no cover - traced by numba
    """The first pass of an exact selection over data rows ``start:stop`` for one query.

    Approximate squared distances ``q_sq - 2 gram_row[j] + data_sqnorm[j]``. Every row within ``slack``
    of the ``k``-th smallest distance seen before it (an upper bound on the final ``k``-th smallest) is
    recorded in ``seen``/``seen_approx``, so at the end they hold every row within ``slack`` of the final
    ``k``-th smallest (see :func:`select_exact` for why that set holds the true nearest rows). Instead of
    a heap updated per near row, the record is compacted to the rows within ``slack`` of its own ``k``-th
    smallest whenever it has doubled: a near row then costs one store, not a sift.

    Row ``skip`` is left out; needs at least ``k`` other rows. ``seen``, ``seen_approx`` and ``scratch``
    hold ``stop - start`` entries. Returns ``(n_seen, kth)``: the rows recorded and the final ``k``-th
    smallest distance.
    """
    n_seen = np.int64(0)
    limit = 4 * k
    record_below = np.inf  # the k-th smallest so far + slack, from the first compaction on
    # two runs of rows, before and after ``skip``: a test for it inside the hot loop slows the loop down
    cut = skip if start <= skip < stop else stop
    for run in range(2):
        lo = start if run == 0 else cut + 1
        hi = cut if run == 0 else stop
        for j in range(lo, hi):
            approx = q_sq - 2.0 * gram_row[j] + data_sqnorm[j]
            if approx <= record_below:  # the common case (far) without a branch taken
                seen[n_seen] = j
                seen_approx[n_seen] = approx
                n_seen += 1
                if n_seen == limit:
                    record_below = _kth_smallest(seen_approx, n_seen, k, scratch) + slack
                    kept = np.int64(0)
                    for c in range(n_seen):
                        if seen_approx[c] <= record_below:
                            seen[kept] = seen[c]
                            seen_approx[kept] = seen_approx[c]
                            kept += 1
                    n_seen = kept
                    limit = 2 * kept if 2 * kept > 4 * k else 4 * k
    return n_seen, _kth_smallest(seen_approx, n_seen, k, scratch)


def select_exact(gram, query_sqnorm, data_sqnorm, query, data, err_scale, k, self_offset, out_idx, out_dist):
    """Turn one chunk of dot products into the exact ``k`` nearest neighbours of its query rows.

    ``gram[i, j] = query[i] . data[j]`` from BLAS gives approximate squared distances
    ``a_ij = |q_i|^2 - 2 gram_ij + |x_j|^2`` with ``|a_ij - d_ij| <= e_ij = err_scale * (|q_i| + |x_j|)^2``.
    One pass (:func:`nearest_candidates`) records every point within ``2 E_i`` of the ``k``-th smallest
    ``a_ij`` seen before it, ``T``, and finds the final ``T_i`` (``E_i >= e_ij`` for every ``j``). The ``k``
    points with the smallest ``a_ij`` have true distances at most ``U_i = T_i + E_i``, so the ``k``-th true
    distance is at most ``U_i`` too: every point of the true top ``k`` (ties at the ``k``-th distance
    included) has ``a_ij - e_ij <= U_i``, hence ``a_ij <= T_i + 2 E_i`` for the final and any earlier
    (larger) ``T``: it was recorded. The recorded points with ``a_ij - e_ij <= U_i`` are
    re-measured exactly (sequential sum of squared differences) and sorted by (distance, data index), so
    ties go to the lower data index. ``self_offset >= 0`` excludes data row ``self_offset + i`` from query
    row ``i``. Writes Euclidean distances (square roots) into ``out_dist``. Needs ``k <=`` the number of
    data rows left. Rows are independent: ranges of ``SELECT_BLOCK_ROWS`` rows go to the numba threads
    (:func:`mnnkit._threads.run_in_ranges`), each sharing one set of scratch arrays.
    """
    data_norm = np.sqrt(data_sqnorm)
    max_norm = float(data_norm.max()) if data_norm.size else 0.0
    run_in_ranges(
        _select_rows, gram.shape[0], SELECT_BLOCK_ROWS,
        gram, query_sqnorm, data_sqnorm, data_norm, max_norm, query, data, float(err_scale), int(k),
        int(self_offset), out_idx, out_dist,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _select_rows(
    gram, query_sqnorm, data_sqnorm, data_norm, max_norm, query, data, err_scale, k, self_offset, out_idx, out_dist,
    first, last,
):  # fmt: skip  # pragma: no cover - traced by numba
    """Rows ``first:last`` of :func:`select_exact`, sharing one set of scratch arrays."""
    n_data = gram.shape[1]
    seen = np.empty(n_data, dtype=np.int64)
    seen_approx = np.empty(n_data)
    scratch = np.empty(n_data)
    cand = np.empty(n_data, dtype=np.int64)
    cand_d2 = np.empty(n_data)
    for i in range(first, last):
        q_sq = query_sqnorm[i]
        q_norm = np.sqrt(q_sq)
        widest = q_norm + max_norm
        slack = 2.0 * err_scale * widest * widest
        skip = self_offset + i if self_offset >= 0 else -1
        row = gram[i]
        n_seen, kth = nearest_candidates(row, q_sq, data_sqnorm, 0, n_data, skip, slack, k, seen, seen_approx, scratch)
        upper = kth + 0.5 * slack
        n_cand = np.int64(0)
        for c in range(n_seen):
            j = seen[c]
            s = q_norm + data_norm[j]
            if seen_approx[c] - err_scale * s * s <= upper:
                cand[n_cand] = j
                cand_d2[n_cand] = _squared_distance(query[i], data[j])
                n_cand += 1
        sort_pairs(cand_d2, cand, n_cand)
        for r in range(k):
            out_idx[i, r] = cand[r]
            out_dist[i, r] = np.sqrt(cand_d2[r])


def offer_reverse(gram, offset, data_sqnorm, query_sqnorm, heap_val, heap_idx, heap_n):
    """Offer one chunk of query rows to each data row's bounded heap of smallest approximate distances.

    Used to get the reverse direction of a kNN search from the same BLAS block: ``gram[i, r]`` is
    ``query[offset + i] . data[r]`` (the block as computed, not transposed). ``heap_val[r, :heap_n[r]]``
    is a max-heap of the smallest ``a_ri = |x_r|^2 - 2 gram + |q_i|^2`` seen so far (capacity
    ``heap_val.shape[1]``), with their query rows in ``heap_idx``; query rows are offered in increasing
    order. Data rows are taken in tiles of ``KNN_REVERSE_TILE`` so that each pass over the block reads whole
    cache lines; ranges of tiles go to the numba threads. Nothing is re-measured here:
    :func:`finish_reverse` does that once at the end.
    """
    run_in_ranges(
        _offer_rows, gram.shape[1], KNN_REVERSE_TILE, gram, int(offset), data_sqnorm, query_sqnorm, heap_val,
        heap_idx, heap_n,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _offer_rows(gram, offset, data_sqnorm, query_sqnorm, heap_val, heap_idx, heap_n, first, last):  # pragma: no cover
    """Data rows ``first:last`` of :func:`offer_reverse`, a tile at a time."""
    n_chunk = gram.shape[0]
    capacity = heap_val.shape[1]
    for tile in range(first, last, KNN_REVERSE_TILE):
        tile_end = min(tile + KNN_REVERSE_TILE, last)
        for i in range(n_chunk):
            q_sq = query_sqnorm[offset + i]
            for r in range(tile, tile_end):
                approx = data_sqnorm[r] - 2.0 * gram[i, r] + q_sq
                size = heap_n[r]
                if size < capacity or approx < heap_val[r, 0]:
                    heap_n[r] = _heap_offer(heap_val[r], heap_idx[r], size, approx, offset + i)


def finish_reverse(
    heap_val, heap_idx, heap_n, data, query, data_sqnorm, query_sqnorm, n_query, err_scale, k, out_idx, out_d2, unsure
):
    """Exact ``k`` nearest query rows of each data row from its heap of approximate candidates.

    With the bound of :func:`select_exact` (``|a - d| <= e = err_scale * (|x| + |q|)^2``), the true top
    ``k`` lie among the retained candidates with ``a - e <= U`` (``U``: the largest ``a + e`` of the ``k``
    smallest ``a``, ties by query row) unless a query row the heap dropped could also qualify. A dropped
    row has ``a`` at least the heap's largest retained value, so that is ruled out when that value minus
    the largest possible ``e`` exceeds ``U``. Otherwise (many near-ties, such as duplicated cells)
    ``unsure[r]`` is set and the caller recomputes row ``r``. The candidates are re-measured exactly
    (sequential sum of squared differences) and sorted by distance, ties to the lower query row. Ranges
    of data rows go to the numba threads.
    """
    max_query_norm = float(np.sqrt(query_sqnorm.max())) if query_sqnorm.size else 0.0
    run_in_ranges(
        _finish_rows, heap_val.shape[0], SELECT_BLOCK_ROWS,
        heap_val, heap_idx, heap_n, data, query, data_sqnorm, query_sqnorm, max_query_norm, int(n_query),
        float(err_scale), int(k), out_idx, out_d2, unsure,
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _finish_rows(
    heap_val, heap_idx, heap_n, data, query, data_sqnorm, query_sqnorm, max_query_norm, n_query, err_scale, k,
    out_idx, out_d2, unsure, first, last,
):  # fmt: skip  # pragma: no cover - traced by numba
    """Data rows ``first:last`` of :func:`finish_reverse`, sharing one set of scratch arrays."""
    capacity = heap_val.shape[1]
    vals = np.empty(capacity)
    rows = np.empty(capacity, dtype=np.int64)
    cand = np.empty(capacity, dtype=np.int64)
    cand_d2 = np.empty(capacity)
    for r in range(first, last):
        size = heap_n[r]
        r_norm = np.sqrt(data_sqnorm[r])
        for t in range(size):
            vals[t] = heap_val[r, t]
            rows[t] = heap_idx[r, t]
        sort_pairs(vals, rows, size)
        upper = -np.inf
        for t in range(min(k, size)):
            s = r_norm + np.sqrt(query_sqnorm[rows[t]])
            bound = vals[t] + err_scale * s * s
            if bound > upper:
                upper = bound
        unsure[r] = False
        if size == capacity and size < n_query:
            s = r_norm + max_query_norm
            if vals[size - 1] - err_scale * s * s <= upper:
                unsure[r] = True
                continue
        n_cand = np.int64(0)
        for t in range(size):
            row = rows[t]
            s = r_norm + np.sqrt(query_sqnorm[row])
            if vals[t] - err_scale * s * s <= upper:
                cand[n_cand] = row
                cand_d2[n_cand] = _squared_distance(data[r], query[row])
                n_cand += 1
        sort_pairs(cand_d2, cand, n_cand)  # by (distance, query row)
        for t in range(k):
            out_idx[r, t] = cand[t]
            out_d2[r, t] = cand_d2[t]


@numba.njit(cache=True)
def pair_distances(query, data, indices, out):
    """Euclidean distance of each query row ``i`` to the data rows ``indices[i, :]``, into ``out``."""
    for i in range(indices.shape[0]):
        for r in range(indices.shape[1]):
            out[i, r] = np.sqrt(_squared_distance(query[i], data[indices[i, r]]))
