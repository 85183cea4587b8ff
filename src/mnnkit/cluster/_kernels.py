"""Numba kernels of the Gaussian-mixture EM: the E-step and the M-step sufficient statistics.

The public estimator validates everything in Python first; these kernels take plain C-contiguous
float64 arrays and do no checking. Rows are processed in fixed chunks (``bounds``, which depend on
the data size only), each chunk accumulates into its own slot of a partial-sum array, and the
partial sums are added in chunk order by the caller: results are bit-for-bit reproducible whatever
the number of threads. ``fastmath={"contract"}`` only lets the compiler fuse multiply-adds (no
reassociation), which keeps the summation order fixed.

Precision factors follow scikit-learn: for a full covariance ``Sigma = L L^T`` the factor is
``P = L^{-T}`` (upper triangular) so that ``(x - mu)^T Sigma^{-1} (x - mu) = ||(x - mu)^T P||^2``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["estep_diag", "estep_full", "scatter_full", "weighted_feature_sums"]


@nb.njit(cache=True)
def _normalise_row(lp, resp_row):
    """Log-sum-exp of ``lp``; writes ``exp(lp - lse)`` into ``resp_row`` and returns ``lse``."""
    mx = -np.inf
    for k in range(lp.shape[0]):
        if lp[k] > mx:
            mx = lp[k]
    s = 0.0
    for k in range(lp.shape[0]):
        s += np.exp(lp[k] - mx)
    lse = mx + np.log(s)
    for k in range(lp.shape[0]):
        resp_row[k] = np.exp(lp[k] - lse)
    return lse


@nb.njit(parallel=True, cache=True, fastmath={"contract"})
def estep_full(X, means, prec_chol, const, bounds, resp, norm):
    """E-step for full (``prec_chol`` ``(K, d, d)``) or tied (``(1, d, d)``) covariances.

    For each row ``x`` and component ``k``:
    ``log p_k(x) = const[k] - ||x^T P_k - mu_k^T P_k||^2 / 2`` with
    ``const[k] = log w_k + log det P_k - d log(2 pi) / 2``; then ``norm[i]`` = log-sum-exp over
    ``k`` and ``resp[i, k] = exp(log p_k(x_i) - norm[i])``.

    ``P_k`` must be upper triangular with exact zeros below the diagonal. Each chunk of rows (a
    tile of ``bounds[c + 1] - bounds[c]`` rows, e.g. 128) is transposed once, and ``X_tile P_k`` is
    accumulated four rows of ``P_k`` at a time with the tile rows as the contiguous inner loop,
    so the compiler vectorises it; ``d^2 / 2`` multiply-adds per row and component and
    O(d * tile + K * tile) memory per thread.
    """
    d = X.shape[1]
    n_comp = means.shape[0]
    shared = prec_chol.shape[0] == 1
    for c in nb.prange(bounds.shape[0] - 1):
        r0 = bounds[c]
        m = bounds[c + 1] - r0
        XT = np.empty((d, m))
        Yt = np.empty((d, m))
        maha = np.empty(m)
        lp = np.empty((m, n_comp))
        offset = np.empty(d)
        for r in range(m):
            xr = X[r0 + r]
            for a in range(d):
                XT[a, r] = xr[a]
        for k in range(n_comp):
            P = prec_chol[0] if shared else prec_chol[k]
            mu = means[k]
            for j in range(d):  # offset = mu^T P
                s = 0.0
                for a in range(j + 1):
                    s += mu[a] * P[a, j]
                offset[j] = s
            for j in range(d):
                Yj = Yt[j]
                o = offset[j]
                for r in range(m):
                    Yj[r] = -o
            a = 0
            while a + 4 <= d:  # Y[j] += sum_{t<4} X[a+t] P[a+t, j]  (P[a+t, j] = 0 for j < a+t)
                X0 = XT[a]
                X1 = XT[a + 1]
                X2 = XT[a + 2]
                X3 = XT[a + 3]
                for j in range(a, d):
                    p0 = P[a, j]
                    p1 = P[a + 1, j]
                    p2 = P[a + 2, j]
                    p3 = P[a + 3, j]
                    Yj = Yt[j]
                    for r in range(m):
                        Yj[r] += X0[r] * p0 + X1[r] * p1 + X2[r] * p2 + X3[r] * p3
                a += 4
            while a < d:
                Xa = XT[a]
                for j in range(a, d):
                    p = P[a, j]
                    Yj = Yt[j]
                    for r in range(m):
                        Yj[r] += Xa[r] * p
                a += 1
            for r in range(m):
                maha[r] = 0.0
            for j in range(d):
                Yj = Yt[j]
                for r in range(m):
                    maha[r] += Yj[r] * Yj[r]
            for r in range(m):
                lp[r, k] = const[k] - 0.5 * maha[r]
        for r in range(m):
            norm[r0 + r] = _normalise_row(lp[r], resp[r0 + r])


@nb.njit(parallel=True, cache=True, fastmath={"contract"})
def estep_diag(X, means, prec, const, bounds, resp, norm):
    """E-step for diagonal/spherical covariances: ``prec[k, j] = 1 / sqrt(Sigma_k[j, j])``.

    Same outputs as :func:`estep_full` with ``||(x - mu_k) * prec[k]||^2`` as the Mahalanobis term.
    """
    d = X.shape[1]
    n_comp = means.shape[0]
    for c in nb.prange(bounds.shape[0] - 1):
        lp = np.empty(n_comp)
        for i in range(bounds[c], bounds[c + 1]):
            xi = X[i]
            for k in range(n_comp):
                mu = means[k]
                pk = prec[k]
                maha = 0.0
                for j in range(d):
                    t = (xi[j] - mu[j]) * pk[j]
                    maha += t * t
                lp[k] = const[k] - 0.5 * maha
            norm[i] = _normalise_row(lp, resp[i])


@nb.njit(parallel=True, cache=True, fastmath={"contract"})
def weighted_feature_sums(X, resp, means, bounds, nk_part, out_part):
    """Responsibility-weighted sums per chunk ``c`` and component ``k``, feature by feature.

    With ``means=None`` (the first pass of the M-step): ``out_part[c, k] = sum_i r_ik x_i``; with
    means (diagonal covariances): ``out_part[c, k, j] = sum_i r_ik (x_ij - mu_kj)^2``. Unless it is
    None, ``nk_part[c, k]`` also receives ``sum_i r_ik``. A None argument is settled when numba compiles
    the kernel (one specialisation per form), so the tests cost nothing in the loops.
    """
    d = X.shape[1]
    n_comp = resp.shape[1]
    for c in nb.prange(bounds.shape[0] - 1):
        for i in range(bounds[c], bounds[c + 1]):
            xi = X[i]
            for k in range(n_comp):
                r = resp[i, k]
                if r == 0.0:
                    continue
                if nk_part is not None:
                    nk_part[c, k] += r
                row = out_part[c, k]
                if means is None:
                    for j in range(d):
                        row[j] += r * xi[j]
                else:
                    mu = means[k]
                    for j in range(d):
                        t = xi[j] - mu[j]
                        row[j] += r * t * t


@nb.njit(parallel=True, cache=True, fastmath={"contract"})
def scatter_full(X, resp, means, bounds, out_part):
    """Lower triangles of ``sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T`` per chunk.

    ``out_part`` is ``(n_chunks, K, d, d)`` (full) or ``(n_chunks, 1, d, d)`` (tied: summed over
    components). Rows whose responsibility is exactly zero are skipped (they add nothing); the
    others are taken eight at a time, so each pass over the ``d x d`` accumulator does eight
    rank-one updates (zero-padded at the end of a chunk). O(chunk + 16 d) memory per thread.
    """
    d = X.shape[1]
    n_comp = resp.shape[1]
    tied = out_part.shape[1] == 1
    group = 8
    for c in nb.prange(bounds.shape[0] - 1):
        lo = bounds[c]
        hi = bounds[c + 1]
        rows = np.empty(hi - lo, dtype=np.int64)
        D = np.empty((group, d))
        W = np.empty((d, group))
        for k in range(n_comp):
            count = 0
            for i in range(lo, hi):
                if resp[i, k] != 0.0:
                    rows[count] = i
                    count += 1
            mu = means[k]
            C = out_part[c, 0] if tied else out_part[c, k]
            for g0 in range(0, count, group):
                for t in range(group):
                    if g0 + t < count:
                        i = rows[g0 + t]
                        r = resp[i, k]
                        xi = X[i]
                        for a in range(d):
                            v = xi[a] - mu[a]
                            D[t, a] = v
                            W[a, t] = r * v
                    else:
                        for a in range(d):
                            D[t, a] = 0.0
                            W[a, t] = 0.0
                D0, D1, D2, D3 = D[0], D[1], D[2], D[3]
                D4, D5, D6, D7 = D[4], D[5], D[6], D[7]
                for a in range(d):
                    Wa = W[a]
                    w0, w1, w2, w3 = Wa[0], Wa[1], Wa[2], Wa[3]
                    w4, w5, w6, w7 = Wa[4], Wa[5], Wa[6], Wa[7]
                    Ca = C[a]
                    for b in range(a + 1):
                        Ca[b] += (w0 * D0[b] + w1 * D1[b] + w2 * D2[b] + w3 * D3[b]) + (
                            w4 * D4[b] + w5 * D5[b] + w6 * D6[b] + w7 * D7[b]
                        )
