"""Serial numba kernels run inside dask tasks on CSR blocks.

Compiled without ``parallel`` and with ``nogil``: several can run at once in one process's threads,
which numba's parallel kernels (workqueue threading layer) do not allow.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def csr_row_sumsq_serial(data: np.ndarray, indptr: np.ndarray, n_rows: int) -> np.ndarray:
    """Per-row sum of squares of a CSR block (stored entries in order)."""
    out = np.zeros(n_rows)
    for i in range(n_rows):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * data[p]
        out[i] = acc
    return out


@njit(cache=True, nogil=True)
def csr_group_sums_serial(
    data: np.ndarray,
    indices: np.ndarray,
    indptr: np.ndarray,
    divisor: np.ndarray,
    groups: np.ndarray,
    n_groups: int,
    n_cols: int,
) -> np.ndarray:
    """``out[g] = sum over rows i of group g of X[i] / divisor[i]`` for a CSR block (rows in order)."""
    out = np.zeros((n_groups, n_cols))
    for i in range(groups.shape[0]):
        g = groups[i]
        s = divisor[i]
        for p in range(indptr[i], indptr[i + 1]):
            out[g, indices[p]] += data[p] / s
    return out
