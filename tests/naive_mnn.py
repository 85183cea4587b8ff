"""A slow, obviously-correct classic MNN correction written from ALGORITHM.md section 1.

It shares no code with mnnkit: dense numpy, explicit difference vectors, per-cell loops, full
distance matrices (fine for the small data of the tests). The tests compare mnnkit against it for
the configurations that have no batchelor reference bundle (svd_dim, correct_all, cos_norm_in=False,
prop_k, k per side).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


def _cos(x: np.ndarray, l2: np.ndarray) -> np.ndarray:
    return x / np.maximum(l2, 1e-8)[:, None]


def _mutual_pairs(left: np.ndarray, right: np.ndarray, k_left: int, k_right: int) -> list[tuple[int, int]]:
    d2 = ((left[:, None, :] - right[None, :, :]) ** 2).sum(-1)
    near_right = np.argsort(d2, axis=1, kind="stable")[:, :k_right]  # for each left cell
    near_left = np.argsort(d2.T, axis=1, kind="stable")[:, :k_left]  # for each right cell
    return [(lc, int(r)) for lc in range(left.shape[0]) for r in near_right[lc] if lc in near_left[r]]


def _basis(cells: np.ndarray, dim: int, cols: np.ndarray | None) -> np.ndarray:
    centred = cells - cells.mean(axis=0)
    if cols is None:
        return np.linalg.svd(centred, full_matrices=False)[2][:dim].T
    u, s, vt = np.linalg.svd(centred[:, cols], full_matrices=False)
    basis = np.zeros((cells.shape[1], dim))
    basis[cols] = vt[:dim].T
    others = np.setdiff1d(np.arange(cells.shape[1]), cols)
    basis[others] = centred[:, others].T @ u[:, :dim] / s[:dim]
    return basis


def _remove(c: np.ndarray, basis: np.ndarray, cols: np.ndarray | None) -> np.ndarray:
    coef = c @ basis if cols is None else c[:, cols] @ basis[cols]
    return c - coef @ basis.T


def _scales(left: np.ndarray, right: np.ndarray, corr: np.ndarray, sigma: float) -> np.ndarray:
    out = np.ones(right.shape[0])
    for j in range(right.shape[0]):
        norm = np.linalg.norm(corr[j])
        if norm == 0:
            continue
        g = corr[j] / norm

        def log_weights(y, j=j, g=g):
            diff = y - right[j]
            resid = diff - np.outer(diff @ g, g)
            return -(resid**2).sum(1) / sigma

        p = right[j] @ g
        own_pos = right @ g
        own_w = log_weights(right)
        own_w[j] = 0.0
        below = (own_pos <= p) | (np.arange(right.shape[0]) == j)
        log_f = np.logaddexp.accumulate(own_w[below])[-1] - np.logaddexp.accumulate(own_w)[-1]
        q = left @ g
        lam = log_weights(left)
        order = np.lexsort((lam, q))
        cumulative = np.logaddexp.accumulate(lam[order])
        target = log_f + np.logaddexp.accumulate(lam)[-1]
        hit = np.flatnonzero(cumulative >= target)
        q_star = q[order[hit[0]]] if hit.size else q[order[-1]]
        out[j] = max((q_star - p) / norm, 1.0)
    return out


def naive_mnn_correct(
    batches: list[np.ndarray],
    *,
    k: int = 20,
    k_pair: tuple[int, int] | None = None,
    prop_k: float | None = None,
    sigma: float = 0.1,
    cos_norm_in: bool = True,
    cos_norm_out: bool = True,
    var_adj: bool = True,
    svd_dim: int = 0,
    subset: np.ndarray | None = None,
    correct_all: bool = False,
    order: list[int] | None = None,
) -> tuple[list[np.ndarray], list[list[tuple[int, int]]]]:
    """Correct ``batches`` (list of cells x genes); return the corrected out-space batches and pairs.

    Pairs are positions inside each step's (left node, right batch).
    """
    n_genes = batches[0].shape[1]
    sub = np.arange(n_genes) if subset is None else np.asarray(subset)
    proper = sub.size < n_genes
    l2 = [np.sqrt((b[:, sub] ** 2).sum(1)) for b in batches]
    data_in = [(_cos(b[:, sub], n) if cos_norm_in else b[:, sub].copy()) for b, n in zip(batches, l2, strict=True)]
    out_genes = np.arange(n_genes) if correct_all else sub
    data_out = [
        (_cos(b[:, out_genes], n) if cos_norm_out else b[:, out_genes].copy()) for b, n in zip(batches, l2, strict=True)
    ]
    # columns of out-space that hold the subset genes
    out_sub = np.searchsorted(out_genes, sub) if (correct_all and proper) else None
    order = list(range(len(batches))) if order is None else order

    left_in, left_out = data_in[order[0]], data_out[order[0]]
    left_members = [order[0]]
    all_pairs = []
    for b in order[1:]:
        right_in, right_out = data_in[b], data_out[b]
        n_left, n_right = left_in.shape[0], right_in.shape[0]
        if k_pair is not None:
            k_left, k_right = k_pair
        else:
            k_left = k_right = k
        if prop_k is not None:
            k_left, k_right = max(k_left, round(prop_k * n_left)), max(k_right, round(prop_k * n_right))
        pairs = _mutual_pairs(left_in, right_in, min(k_left, n_left), min(k_right, n_right))
        all_pairs.append(pairs)
        mnn = sorted({r for _, r in pairs})
        avg_in = np.array([np.mean([left_in[lc] - right_in[u] for lc, r in pairs if r == u], axis=0) for u in mnn])
        avg_out = np.array([np.mean([left_out[lc] - right_out[u] for lc, r in pairs if r == u], axis=0) for u in mnn])
        mnn_data = right_in[mnn]
        log_density = logsumexp(-((mnn_data[:, None] - mnn_data[None]) ** 2).sum(-1) / sigma, axis=1)
        logits = -((right_in[:, None] - mnn_data[None]) ** 2).sum(-1) / sigma - log_density[None]
        weights = softmax(logits, axis=1)
        corr_in, corr_out = weights @ avg_in, weights @ avg_out
        if svd_dim:
            left_mnn = sorted({lc for lc, _ in pairs})
            for side_in, side_out, rows in ((left_in, left_out, left_mnn), (right_in, right_out, mnn)):
                corr_in = _remove(corr_in, _basis(side_in[rows], svd_dim, None), None)
                corr_out = _remove(corr_out, _basis(side_out[rows], svd_dim, out_sub), out_sub)
        if var_adj:
            corr_in = corr_in * _scales(left_in, right_in, corr_in, sigma)[:, None]
            # out space: the same procedure on the out data restricted to the subset genes
            cols = slice(None) if out_sub is None else out_sub
            scale_out = _scales(left_out[:, cols], right_out[:, cols], corr_out[:, cols], sigma)
            corr_out = corr_out * scale_out[:, None]
        data_in[b] = right_in + corr_in
        data_out[b] = right_out + corr_out
        left_members.append(b)
        left_in = np.vstack([data_in[m] for m in left_members])
        left_out = np.vstack([data_out[m] for m in left_members])
    return data_out, all_pairs
