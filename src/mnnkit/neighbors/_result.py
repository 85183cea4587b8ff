"""The :class:`NeighborResult` container shared by the kNN backends, the metrics and the MNN correction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from mnnkit._validation import check_int

__all__ = ["NeighborResult"]


def _readonly_view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class NeighborResult:
    """The ``k`` nearest neighbours of each query cell, nearest first.

    A small, frozen, backend-independent record (after scib-metrics' ``NeighborsResults``): every kNN
    backend in :mod:`mnnkit.neighbors` returns one, and the metrics accept one in place of an embedding,
    so neighbours are computed once and reused.

    Parameters
    ----------
    indices
        ``(n_obs, n_neighbors)`` integer array: row ``i`` holds the positions (in the *data* the neighbours
        were searched in) of query cell ``i``'s neighbours, nearest first. Stored as ``int64``.
    distances
        ``(n_obs, n_neighbors)`` array of the matching distances (Euclidean for the built-in backends),
        non-decreasing along each row, finite and non-negative. Stored as ``float64``.

    Notes
    -----
    Whether a cell counts as its own neighbour is decided when the result is made, not recorded here:
    :func:`~mnnkit.neighbors.knn` with ``exclude_self=True`` (what every metric uses) leaves query row
    ``i``'s own position ``i`` out of row ``i``; an identical *duplicate* cell is still a neighbour (at
    distance 0). :meth:`from_sparse` drops the diagonal by default for the same reason. Metrics check
    that no row lists its own index and raise otherwise.

    The arrays are converted to ``int64``/``float64`` C order (copied only if needed) and exposed as
    read-only views, so a result cannot be changed through its attributes. Memory: the two arrays,
    ``16 * n_obs * n_neighbors`` bytes. Validation is ``O(n_obs * n_neighbors * log(n_neighbors))``.

    Examples
    --------
    >>> import numpy as np
    >>> from mnnkit.neighbors import NeighborResult
    >>> nn = NeighborResult(np.array([[1], [0]]), np.array([[0.5], [0.5]]))
    >>> nn.n_obs, nn.n_neighbors
    (2, 1)
    """

    indices: np.ndarray
    distances: np.ndarray

    def __post_init__(self) -> None:
        indices = np.asarray(self.indices)
        distances = np.asarray(self.distances)
        for name, arr in (("indices", indices), ("distances", distances)):
            if arr.ndim != 2:
                msg = f"NeighborResult: {name} must be a 2-D (n_obs, n_neighbors) array, got shape {arr.shape}"
                raise ValueError(msg)
        if indices.shape != distances.shape:
            msg = (
                f"NeighborResult: indices and distances must have the same shape, got {indices.shape} and "
                f"{distances.shape}"
            )
            raise ValueError(msg)
        if indices.shape[1] < 1:
            msg = "NeighborResult: need at least one neighbour per row (n_neighbors >= 1)"
            raise ValueError(msg)
        if indices.dtype.kind not in "iu":
            msg = f"NeighborResult: indices must have an integer dtype, got {indices.dtype}"
            raise TypeError(msg)
        if distances.dtype.kind not in "fiu":
            msg = f"NeighborResult: distances must have a real numeric dtype, got {distances.dtype}"
            raise TypeError(msg)
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        distances = np.ascontiguousarray(distances, dtype=np.float64)
        if indices.size and indices.min() < 0:
            row = int(np.nonzero((indices < 0).any(axis=1))[0][0])
            msg = f"NeighborResult: indices must be non-negative (row {row} has a negative index)"
            raise ValueError(msg)
        if not np.isfinite(distances).all():
            row = int(np.nonzero(~np.isfinite(distances).all(axis=1))[0][0])
            msg = f"NeighborResult: distances must be finite (row {row} has NaN or inf)"
            raise ValueError(msg)
        if distances.size and distances.min() < 0:
            row = int(np.nonzero((distances < 0).any(axis=1))[0][0])
            msg = f"NeighborResult: distances must be non-negative (row {row} has a negative distance)"
            raise ValueError(msg)
        unsorted = (np.diff(distances, axis=1) < 0).any(axis=1)
        if unsorted.any():
            row = int(np.nonzero(unsorted)[0][0])
            msg = f"NeighborResult: each row must be sorted by distance, nearest first (row {row} is not)"
            raise ValueError(msg)
        if indices.shape[1] > 1:
            repeated = (np.diff(np.sort(indices, axis=1), axis=1) == 0).any(axis=1)
            if repeated.any():
                row = int(np.nonzero(repeated)[0][0])
                msg = f"NeighborResult: a row must not list the same neighbour twice (row {row} does)"
                raise ValueError(msg)
        object.__setattr__(self, "indices", _readonly_view(indices))
        object.__setattr__(self, "distances", _readonly_view(distances))

    @property
    def n_obs(self) -> int:
        """Number of query cells (rows)."""
        return int(self.indices.shape[0])

    @property
    def n_neighbors(self) -> int:
        """Number of neighbours per cell (columns)."""
        return int(self.indices.shape[1])

    def subset(self, n_neighbors: int) -> NeighborResult:
        """Keep the ``n_neighbors`` nearest neighbours of each cell.

        Parameters
        ----------
        n_neighbors
            How many to keep, ``1 <= n_neighbors <= self.n_neighbors``.

        Returns
        -------
        NeighborResult
            A result viewing the first ``n_neighbors`` columns (no copy).
        """
        n_neighbors = check_int(n_neighbors, "n_neighbors")
        if not 1 <= n_neighbors <= self.n_neighbors:
            msg = f"n_neighbors must be in [1, {self.n_neighbors}] for this result, got {n_neighbors}"
            raise ValueError(msg)
        if n_neighbors == self.n_neighbors:
            return self
        return NeighborResult(self.indices[:, :n_neighbors], self.distances[:, :n_neighbors])

    def to_sparse(self, n_data: int | None = None) -> sparse.csr_matrix:
        """Return the kNN distance graph as a CSR matrix.

        Parameters
        ----------
        n_data
            Number of columns (cells searched). Defaults to ``n_obs`` (a square graph); must exceed the
            largest index.

        Returns
        -------
        scipy.sparse.csr_matrix
            ``(n_obs, n_data)`` with exactly ``n_neighbors`` stored entries per row, in the order of this
            result. Zero distances (duplicate cells) are stored explicitly, so the graph's structure is the
            neighbour relation even where a value is 0. Memory: ``~20 * n_obs * n_neighbors`` bytes.
        """
        n_data = self.n_obs if n_data is None else int(n_data)
        largest = int(self.indices.max())
        if n_data <= largest:
            msg = f"n_data must exceed the largest neighbour index ({largest}), got {n_data}"
            raise ValueError(msg)
        indptr = np.arange(0, self.indices.size + 1, self.n_neighbors, dtype=np.int64)
        return sparse.csr_matrix(
            (self.distances.ravel().copy(), self.indices.ravel().copy(), indptr), shape=(self.n_obs, n_data)
        )

    @classmethod
    def from_sparse(
        cls, graph: sparse.spmatrix | sparse.sparray, *, n_neighbors: int | None = None, exclude_self: bool = True
    ) -> NeighborResult:
        """Read a precomputed sparse kNN distance graph (e.g. ``adata.obsp["distances"]``).

        Parameters
        ----------
        graph
            ``(n_obs, n_data)`` scipy sparse matrix or array; every *stored* entry of row ``i`` (explicit
            zeros included) is a neighbour of cell ``i`` at that distance.
        n_neighbors
            Neighbours to keep per row, the nearest ones (ties: lower column first). Defaults to the
            smallest number of neighbours any row has; a row with fewer raises ``ValueError``.
        exclude_self
            Drop diagonal entries (a cell as its own neighbour); needs a square graph.

        Returns
        -------
        NeighborResult
            Rows sorted by distance, ties broken by the lower column index.

        Notes
        -----
        Memory: a CSR copy of ``graph`` plus the result. scanpy's ``obsp["distances"]`` excludes self,
        and its rows may have different numbers of entries; all are handled.
        """
        if not sparse.issparse(graph):
            msg = f"graph must be a scipy sparse matrix, got {type(graph).__name__}"
            raise TypeError(msg)
        csr = sparse.csr_matrix(graph, dtype=np.float64, copy=True)
        csr.sum_duplicates()
        n_obs, n_data = csr.shape
        if exclude_self:
            if n_obs != n_data:
                msg = f"exclude_self=True needs a square graph, got shape {csr.shape}"
                raise ValueError(msg)
            rows = np.repeat(np.arange(n_obs), np.diff(csr.indptr))
            keep = csr.indices != rows
            counts = np.bincount(rows[keep], minlength=n_obs)
            indptr = np.concatenate([[0], np.cumsum(counts)])
            csr = sparse.csr_matrix((csr.data[keep], csr.indices[keep], indptr), shape=csr.shape)
        counts = np.diff(csr.indptr)
        if n_obs == 0:
            msg = "graph has no rows"
            raise ValueError(msg)
        fewest = int(counts.min())
        if n_neighbors is None:
            n_neighbors = fewest
        if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer):
            msg = f"n_neighbors must be an int or None, got {type(n_neighbors).__name__}"
            raise TypeError(msg)
        if n_neighbors < 1:
            msg = f"n_neighbors must be >= 1, got {n_neighbors} (does some row of graph store no neighbour?)"
            raise ValueError(msg)
        if fewest < n_neighbors:
            row = int(np.argmin(counts))
            msg = f"graph row {row} has {fewest} neighbours, fewer than n_neighbors={n_neighbors}"
            raise ValueError(msg)
        rows = np.repeat(np.arange(n_obs), counts)
        order = np.lexsort((csr.indices, csr.data, rows))
        rank = np.arange(csr.indices.size) - np.repeat(csr.indptr[:-1], counts)
        take = order[rank < n_neighbors]
        # lexsort puts each row's entries contiguously and in order, so the kept ones reshape row-wise
        indices = csr.indices[take].reshape(n_obs, n_neighbors)
        distances = csr.data[take].reshape(n_obs, n_neighbors)
        return cls(indices.astype(np.int64), distances)
