"""Per-gene arithmetic shared by batchelor's per-gene methods (multi_batch_norm, rescale_batches, regress_batches).

These methods treat every gene on its own: per-batch means of each gene, then an element-wise map of
each cell's value that depends on the cell's batch and the gene. Two tools serve them:

* :func:`batch_column_means`: per-batch means of (a function of) the values, for a dense or sparse
  matrix, never densifying more than one block of rows;
* :func:`map_blocks`: an element-wise map of the chosen columns of a dense or sparse matrix into a dense
  output, one dense float64 block at a time along the matrix's cheap axis (rows of a dense or CSR
  matrix, columns of a CSC one), each block near :data:`mnnkit._config.CHUNK_BYTES`;
* :func:`stored_positions`: the cell and gene of every stored value, for maps that keep a sparse
  matrix sparse.

Plain arrays only; the callers have checked their input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from mnnkit._config import rows_per_chunk
from mnnkit.correction._inputs import Batches

#: An element-wise map of float64 arrays (e.g. ``lambda x: 2.0**x - 1.0``).
Transform = Callable[[np.ndarray], np.ndarray]


def batch_codes(batches: Batches, n_cells: int, counted: np.ndarray | None = None) -> np.ndarray:
    """Each cell's batch position (int64), and -1 for cells outside ``counted`` (a boolean mask; None: all)."""
    codes = np.full(n_cells, -1, dtype=np.int64)
    for b, rows in enumerate(batches.members):
        codes[rows] = b
    if counted is not None:
        codes[~counted] = -1
    return codes


def _indicator(codes: np.ndarray, n_batches: int, weights: np.ndarray | None) -> sp.csr_matrix:
    """Sparse n_batches x cells matrix with ``weights`` (or 1) at (code of the cell, cell); -1 codes left out."""
    cells = np.flatnonzero(codes >= 0)
    values = np.ones(cells.size) if weights is None else np.asarray(weights, dtype=np.float64)[cells]
    return sp.csr_matrix((values, (codes[cells], cells)), shape=(n_batches, codes.size))


def batch_column_means(
    mat,
    codes: np.ndarray,
    n_batches: int,
    *,
    cols: np.ndarray | None = None,
    transform: Transform | None = None,
    row_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per-batch means over the counted cells of ``row_weights[i] * transform(mat[i, j])``, float64.

    Parameters
    ----------
    mat
        Cells x genes: dense, CSR or CSC.
    codes
        Each cell's batch position; cells with -1 are not counted (:func:`batch_codes`).
    n_batches
        Number of batches (rows of the result). Every batch must have a counted cell.
    cols
        Columns (genes) to average, or None for all.
    transform
        Element-wise map applied to the values first (None: identity). For a sparse matrix the implicit
        zeros count as ``transform(0)``, without being stored.
    row_weights
        Per-cell factors applied after ``transform`` (None: 1).

    Returns
    -------
    n_batches x len(cols) means (divided by the number of counted cells of each batch).

    Memory: the result, and for a dense matrix one float64 block of rows; for a sparse one a copy of the
    stored values of ``cols`` (only when ``transform`` or ``cols`` is given).
    """
    weights = _indicator(codes, n_batches, row_weights)
    counts = np.bincount(codes[codes >= 0], minlength=n_batches).astype(np.float64)
    n_cols = mat.shape[1] if cols is None else cols.size
    if sp.issparse(mat):
        sub = mat if cols is None else mat[:, cols]
        if transform is None:
            sums = np.asarray((weights @ sub).toarray(), dtype=np.float64)
        else:
            # sum of f(x) = sum over stored values of (f(x) - f(0)) + f(0) x (weights of all counted cells)
            zero = float(transform(np.zeros(1))[0])
            shifted = sub.astype(np.float64, copy=True)
            shifted.data = transform(shifted.data) - zero
            sums = np.asarray((weights @ shifted).toarray(), dtype=np.float64)
            sums += zero * np.asarray(weights.sum(axis=1), dtype=np.float64)
    else:
        sums = np.zeros((n_batches, n_cols))
        for rows, block in dense_blocks(mat, cols):
            if transform is not None:
                block = transform(block)
            sums += weights[:, rows] @ block
    return sums / counts[:, None]


def dense_blocks(mat, cols: np.ndarray | None) -> Iterator[tuple[slice, np.ndarray]]:
    """Dense float64 copies of blocks of rows of ``mat[:, cols]``, as ``(rows, block)`` pairs covering every row.

    The cheap direction of a dense or CSR matrix (a CSC one: :func:`dense_column_blocks`); a block holds
    about :data:`mnnkit._config.CHUNK_BYTES`.
    """
    n_cells = mat.shape[0]
    n_cols = mat.shape[1] if cols is None else cols.size
    step = rows_per_chunk(n_cols)
    for start in range(0, n_cells, step):
        rows = slice(start, min(start + step, n_cells))
        part = mat[rows]
        if cols is not None:
            part = part[:, cols]
        block = part.toarray() if sp.issparse(part) else part
        yield rows, np.array(block, dtype=np.float64, copy=True)


def dense_column_blocks(mat, cols: np.ndarray | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Dense float64 blocks of all rows of ``mat[:, cols]``, as ``(positions, block)`` pairs.

    ``positions`` are the block's column positions within ``cols`` (or within all columns); a block holds
    about :data:`mnnkit._config.CHUNK_BYTES`. The cheap direction for a CSC matrix.
    """
    n_cols = mat.shape[1] if cols is None else cols.size
    step = max(1, rows_per_chunk(mat.shape[0], minimum=1))
    for start in range(0, n_cols, step):
        positions = np.arange(start, min(start + step, n_cols))
        chosen = positions if cols is None else cols[positions]
        part = mat[:, chosen]
        block = part.toarray() if sp.issparse(part) else part
        yield positions, np.array(block, dtype=np.float64, copy=True)


def map_blocks(mat, cols: np.ndarray | None, out: np.ndarray, out_cols: np.ndarray | None, func) -> None:
    """Write ``func(block, rows, positions)`` for every dense block of ``mat[:, cols]`` into ``out``.

    ``rows`` is a slice of cells, ``positions`` the block's column positions within ``cols`` (an index
    array, or ``slice(None)`` for all of them); the values land in ``out[rows, out_cols[positions]]``
    (``out_cols`` None: the positions themselves). Blocks run along the matrix's cheap axis (columns of
    a CSC matrix, rows otherwise), so memory stays at ``out`` plus a few blocks.
    """
    if sp.issparse(mat) and mat.format == "csc":
        for positions, block in dense_column_blocks(mat, cols):
            target = positions if out_cols is None else out_cols[positions]
            out[:, target] = func(block, slice(None), positions)
        return
    target = slice(None) if out_cols is None else out_cols
    for rows, block in dense_blocks(mat, cols):
        out[rows, target] = func(block, rows, slice(None))


def stored_positions(mat) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every stored value of a CSR or CSC matrix, in the order of ``mat.data``."""
    major = np.repeat(np.arange(mat.shape[0 if mat.format == "csr" else 1]), np.diff(mat.indptr))
    minor = mat.indices.astype(np.int64, copy=False)
    return (major, minor) if mat.format == "csr" else (minor, major)
