"""Run a numba kernel on all threads only when the work pays for the parallel launch.

A parallel region costs little on an idle machine but can stall for a scheduler time slice when
cores are shared, which dominates small layers (a 32-image batch of 32x32 crops). Kernels with
less than :data:`mnnkit._config.NN_PARALLEL_MIN_WORK` inner-loop operations therefore run on the
calling thread only (``numba.set_num_threads`` is per calling thread, so this does not affect other
threads).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

from mnnkit._config import NN_PARALLEL_MIN_WORK


def run_kernel(kernel: Callable[..., Any], work: int, *args: Any) -> None:
    """Call ``kernel(*args)``, single-threaded when ``work < NN_PARALLEL_MIN_WORK``."""
    if work >= NN_PARALLEL_MIN_WORK:
        kernel(*args)
        return
    previous = numba.get_num_threads()
    if previous == 1:
        kernel(*args)
        return
    numba.set_num_threads(1)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(previous)
