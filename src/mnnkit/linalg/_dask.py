"""Truncated SVD of an implicitly centred, row-weighted **dask** array (cells chunked by rows).

The same algorithm and the same random test matrix as :func:`mnnkit.linalg.randomized_svd` (so the
same seed gives the same answer up to floating-point summation order), with every pass over the data
run as a dask computation: each row block contributes its part of ``A^T A V`` and the parts are
summed in a tree. The computations run on dask's current scheduler: the user's
``distributed.Client`` if one is active, otherwise dask's local threaded scheduler. Nothing here
starts a cluster.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from mnnkit._random import RngLike, as_generator
from mnnkit.linalg._svd import (
    SVDResult,
    _check_sizes,
    _left_from_right,
    _resolve_center,
    _right_singular,
    svd_sign_flip,
)
from mnnkit.linalg._validation import check_vector

__all__ = ["DaskCenteredScaledMatrix", "dask_randomized_svd", "is_dask_array"]

logger = logging.getLogger("mnnkit")


def is_dask_array(x: Any) -> bool:
    """True for a :class:`dask.array.Array` (without importing dask when it is not loaded)."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "to_delayed")


def check_dask_matrix(X: Any, name: str = "X") -> Any:
    """Validate a 2-D dask array of real numbers, chunked along rows only (one chunk across columns).

    Raises a ValueError, with the fix, for a matrix split into several column chunks: the block
    computations need whole rows.
    """
    if X.ndim != 2:
        msg = f"{name} must be 2-D, got a dask array of shape {X.shape}"
        raise ValueError(msg)
    if np.dtype(X.dtype).kind not in "biuf":
        msg = f"{name} must hold real numbers, got dtype {X.dtype}"
        raise TypeError(msg)
    if any(np.isnan(c) for c in X.chunks[0]) or any(np.isnan(c) for c in X.chunks[1]):
        msg = f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first"
        raise ValueError(msg)
    if len(X.chunks[1]) != 1:
        msg = (
            f"{name} is chunked along columns ({len(X.chunks[1])} column chunks of sizes "
            f"{X.chunks[1][:5]}{'...' if len(X.chunks[1]) > 5 else ''}); the computation needs whole rows in "
            f"each chunk. Rechunk it first, e.g. {name} = {name}.rechunk({{0: 'auto', 1: -1}}) (row chunks "
            "of at most a few hundred MB), or rewrite the store with row chunks"
        )
        raise ValueError(msg)
    return X


def _dense_float(block: Any) -> Any:
    if sp.issparse(block):
        return block.tocsr().astype(np.float64)
    return np.asarray(block, dtype=np.float64)


def _gram_part(block: Any, weights: np.ndarray, V: np.ndarray, mu: np.ndarray | None) -> np.ndarray:
    """``[A_b^T A_b V; colsum]`` of one row block (rows ``A_b = w (X_b - mu)``), shape ``(g + 1, l)``."""
    x = _dense_float(block)
    Z = np.asarray(x @ V)
    if mu is not None:
        Z -= mu @ V
    Z *= (weights**2)[:, None]
    out = np.empty((V.shape[0] + 1, V.shape[1]))
    out[:-1] = np.asarray(x.T @ Z)
    out[-1] = Z.sum(axis=0)
    return out


def _matmat_part(block: Any, weights: np.ndarray | None, B: np.ndarray, mu: np.ndarray | None) -> np.ndarray:
    """``A_b @ B`` of one row block."""
    Y = np.asarray(_dense_float(block) @ B)
    if mu is not None:
        Y -= mu @ B
    if weights is not None:
        Y *= weights[:, None]
    return Y


def _gram_matrix_part(block: Any, weights: np.ndarray, mu: np.ndarray | None) -> np.ndarray:
    """``A_b^T A_b`` of one row block, for the exact method (``(g, g)``)."""
    x = _dense_float(block)
    x = x.toarray() if sp.issparse(x) else x
    if mu is not None:
        x = x - mu
    x = x * weights[:, None]
    return x.T @ x


def _weighted_sum_part(block: Any, weights: np.ndarray) -> np.ndarray:
    return np.asarray(_dense_float(block).T @ weights).ravel()


def _tree_sum(parts: list) -> Any:
    import dask

    while len(parts) > 1:
        paired = [dask.delayed(np.add)(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            paired.append(parts[-1])
        parts = paired
    return parts[0]


class DaskCenteredScaledMatrix:
    r"""Linear operator :math:`A = \operatorname{diag}(w)\,(X - \mathbf{1}\mu^\top)` of a dask array ``X``.

    Parameters
    ----------
    X
        ``(n, g)`` :class:`dask.array.Array` with numpy or scipy.sparse chunks, chunked along rows only
        (see :func:`check_dask_matrix`). Never computed as a whole.
    center, row_weights
        As for :class:`mnnkit.linalg.CenteredScaledMatrix` (in-memory ``numpy`` vectors).

    Notes
    -----
    Each product is one dask computation over the row blocks; a worker holds one block (made dense
    float64 if it is not sparse) and ``O(g * l)`` results. The driver holds ``O(n + g * l)`` (the
    row weights and the products), and :meth:`matmat_blocks` the ``n x l`` output.
    """

    format = "dask"

    def __init__(self, X: Any, *, center: Any = None, row_weights: Any = None) -> None:
        self.X = check_dask_matrix(X)
        n, g = (int(s) for s in X.shape)
        self.shape = (n, g)
        self.center = None if center is None else check_vector(center, "center", g)
        self.row_weights = (
            None if row_weights is None else check_vector(row_weights, "row_weights", n, nonnegative=True)
        )
        self._starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self._blocks = list(X.to_delayed().ravel())

    def _center_node(self) -> Any:
        import dask

        return None if self.center is None else dask.delayed(self.center)

    def _weights(self, i: int) -> np.ndarray:
        lo, hi = self._starts[i], self._starts[i + 1]
        return np.ones(hi - lo) if self.row_weights is None else self.row_weights[lo:hi]

    def weighted_column_mean(self, weights: np.ndarray | None) -> np.ndarray:
        """``sum_i c_i X[i] / sum_i c_i`` (``c`` = ``weights`` or ones), in one pass."""
        import dask

        c = np.ones(self.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        total = float(c.sum())
        if not total > 0:
            msg = "row_weights must not all be zero"
            raise ValueError(msg)
        parts = [
            dask.delayed(_weighted_sum_part)(b, c[self._starts[i] : self._starts[i + 1]])
            for i, b in enumerate(self._blocks)
        ]
        return dask.compute(_tree_sum(parts))[0] / total

    def gram(self, V: Any) -> np.ndarray:
        """``A^T (A V)`` (``(g, l)``), one pass over the blocks."""
        import dask

        V = np.ascontiguousarray(V, dtype=np.float64)
        V_node, mu_node = dask.delayed(V), self._center_node()
        parts = [dask.delayed(_gram_part)(b, self._weights(i), V_node, mu_node) for i, b in enumerate(self._blocks)]
        total = dask.compute(_tree_sum(parts))[0]
        out = total[:-1]
        if self.center is not None:
            out -= np.outer(self.center, total[-1])
        return out

    def matmat_blocks(self, B: np.ndarray, out: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Write ``(A @ B) / scale`` into ``out`` (``(n, l)``), one pass over the blocks."""
        import dask

        B = np.ascontiguousarray(B, dtype=np.float64)
        B_node, mu_node = dask.delayed(B), self._center_node()
        weights = self.row_weights
        parts = [
            dask.delayed(_matmat_part)(b, None if weights is None else self._weights(i), B_node, mu_node)
            for i, b in enumerate(self._blocks)
        ]
        for i, part in enumerate(dask.compute(*parts)):
            if scale is not None:
                part = part / scale
            out[self._starts[i] : self._starts[i + 1]] = part

    def gram_matrix(self) -> np.ndarray:
        """``A^T A`` (``(g, g)``), one pass; for the exact method (``O(g^2)`` memory per worker)."""
        import dask

        mu_node = self._center_node()
        parts = [dask.delayed(_gram_matrix_part)(b, self._weights(i), mu_node) for i, b in enumerate(self._blocks)]
        return dask.compute(_tree_sum(parts))[0]


def dask_randomized_svd(
    X: Any,
    n_components: int,
    *,
    center: None | Literal["mean"] | np.ndarray = None,
    row_weights: None | np.ndarray = None,
    n_oversamples: int = 10,
    n_iter: int | Literal["auto"] = "auto",
    method: Literal["randomized", "exact"] = "randomized",
    rng: RngLike = 0,
) -> SVDResult:
    r"""Truncated SVD of :math:`\operatorname{diag}(w)\,(X - \mathbf{1}\mu^\top)` for a dask array ``X``.

    Parameters and result as :func:`mnnkit.linalg.randomized_svd` (same defaults, same sign convention,
    and with ``method="randomized"`` the same random test matrix for a given seed). ``X`` is a dask array
    chunked along rows only, with numpy or scipy.sparse chunks; it is never computed as a whole.

    ``method="exact"`` forms ``A^T A`` (``g x g``, one pass) and takes its eigendecomposition: exact
    up to rounding, but singular values below about ``1e-8 * S[0]`` lose relative accuracy (squaring
    the matrix squares its condition number); meant for modest ``g`` (a few thousand genes).

    Notes
    -----
    The randomized method makes ``q + 2`` passes over ``X`` (``q`` = ``n_iter``), each a dask
    computation; reading ``X`` from disk each time is the main cost, so persist ``X`` in the
    cluster's memory first when it fits. Memory on the driver: ``O((n + g) * l)``.
    """
    if method not in ("randomized", "exact"):
        msg = f"method must be 'randomized' or 'exact' for a dask array, got {method!r}"
        raise ValueError(msg)
    generator = as_generator(rng)
    op = DaskCenteredScaledMatrix(X, row_weights=row_weights)
    n, g = op.shape
    k, p, n_iter_ = _check_sizes(n_components, n_oversamples, n_iter, op.shape)
    center = _resolve_center(center, op.row_weights, op.weighted_column_mean)
    op = DaskCenteredScaledMatrix(X, center=center, row_weights=op.row_weights)
    logger.debug("dask_randomized_svd: %d x %d in %d row blocks, k=%d, %s", n, g, len(X.chunks[0]), k, method)
    if method == "exact":
        evals, evecs = np.linalg.eigh(op.gram_matrix())
        order = np.argsort(evals)[::-1][:k]
        S = np.sqrt(np.clip(evals[order], 0.0, None))
        Vt = np.ascontiguousarray(evecs[:, order].T)
        svd_sign_flip(None, Vt)
    else:
        S, Vt = _right_singular(op, k, p, n_iter_, generator)
    U = _left_from_right(op, S, Vt)
    return SVDResult(U, S, Vt)
