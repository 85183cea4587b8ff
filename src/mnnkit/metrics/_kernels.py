"""Numba kernels of the metrics (compiled lazily on first call, cached on disk).

Callers validate everything in Python first; these kernels take plain, contiguous arrays only.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def simpson_index(distances, indices, codes, n_categories, perplexity, tol, max_iter, out):
    """Per-cell Simpson index of ``codes`` under a Gaussian kernel calibrated to ``perplexity``.

    For each row, the kernel width ``beta`` is found by bisection (start 1, doubling/halving until
    bracketed, at most ``max_iter`` evaluations, stop when ``|H - log(perplexity)| < tol``) on the entropy
    ``H = log(sum w) + beta * sum(d w) / sum(w)`` of the weights ``w = exp(-beta d)``. The weights of the
    last evaluation, normalised, give category masses ``p_c``; ``out[i] = sum p_c^2``. A row whose
    weights all underflow (``H == 0``) gets ``-1``.
    """
    n_rows, k = distances.shape
    log_target = np.log(perplexity)
    weights = np.empty(k)
    mass = np.empty(n_categories)
    for i in range(n_rows):
        beta = 1.0
        low = -np.inf
        high = np.inf
        entropy = 0.0
        for _ in range(max_iter):
            total = 0.0
            weighted = 0.0
            for j in range(k):
                w = np.exp(-distances[i, j] * beta)
                weights[j] = w
                total += w
                weighted += distances[i, j] * w
            if total == 0.0:
                entropy = 0.0
                weights[:] = 0.0
            else:
                entropy = np.log(total) + beta * weighted / total
                for j in range(k):
                    weights[j] /= total
            gap = entropy - log_target
            if abs(gap) < tol:
                break
            if gap > 0.0:
                low = beta
                beta = beta * 2.0 if high == np.inf else (beta + high) / 2.0
            else:
                high = beta
                beta = beta / 2.0 if low == -np.inf else (beta + low) / 2.0
        if entropy == 0.0:
            out[i] = -1.0
            continue
        mass[:] = 0.0
        for j in range(k):
            mass[codes[indices[i, j]]] += weights[j]
        simpson = 0.0
        for c in range(n_categories):
            simpson += mass[c] * mass[c]
        out[i] = simpson
