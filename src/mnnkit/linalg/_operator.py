"""The implicitly centred and row-scaled matrix ``A = diag(w) (X - 1 mu^T)`` as a linear operator."""

from __future__ import annotations

import copy
from typing import Any

import numba as nb
import numpy as np
import scipy.sparse as sp

from mnnkit._config import LINALG_BLOCK_BYTES, LINALG_TASKS_PER_THREAD
from mnnkit.linalg import _kernels
from mnnkit.linalg._validation import check_matrix, check_vector, matrix_format

__all__ = ["CenteredScaledMatrix"]


class CenteredScaledMatrix:
    r"""Linear operator for :math:`A = \operatorname{diag}(w)\,(X - \mathbf{1}\mu^\top)`, never formed.

    Products with ``A`` and ``A.T`` are computed from ``X`` itself: the centring by ``mu`` and the
    row scaling by ``w`` are applied to the small dense factors, so a sparse ``X`` is never
    densified and never copied.

    Parameters
    ----------
    X
        ``(n, g)`` matrix: :class:`numpy.ndarray` (float32/float64; integer data is converted to a
        float64 copy), or :class:`scipy.sparse` CSR/CSC matrix or array. Not modified.
    center
        ``None`` (no centring) or a length-``g`` vector ``mu`` subtracted from every row.
    row_weights
        ``None`` (all ones) or a length-``n`` non-negative vector ``w``; row ``i`` is multiplied by
        ``w[i]`` after centring.

    Notes
    -----
    Memory: besides ``X``, the operator keeps O(n + g) floats. :meth:`matmat` and :meth:`rmatmat`
    need their output plus O(n * l) for an ``l``-column block; :meth:`gram` needs only
    O(g * l) plus one row block of at most 1 MiB (dense float32 ``X``: 8 MiB, for the upcast).
    Sparse products run in parallel Numba kernels and are bit-for-bit reproducible whatever the
    number of threads; dense products use BLAS.
    """

    def __init__(self, X: Any, *, center: Any = None, row_weights: Any = None) -> None:
        X = check_matrix(X, "X")
        self.X = X
        self.format = matrix_format(X)
        self.shape: tuple[int, int] = (int(X.shape[0]), int(X.shape[1]))
        n, g = self.shape
        self.center = None if center is None else check_vector(center, "center", g)
        self.row_weights = (
            None if row_weights is None else check_vector(row_weights, "row_weights", n, nonnegative=True)
        )
        if self.format != "dense":
            self._data = X.data
            self._indptr = X.indptr
            self._indices = X.indices
            self._sorted = bool(X.has_sorted_indices)
            self._n_minor = g if self.format == "csr" else n
            self._minor_counts: np.ndarray | None = None

    def with_center(self, center: Any) -> CenteredScaledMatrix:
        """The same operator with another centring vector (``X`` is not validated again).

        Parameters
        ----------
        center
            ``None`` or a length-``g`` vector.

        Returns
        -------
        A new operator sharing ``X`` (and its cached index statistics) with this one.
        """
        new = copy.copy(self)
        new.center = None if center is None else check_vector(center, "center", self.shape[1])
        return new

    # ------------------------------------------------------------------ helpers
    def _counts(self) -> np.ndarray:
        if self._minor_counts is None:
            self._minor_counts = _kernels.minor_counts(self._indices, int(self._indptr[-1]), self._n_minor)
        return self._minor_counts

    def _bounds(self, lo: int, hi: int) -> np.ndarray:
        """Task boundaries over minor indices ``lo:hi`` balanced by stored entries."""
        n_tasks = LINALG_TASKS_PER_THREAD * nb.get_num_threads()
        return _kernels.balanced_bounds(self._counts()[lo:hi], n_tasks, offset=lo)

    def _block_rows(self, n_cols: int) -> int:
        per_row = 8 * n_cols
        if self.format == "dense":
            per_row += 8 * self.shape[1] if self.X.dtype != np.float64 else 0
            budget = 8 * LINALG_BLOCK_BYTES
        else:
            budget = LINALG_BLOCK_BYTES
        return max(1, min(self.shape[0], budget // max(per_row, 1)))

    def _x_rows_times(self, r0: int, r1: int, B: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``X[r0:r1] @ B`` as float64, written into ``out`` (C-contiguous ``(r1 - r0, l)``) if given."""
        if out is None:
            out = np.empty((r1 - r0, B.shape[1]))
        if self.format == "dense":
            block = self.X[r0:r1]
            if block.dtype != np.float64:
                block = block.astype(np.float64)
            np.matmul(block, B, out=out)
            return out
        n, g = self.shape
        if self.format == "csr":
            _kernels.gather(self._data, self._indptr, self._indices, self._sorted, r0, r1, 0, g, B, out, False)
        else:
            out[:] = 0.0
            bounds = self._bounds(r0, r1)
            _kernels.scatter(self._data, self._indptr, self._indices, self._sorted, 0, g, bounds, B, out)
        return out

    def _x_rows_t_times_add(self, r0: int, r1: int, Z: np.ndarray, out: np.ndarray) -> None:
        """``out += X[r0:r1].T @ Z`` (out: float64 ``(g, l)``)."""
        n, g = self.shape
        if self.format == "dense":
            block = self.X[r0:r1]
            if block.dtype != np.float64:
                block = block.astype(np.float64)
            out += block.T @ Z
        elif self.format == "csr":
            bounds = self._bounds(0, g)
            _kernels.scatter(self._data, self._indptr, self._indices, self._sorted, r0, r1, bounds, Z, out)
        else:
            _kernels.gather(self._data, self._indptr, self._indices, self._sorted, 0, g, r0, r1, Z, out, True)

    def _as_block(self, B: Any, rows: int, name: str) -> tuple[np.ndarray, bool]:
        B = np.asarray(B)
        vector = B.ndim == 1
        if vector:
            B = B[:, None]
        if B.ndim != 2 or B.shape[0] != rows:
            msg = f"{name} must have {rows} rows, got shape {B.shape}"
            raise ValueError(msg)
        return np.ascontiguousarray(B, dtype=np.float64), vector

    # ------------------------------------------------------------------ public products
    def matmat(self, B: Any) -> np.ndarray:
        """Return ``A @ B`` as float64.

        Parameters
        ----------
        B
            ``(g,)`` or ``(g, l)`` dense array.

        Returns
        -------
        ``(n,)`` or ``(n, l)`` float64 array; O(n * l) memory.
        """
        B, vector = self._as_block(B, self.shape[1], "B")
        n, _ = self.shape
        out = np.empty((n, B.shape[1]))
        step = self._block_rows(B.shape[1]) if self.format == "dense" else n
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            self._x_rows_times(r0, r1, B, out[r0:r1])
        self._finish_rows(out, B, 0, n)
        return out[:, 0] if vector else out

    def _finish_rows(self, Y: np.ndarray, B: np.ndarray, r0: int, r1: int, power: int = 1) -> None:
        """In place: ``Y <- w[r0:r1]**power * (Y - mu @ B)``."""
        if self.center is not None:
            Y -= self.center @ B
        if self.row_weights is not None:
            w = self.row_weights[r0:r1]
            Y *= (w if power == 1 else w**power)[:, None]

    def rmatmat(self, C: Any) -> np.ndarray:
        """Return ``A.T @ C`` as float64.

        Parameters
        ----------
        C
            ``(n,)`` or ``(n, l)`` dense array.

        Returns
        -------
        ``(g,)`` or ``(g, l)`` float64 array; O((n + g) * l) memory.
        """
        C, vector = self._as_block(C, self.shape[0], "C")
        if self.row_weights is not None:
            C = C * self.row_weights[:, None]
        out = np.zeros((self.shape[1], C.shape[1]))
        self._x_rows_t_times_add(0, self.shape[0], C, out)
        if self.center is not None:
            out -= np.outer(self.center, C.sum(axis=0))
        return out[:, 0] if vector else out

    def gram(self, V: Any) -> np.ndarray:
        """Return ``A.T @ (A @ V)`` as float64, streaming over row blocks.

        ``A @ V`` is never held for all rows at once, so the working memory is O(g * l) plus one
        row block (see the class notes), whatever the number of rows.

        Parameters
        ----------
        V
            ``(g, l)`` dense array.

        Returns
        -------
        ``(g, l)`` float64 array.
        """
        V, vector = self._as_block(V, self.shape[1], "V")
        n, g = self.shape
        out = np.zeros((g, V.shape[1]))
        colsum = np.zeros(V.shape[1])
        step = self._block_rows(V.shape[1])
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            Z = self._x_rows_times(r0, r1, V)
            self._finish_rows(Z, V, r0, r1, power=2)
            self._x_rows_t_times_add(r0, r1, Z, out)
            if self.center is not None:
                colsum += Z.sum(axis=0)
        if self.center is not None:
            out -= np.outer(self.center, colsum)
        return out[:, 0] if vector else out

    def matmat_blocks(self, B: np.ndarray, out: np.ndarray, scale: np.ndarray | None = None) -> None:
        """Write ``(A @ B) / scale`` into ``out`` (any float dtype) one row block at a time.

        Lets callers store the result in float32 without a float64 copy of the whole thing.
        """
        B, _ = self._as_block(B, self.shape[1], "B")
        n, _ = self.shape
        step = self._block_rows(B.shape[1])
        for r0 in range(0, n, step):
            r1 = min(n, r0 + step)
            Y = self._x_rows_times(r0, r1, B)
            self._finish_rows(Y, B, r0, r1)
            if scale is not None:
                Y /= scale
            out[r0:r1] = Y

    def dense(self) -> np.ndarray:
        """Return ``A`` as a dense float64 array: O(n * g) memory, for small data only."""
        X = self.X.toarray() if sp.issparse(self.X) else self.X
        A = np.array(X, dtype=np.float64, order="C", copy=True)
        if self.center is not None:
            A -= self.center
        if self.row_weights is not None:
            A *= self.row_weights[:, None]
        return A
