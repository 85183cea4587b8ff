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


@numba.njit(cache=True)
def umap_bandwidths(distances, target, tol, n_iter, min_scale, rho, sigma):
    """Per-cell offset ``rho`` and bandwidth ``sigma`` of UMAP's fuzzy-set weights, in float32.

    ``distances`` is ``(n_cells, k)`` float32, each row sorted, the cell itself *not* listed (UMAP's
    own input lists it first at distance 0; its first column is skipped, so the sums are the same).
    ``rho`` is the smallest non-zero distance (0 if none; the first non-zero one in sorted rows).
    ``sigma`` is found by bisection (start 1, doubling until bracketed, at most ``n_iter`` steps, stop
    when ``|psum - target| < tol``) so that ``psum = sum_j exp(-max(d_j - rho, 0) / sigma)`` equals
    ``target = log2(k + 1)``, then floored at ``min_scale`` times the mean distance of the row (the mean
    over all rows if ``rho == 0``), the self distance 0 counted in both means. The arithmetic is float32
    as in umap-learn's ``smooth_knn_dist`` (scanpy's and scib-metrics' connectivities), so the
    bandwidths agree with it to float32 rounding.
    """
    n_rows, k = distances.shape
    big = np.float32(np.finfo(np.float32).max)
    one = np.float32(1.0)
    two = np.float32(2.0)
    total = 0.0
    for i in range(n_rows):
        for j in range(k):
            total += distances[i, j]
    mean_all = total / (n_rows * (k + 1))
    for i in range(n_rows):
        r = np.float32(0.0)
        for j in range(k):
            if distances[i, j] > 0 and (r == 0 or distances[i, j] < r):
                r = distances[i, j]
        rho[i] = r
        lo = np.float32(0.0)
        hi = big
        mid = one
        for _ in range(n_iter):
            psum = np.float32(0.0)
            for j in range(k):
                d = distances[i, j] - r
                if d > 0:
                    psum += np.exp(-(d / mid))
                else:
                    psum += one
            if abs(psum - target) < tol:
                break
            if psum > target:
                hi = mid
                mid = np.float32((lo + hi) / two)
            else:
                lo = mid
                if hi >= big:
                    mid = mid * two
                else:
                    mid = np.float32((lo + hi) / two)
        row_total = 0.0
        for j in range(k):
            row_total += distances[i, j]
        floor = min_scale * (row_total / (k + 1) if r > 0 else mean_all)
        sigma[i] = mid if mid >= floor else np.float32(floor)


@numba.njit(cache=True)
def umap_weights(distances, rho, sigma, out):
    """UMAP membership strength of every listed neighbour: ``exp(-(d - rho) / sigma)``, 1 within ``rho``."""
    n_rows, k = distances.shape
    one = np.float32(1.0)
    for i in range(n_rows):
        for j in range(k):
            d = distances[i, j] - rho[i]
            if d <= 0 or sigma[i] == 0:
                out[i, j] = one
            else:
                out[i, j] = np.exp(-(d / sigma[i]))
