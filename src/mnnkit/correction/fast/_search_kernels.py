"""Numba kernels of the graph search.

Float32 navigation copies, bounded heaps, the best-first k-nearest-neighbour search over a batch's
graph and its landmark seeds (plain arrays, checked by the callers in ``fast._search``).

Determinism: the parallel kernels give every output row to exactly one iteration of a ``prange``
loop, which computes it in a fixed order; nothing is reduced across threads, so the output is bit for
bit the same whatever the number of threads or their scheduling.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mnnkit._config import MAX_SEARCH_BLOCKS, SEARCH_BLOCK


@njit(cache=True, parallel=True)
def gather_rows(data: np.ndarray, order: np.ndarray, exact: np.ndarray, nav: np.ndarray) -> None:
    """``exact[p] = data[order[p]]`` and ``nav[p]`` the same row in float32 (the searches' two copies)."""
    d = data.shape[1]
    for p in prange(order.shape[0]):
        row = order[p]
        for j in range(d):
            value = data[row, j]
            exact[p, j] = value
            nav[p, j] = np.float32(value)


@njit(cache=True, fastmath=True)
def _sqdist_fast(a: np.ndarray, b: np.ndarray) -> float:
    """Squared distance between float32 rows, for moving through the graph (vectorised, reassociated).

    The neighbours finally returned are re-measured in float64 (:func:`_sqdist`). Not inlined by numba:
    its IR would then be compiled with the caller's flags (no fastmath: a scalar, sequential sum);
    LLVM still inlines it, keeping its instructions' fast-math flags, so it is vectorised (~20%
    faster searches).
    """
    acc = np.float32(0.0)
    for j in range(a.shape[0]):
        diff = a[j] - b[j]
        acc += diff * diff
    return acc


@njit(cache=True, inline="always")
def _sqdist(a: np.ndarray, b: np.ndarray) -> float:
    """Squared distance summed in column order (the distances returned)."""
    acc = 0.0
    for j in range(a.shape[0]):
        diff = a[j] - b[j]
        acc += diff * diff
    return acc


@njit(cache=True, inline="always")
def _before(da: float, ia: int, db: float, ib: int) -> bool:
    """Strict order by (distance, index)."""
    return da < db or (da == db and ia < ib)


@njit(cache=True, inline="always")
def _above(heap_d, heap_i, a, b, largest_first):
    """Whether entry ``a`` belongs above entry ``b``: nearer in a min-heap, farther in a max-heap."""
    if largest_first:
        return _before(heap_d[b], heap_i[b], heap_d[a], heap_i[a])
    return _before(heap_d[a], heap_i[a], heap_d[b], heap_i[b])


@njit(cache=True, inline="always")
def _swap(heap_d, heap_i, a, b):
    heap_d[a], heap_d[b] = heap_d[b], heap_d[a]
    heap_i[a], heap_i[b] = heap_i[b], heap_i[a]


@njit(cache=True, inline="always")
def _sift_up(heap_d, heap_i, pos, largest_first):
    """Move entry ``pos`` up until its parent belongs above it."""
    while pos > 0:
        parent = (pos - 1) // 2
        if not _above(heap_d, heap_i, pos, parent, largest_first):
            break
        _swap(heap_d, heap_i, pos, parent)
        pos = parent


@njit(cache=True, inline="always")
def _sift_down(heap_d, heap_i, size, largest_first):
    """Move the root down until both its children belong below it."""
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and _above(heap_d, heap_i, right, left, largest_first):
            best = right
        if not _above(heap_d, heap_i, best, pos, largest_first):
            break
        _swap(heap_d, heap_i, pos, best)
        pos = best


@njit(cache=True)
def _min_push(heap_d, heap_i, size, dist, idx):
    """Push onto a binary min-heap on (distance, index); return the new size."""
    heap_d[size] = dist
    heap_i[size] = idx
    _sift_up(heap_d, heap_i, size, False)
    return size + 1


@njit(cache=True)
def _min_pop(heap_d, heap_i, size):
    """Remove the root of a min-heap (the caller read it first); return the new size."""
    size -= 1
    heap_d[0] = heap_d[size]
    heap_i[0] = heap_i[size]
    _sift_down(heap_d, heap_i, size, False)
    return size


@njit(cache=True)
def _max_offer(heap_d, heap_i, size, capacity, dist, idx):
    """Offer (dist, idx) to a bounded max-heap (keeps the ``capacity`` smallest); return the new size."""
    if size < capacity:
        heap_d[size] = dist
        heap_i[size] = idx
        _sift_up(heap_d, heap_i, size, True)
        return size + 1
    if _before(dist, idx, heap_d[0], heap_i[0]):
        heap_d[0] = dist
        heap_i[0] = idx
        _sift_down(heap_d, heap_i, size, True)
    return size


@njit(cache=True)
def _write_sorted(res_d, res_i, size, k, out_i, out_d):
    """Write the ``k`` smallest (distance, index) of the first ``size`` entries, ascending, as sqrt distances."""
    dist = res_d[:size].copy()
    idx = res_i[:size].copy()
    # insertion sort on (distance, index): size is small (the search pool)
    for a in range(1, size):
        dv = dist[a]
        iv = idx[a]
        b = a - 1
        while b >= 0 and _before(dv, iv, dist[b], idx[b]):
            dist[b + 1] = dist[b]
            idx[b + 1] = idx[b]
            b -= 1
        dist[b + 1] = dv
        idx[b + 1] = iv
    for a in range(k):
        out_i[a] = idx[a]
        out_d[a] = np.sqrt(dist[a])


@njit(cache=True, parallel=True)
def graph_knn(
    targets: np.ndarray,
    nav_targets: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    cross_ptr: np.ndarray,
    cross_idx: np.ndarray,
    pivots: np.ndarray,
    seed_ptr: np.ndarray,
    seed_idx: np.ndarray,
    seed_lists: np.ndarray,
    queries: np.ndarray,
    nav_queries: np.ndarray,
    query_rows: np.ndarray,
    k: int,
    ef: int,
    n_entries: int,
    max_visits: int,
    allowed: np.ndarray,
    out_idx: np.ndarray,
    out_dist: np.ndarray,
) -> None:
    """Approximate ``k`` nearest ``targets`` rows of each query row by best-first search on a neighbour graph.

    Parameters
    ----------
    targets, nav_targets
        ``(m, d)`` points searched, in float64 (the distances returned) and float32 (to move through the
        graph: half the memory traffic).
    indptr, indices
        The search graph over ``targets`` in CSR form (row ``v``'s neighbours).
    cross_ptr, cross_idx
        More edges, in the same form (edges between batches); both lists of a row are followed.
    pivots
        Entry candidates: each query also starts from its ``n_entries`` nearest pivots (none if 0).
    seed_ptr, seed_idx, seed_lists
        Per-query entry points: query ``i`` starts from the targets listed in the rows
        ``seed_idx[seed_ptr[i]:seed_ptr[i + 1]]`` of ``seed_lists`` (``(L, w)``; a target listed
        twice is visited once), and from its nearest pivots. Plain per-query seeds in CSR form are
        ``seed_lists`` of one column.
    queries, nav_queries, query_rows
        Query points, float64 and float32 (``(r, d)``), and which of their rows are searched (``(q,)``
        int64): query ``i`` is row ``query_rows[i]``, so a subset is searched without a copy of its rows.
    k, ef
        Neighbours returned, and size of the search's result pool (``ef >= k``).
    max_visits
        The search of a query stops after this many distance evaluations beyond its seeds and entry
        points (negative: no limit; 0: the nearest of the seeds and entries). A query that has then
        found fewer than ``k`` allowed targets gets the rest by brute force.
    allowed
        ``(m,)`` bool: only these targets may be returned (all are used to move through the graph).
        Must hold at least ``ef`` True values.
    out_idx, out_dist
        ``(q, k)`` outputs: target rows and Euclidean distances, nearest first (ties: lower row).

    Notes
    -----
    The search keeps a pool of the ``ef`` nearest allowed targets seen and expands candidates in order
    of distance until the nearest unexpanded one is farther than the pool's farthest (HNSW's layer-0
    search). The pool is then re-measured with the exact column-order sum and sorted. A query whose
    search reaches fewer than ``k`` allowed targets (a small graph component) is answered by brute
    force over the allowed targets. Each query is handled by one thread in a fixed order, so the
    output does not depend on the number of threads.
    """
    m, d = targets.shape
    n_queries = query_rows.shape[0]
    n_pivots = pivots.shape[0]
    block_size = max(SEARCH_BLOCK, (n_queries + MAX_SEARCH_BLOCKS - 1) // MAX_SEARCH_BLOCKS)
    n_blocks = (n_queries + block_size - 1) // block_size
    n_entries = min(n_entries, n_pivots)
    for block in prange(n_blocks):
        stamp = np.full(m, -1, dtype=np.int32)
        cand_d = np.empty(m + 1)
        cand_i = np.empty(m + 1, dtype=np.int64)
        pool = max(ef, k)
        res_d = np.empty(pool)
        res_i = np.empty(pool, dtype=np.int64)
        ent_d = np.empty(max(n_entries, 1))
        ent_i = np.empty(max(n_entries, 1), dtype=np.int64)
        for q in range(block * block_size, min(n_queries, (block + 1) * block_size)):
            query = queries[query_rows[q]]
            nav = nav_queries[query_rows[q]]
            n_cand = 0
            n_res = 0
            visits = 0
            for e in range(seed_ptr[q], seed_ptr[q + 1]):
                listed = seed_lists[seed_idx[e]]
                for a in range(listed.shape[0]):
                    v = listed[a]
                    if stamp[v] == q:
                        continue
                    stamp[v] = q
                    dv = _sqdist_fast(nav, nav_targets[v])
                    visits += 1
                    n_cand = _min_push(cand_d, cand_i, n_cand, dv, v)
                    if allowed[v]:
                        n_res = _max_offer(res_d, res_i, n_res, ef, dv, v)
            visits = 0  # the budget counts evaluations beyond the seeds
            n_ent = 0
            for p in range(n_pivots if n_entries > 0 else 0):
                v = pivots[p]
                n_ent = _max_offer(ent_d, ent_i, n_ent, n_entries, _sqdist_fast(nav, nav_targets[v]), v)
            for e in range(n_ent):
                v = ent_i[e]
                if stamp[v] == q:
                    continue
                stamp[v] = q
                n_cand = _min_push(cand_d, cand_i, n_cand, ent_d[e], v)
                if allowed[v]:
                    n_res = _max_offer(res_d, res_i, n_res, ef, ent_d[e], v)
            while n_cand > 0:
                cd = cand_d[0]
                ci = cand_i[0]
                if (n_res == ef and cd > res_d[0]) or (max_visits >= 0 and visits >= max_visits):
                    break
                n_cand = _min_pop(cand_d, cand_i, n_cand)
                n_own = indptr[ci + 1] - indptr[ci]
                n_all = n_own + cross_ptr[ci + 1] - cross_ptr[ci]
                for e in range(n_all):
                    v = indices[indptr[ci] + e] if e < n_own else cross_idx[cross_ptr[ci] + e - n_own]
                    if stamp[v] == q:
                        continue
                    stamp[v] = q
                    dv = _sqdist_fast(nav, nav_targets[v])
                    visits += 1
                    if n_res < ef or dv < res_d[0]:
                        n_cand = _min_push(cand_d, cand_i, n_cand, dv, v)
                        if allowed[v]:
                            n_res = _max_offer(res_d, res_i, n_res, ef, dv, v)
            if n_res < k:  # too few reachable: brute force over every allowed target
                n_res = 0
                for v in range(m):
                    if allowed[v]:
                        n_res = _max_offer(res_d, res_i, n_res, pool, _sqdist(query, targets[v]), v)
            for a in range(n_res):
                res_d[a] = _sqdist(query, targets[res_i[a]])
            _write_sorted(res_d, res_i, n_res, k, out_idx[q], out_dist[q])


@njit(cache=True)
def spaced_landmarks(
    indptr: np.ndarray, indices: np.ndarray, cross_ptr: np.ndarray, cross_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks two hops apart, taken greedily in row order (deterministic), and who covers each row.

    Row ``v`` becomes a landmark unless an earlier landmark reaches it in at most two hops (following
    either edge list as stored); then ``cover[v]`` is the first such landmark (``cover[v] = v`` for a
    landmark). On a kNN graph of degree ~20 about one row in forty becomes a landmark.
    """
    n = indptr.shape[0] - 1
    landmark = np.zeros(n, dtype=np.bool_)
    cover = np.full(n, -1, dtype=np.int64)
    for v in range(n):
        if cover[v] >= 0:
            continue
        landmark[v] = True
        cover[v] = v
        for a in range(2):  # the two edge lists, in separate loops (a per-edge branch is far slower)
            ptr_a, idx_a = (indptr, indices) if a == 0 else (cross_ptr, cross_idx)
            for e in range(ptr_a[v], ptr_a[v + 1]):
                u = idx_a[e]
                if cover[u] < 0:
                    cover[u] = v
                for b in range(2):
                    ptr_b, idx_b = (indptr, indices) if b == 0 else (cross_ptr, cross_idx)
                    for f in range(ptr_b[u], ptr_b[u + 1]):
                        if cover[idx_b[f]] < 0:
                            cover[idx_b[f]] = v
    return landmark, cover


@njit(cache=True, inline="always")
def _add_landmark(near, count, landmark, v, u):
    """Append landmark ``u`` to row ``v``'s landmarks (not to a landmark's; once; while there is room)."""
    if landmark[v] or count[v] == near.shape[1]:
        return
    for c in range(count[v]):
        if near[v, c] == u:
            return
    near[v, count[v]] = u
    count[v] += 1


@njit(cache=True)
def landmark_seeds(
    indptr: np.ndarray,
    indices: np.ndarray,
    cross_ptr: np.ndarray,
    cross_idx: np.ndarray,
    landmark: np.ndarray,
    cover: np.ndarray,
    slot: np.ndarray,
    max_landmarks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmarks whose neighbour lists seed each row that is not a landmark: up to ``max_landmarks`` near it.

    A row's landmarks are the one that covers it (:func:`spaced_landmarks`), then those that reach it in
    one hop, then in two (each in landmark order; edges followed as stored, from the landmark). Walking
    out from the landmarks (a few percent of the rows) is far cheaper than from every row. ``slot[u]``
    is landmark ``u``'s row in the landmarks' lists. Returns the non-landmark rows and, in CSR form,
    their landmarks' slots (the ``seed_ptr, seed_idx`` of :func:`graph_knn`, whose ``seed_lists`` are
    the lists).
    """
    n = indptr.shape[0] - 1
    near = np.empty((n, max_landmarks), dtype=np.int64)
    count = np.zeros(n, dtype=np.int64)
    marks = np.flatnonzero(landmark)
    for v in range(n):
        if not landmark[v]:
            near[v, 0] = cover[v]
            count[v] = 1
    for hops in range(1, 3):
        for u in marks:
            for a in range(2):  # the two edge lists, in separate loops (a per-edge branch is far slower)
                ptr_a, idx_a = (indptr, indices) if a == 0 else (cross_ptr, cross_idx)
                for e in range(ptr_a[u], ptr_a[u + 1]):
                    x = idx_a[e]
                    if hops == 1:
                        _add_landmark(near, count, landmark, x, u)
                        continue
                    for b in range(2):
                        ptr_b, idx_b = (indptr, indices) if b == 0 else (cross_ptr, cross_idx)
                        for f in range(ptr_b[x], ptr_b[x + 1]):
                            _add_landmark(near, count, landmark, idx_b[f], u)
    rows = np.flatnonzero(~landmark)
    ptr = np.zeros(rows.size + 1, dtype=np.int64)
    for i in range(rows.size):
        ptr[i + 1] = ptr[i] + count[rows[i]]
    slots = np.empty(ptr[rows.size], dtype=np.int64)
    for i in range(rows.size):
        for c in range(count[rows[i]]):
            slots[ptr[i] + c] = slot[near[rows[i], c]]
    return rows, ptr, slots
