"""The one place where mnnkit changes how many threads numba and BLAS use.

Every change is scoped: :func:`thread_limits` sets the numba and/or BLAS thread counts for the
duration of a ``with`` block and restores the caller's settings afterwards, also when the block
raises. ``numba.set_num_threads`` acts on the calling thread only, so other threads of the process
are not affected; BLAS limits (threadpoolctl) are process-wide while the block runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mnnkit._config import PARALLEL_TASKS_PER_THREAD
from mnnkit._validation import is_int

__all__ = ["job_threads", "numba_thread_count", "resolve_n_jobs", "run_in_ranges", "thread_limits"]


def numba_thread_count() -> int:
    """Threads numba's parallel kernels use on the calling thread now."""
    import numba

    return int(numba.get_num_threads())


def resolve_n_jobs(n_jobs: object, name: str = "n_jobs") -> int:
    """The thread count an ``n_jobs`` parameter asks for: scanpy's convention, resolved to a number >= 1.

    ``None`` follows ``scanpy.settings.n_jobs``; a positive int is itself; negative ints count back from
    the machine's cores as joblib does (-1 all cores, -2 all but one, ...). 0 or a non-integer is an error.
    """
    if n_jobs is None:
        import scanpy as sc

        n_jobs = sc.settings.n_jobs
    if not is_int(n_jobs) or n_jobs == 0:
        msg = f"{name} must be None or a non-zero integer, got {n_jobs!r}"
        raise (TypeError if not is_int(n_jobs) else ValueError)(msg)
    cores = os.cpu_count() or 1
    return max(1, int(n_jobs) if n_jobs > 0 else cores + 1 + int(n_jobs))


def job_threads(n_jobs: object, name: str = "n_jobs") -> contextlib.AbstractContextManager[None]:
    """The thread limits of a heavy function's ``n_jobs`` parameter, for the duration of its call.

    An int (scanpy's and joblib's convention, see :func:`resolve_n_jobs`) limits numba and BLAS to
    that many threads. ``None`` follows ``scanpy.settings.n_jobs`` once it has been set to anything
    but scanpy's default of 1; otherwise (scanpy not imported, or ``n_jobs`` left at 1) the threads
    stay as they are: numba's and BLAS's own settings, every core unless ``NUMBA_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` say otherwise. Results do not depend on the thread count (the kernels give each
    output row to one thread), except in the last bits of BLAS sums and in pynndescent's graphs.
    """
    if n_jobs is None:
        scanpy = sys.modules.get("scanpy")
        configured = getattr(getattr(scanpy, "settings", None), "n_jobs", None)
        if configured is None or configured == 1:
            return contextlib.nullcontext()
        n_jobs = configured
    threads = resolve_n_jobs(n_jobs, name)
    return thread_limits(numba=threads, blas=threads)


@contextlib.contextmanager
def thread_limits(*, numba: int | None = None, blas: int | None = None) -> Iterator[None]:
    """Run a block with at most ``numba`` numba threads and ``blas`` BLAS threads (``None``: unchanged).

    The numba count is capped at what numba was started with (``NUMBA_NUM_THREADS``). On exit the
    numba thread count is restored even if code inside the block (pynndescent, for example) changed
    it.
    """
    import numba as nb

    previous = nb.get_num_threads()
    blas_limit = contextlib.nullcontext()
    if blas is not None:
        from threadpoolctl import threadpool_limits

        blas_limit = threadpool_limits(limits=max(1, int(blas)), user_api="blas")
    with blas_limit:
        if numba is not None:
            nb.set_num_threads(max(1, min(int(numba), nb.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            nb.set_num_threads(previous)


# --- Row-range parallelism of the kernels --------------------------------------------------
# Serial numba kernels run on a small pool of Python threads.
#
# numba's ``parallel=True`` adds about 0.4 s of compile time to every kernel that uses it (the parfor
# passes and a second compile of the loop body), which on the shipped data was most of the first call's
# cost. mnnkit's parallel kernels are instead compiled serial, with ``nogil=True``, and take the range of
# output rows ``first, last`` they fill; :func:`run_in_ranges` splits the rows into ranges and calls the
# kernel on them from up to :func:`numba_thread_count` threads (the limit set by
# ``n_jobs`` and :func:`thread_limits`), one of them the calling thread.
#
# Each output row is computed by one call, in a fixed order, whatever the number of threads and their
# scheduling, so the results are the same bit for bit on one thread or many.

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
