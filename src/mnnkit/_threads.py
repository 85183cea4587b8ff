"""The one place where mnnkit changes how many threads numba and BLAS use.

Every change is scoped: :func:`thread_limits` sets the numba and/or BLAS thread counts for the
duration of a ``with`` block and restores the caller's settings afterwards, also when the block
raises. ``numba.set_num_threads`` acts on the calling thread only, so other threads of the process
are not affected; BLAS limits (threadpoolctl) are process-wide while the block runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["numba_thread_count", "thread_limits"]


def numba_thread_count() -> int:
    """Threads numba's parallel kernels use on the calling thread now."""
    import numba

    return int(numba.get_num_threads())


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
