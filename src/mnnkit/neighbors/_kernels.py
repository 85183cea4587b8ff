"""Numba kernels of the kNN backends (compiled lazily on first call, cached on disk).

Callers validate everything in Python first; these kernels take plain, contiguous arrays only.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _squared_distance(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - traced by numba
    acc = 0.0
    for f in range(a.shape[0]):
        diff = a[f] - b[f]
        acc += diff * diff
    return acc


@numba.njit(cache=True)
def select_exact(gram, query_sqnorm, data_sqnorm, query, data, err_scale, k, self_offset, out_idx, out_dist):
    """Turn one chunk of approximate distances into the exact ``k`` nearest neighbours.

    ``gram[i, j] = query[i] . data[j]`` from BLAS gives approximate squared distances
    ``a_ij = |q_i|^2 - 2 gram_ij + |x_j|^2`` with ``|a_ij - d_ij| <= e_ij = err_scale * (|q_i| + |x_j|)^2``.
    Every point of the true top ``k`` (ties at the ``k``-th distance included) satisfies
    ``a_ij - e_ij <= U_i``, where ``U_i`` bounds the ``k``-th true distance from above; those candidates are
    re-measured exactly (sequential sum of squared differences) and stably sorted, so ties go to the lower
    data index. ``self_offset >= 0`` excludes data row ``self_offset + i`` from query row ``i``.
    Writes Euclidean distances (square roots) into ``out_dist``.
    """
    n_rows, n_data = gram.shape
    approx = np.empty(n_data)
    slack = np.empty(n_data)
    cand = np.empty(n_data, dtype=np.int64)
    cand_d2 = np.empty(n_data)
    data_norm = np.sqrt(data_sqnorm)
    for i in range(n_rows):
        q_norm = np.sqrt(query_sqnorm[i])
        skip = self_offset + i if self_offset >= 0 else -1
        for j in range(n_data):
            approx[j] = query_sqnorm[i] - 2.0 * gram[i, j] + data_sqnorm[j]
            s = q_norm + data_norm[j]
            slack[j] = err_scale * s * s
        if skip >= 0:
            approx[skip] = np.inf
        threshold = np.partition(approx, k - 1)[k - 1]
        upper = -np.inf
        for j in range(n_data):
            if approx[j] <= threshold and approx[j] + slack[j] > upper:
                upper = approx[j] + slack[j]
        n_cand = 0
        for j in range(n_data):
            if j != skip and approx[j] - slack[j] <= upper:
                cand[n_cand] = j
                cand_d2[n_cand] = _squared_distance(query[i], data[j])
                n_cand += 1
        order = np.argsort(cand_d2[:n_cand], kind="mergesort")
        for r in range(k):
            out_idx[i, r] = cand[order[r]]
            out_dist[i, r] = np.sqrt(cand_d2[order[r]])


@numba.njit(cache=True)
def pair_distances(query, data, indices, out):
    """Euclidean distance of each query row ``i`` to the data rows ``indices[i, :]``, into ``out``."""
    for i in range(indices.shape[0]):
        for r in range(indices.shape[1]):
            out[i, r] = np.sqrt(_squared_distance(query[i], data[indices[i, r]]))
