"""The one small sort that mnnkit's numba kernels share: by (key, label), in place, compiled once.

The exact neighbour search ranks each row's candidates with it, and var.adj's weighted quantile sorts
its last few positions: one function compiled once per process (and cached), instead of numba's
generic sorts compiled into every kernel that calls them (see docs/compile_cache.md).
"""

from __future__ import annotations

import numba

from mnnkit._config import SORT_INSERTION_MAX

__all__ = ["sort_pairs"]


@numba.njit(cache=True)
def sort_pairs(keys, labels, n):  # pragma: no cover - traced by numba
    """Sort ``keys[:n]`` in place by (key, label), moving ``labels[:n]`` with them.

    A total order (the labels are distinct), so the result does not depend on the algorithm: insertion
    sort for the few candidates of a typical row, heapsort (``O(n log n)``, no recursion, no scratch)
    beyond. One small function compiled once, instead of numba's generic sorts inlined into each kernel.
    """
    if n <= SORT_INSERTION_MAX:
        for a in range(1, n):
            key = keys[a]
            label = labels[a]
            b = a - 1
            while b >= 0 and (keys[b] > key or (keys[b] == key and labels[b] > label)):
                keys[b + 1] = keys[b]
                labels[b + 1] = labels[b]
                b -= 1
            keys[b + 1] = key
            labels[b + 1] = label
        return
    # heapsort: build a max-heap by (key, label), then move its root to the end of the shrinking heap
    for end in range(n, 0, -1):
        first = n // 2 - 1 if end == n else 0
        if end < n:
            keys[0], keys[end] = keys[end], keys[0]
            labels[0], labels[end] = labels[end], labels[0]
        for start in range(first, -1, -1):
            pos = start
            while True:
                child = 2 * pos + 1
                if child >= end:
                    break
                other = child + 1
                if other < end and (
                    keys[child] < keys[other] or (keys[child] == keys[other] and labels[child] < labels[other])
                ):
                    child = other
                if keys[pos] > keys[child] or (keys[pos] == keys[child] and labels[pos] > labels[child]):
                    break
                keys[pos], keys[child] = keys[child], keys[pos]
                labels[pos], labels[child] = labels[child], labels[pos]
                pos = child
