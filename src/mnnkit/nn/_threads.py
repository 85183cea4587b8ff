"""Run a numba kernel on all threads only when the work pays for the parallel launch.

A parallel region costs little on an idle machine but can stall for a scheduler time slice when
cores are shared, which dominates small layers (a 32-image batch of 32x32 crops). Kernels with
less than :data:`mnnkit._config.NN_PARALLEL_MIN_WORK` inner-loop operations therefore run on the
calling thread only, under :func:`mnnkit._threads.thread_limits` (per calling thread, so other
threads are not affected; the caller's thread count is restored afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mnnkit._config import NN_PARALLEL_MIN_WORK
from mnnkit._threads import numba_thread_count, thread_limits


def run_kernel(kernel: Callable[..., Any], work: int, *args: Any) -> None:
    """Call ``kernel(*args)``, single-threaded when ``work < NN_PARALLEL_MIN_WORK``."""
    if work >= NN_PARALLEL_MIN_WORK or numba_thread_count() == 1:
        kernel(*args)
        return
    with thread_limits(numba=1):
        kernel(*args)
