"""Row-range parallelism for mnnkit's kernels: serial numba functions run on a small pool of Python threads.

numba's ``parallel=True`` adds about 0.4 s of compile time to every kernel that uses it (the parfor
passes and a second compile of the loop body), which on the shipped data was most of the first call's
cost. mnnkit's parallel kernels are instead compiled serial, with ``nogil=True``, and take the range of
output rows ``first, last`` they fill; :func:`run_in_ranges` splits the rows into ranges and calls the
kernel on them from up to :func:`mnnkit._threads.numba_thread_count` threads (the limit set by
``n_jobs`` and :func:`mnnkit._threads.thread_limits`), one of them the calling thread.

Each output row is computed by one call, in a fixed order, whatever the number of threads and their
scheduling, so the results are the same bit for bit on one thread or many.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mnnkit._config import PARALLEL_TASKS_PER_THREAD
from mnnkit._threads import numba_thread_count

__all__ = ["run_in_ranges"]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's pool of kernel threads (made on first use): one fewer than numba may start at most."""
    global _pool
    with _pool_lock:
        if _pool is None:
            import numba

            workers = max(1, numba.config.NUMBA_NUM_THREADS - 1)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mnnkit-kernel")
        return _pool


def run_in_ranges(kernel: Callable[..., Any], n: int, block: int, *args: Any) -> list[Any]:
    """Call ``kernel(*args, first, last)`` on ranges that cover ``range(n)``, in parallel; return the results.

    Parameters
    ----------
    kernel
        A serial numba kernel compiled with ``nogil=True`` (so that the threads run at once) that handles
        rows ``first:last`` and writes nothing outside them.
    n
        Number of rows.
    block
        The ranges start at multiples of ``block`` (a kernel's own tile of rows or columns).
    *args
        The kernel's other arguments, before ``first, last``.

    Returns
    -------
    The kernel's return values, one per range, in the order of the ranges (a single call on one
    thread, or when ``n <= block``).
    """
    threads = numba_thread_count()
    n_blocks = -(-n // block)
    if threads <= 1 or n_blocks <= 1:
        return [kernel(*args, 0, n)]
    n_tasks = min(n_blocks, threads * PARALLEL_TASKS_PER_THREAD)
    per_task = -(-n_blocks // n_tasks)
    bounds = [(t * per_task * block, min((t + 1) * per_task * block, n)) for t in range(n_tasks)]
    bounds = [b for b in bounds if b[0] < b[1]]
    results: list[Any] = [None] * len(bounds)
    tasks = iter(range(len(bounds)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                t = next(tasks, None)
            if t is None:
                return
            results[t] = kernel(*args, *bounds[t])

    helpers = min(threads, len(bounds)) - 1
    pool = _executor()
    futures = [pool.submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for future in futures:
            future.result()
    return results
