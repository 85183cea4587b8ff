"""Linear algebra: randomized/exact truncated SVD with implicit centring, PCA, and moments.

Public API
----------
randomized_svd
    Truncated SVD of ``diag(w) (X - 1 mu^T)`` for dense, CSR or CSC ``X``.
pca
    Scanpy-compatible PCA of an AnnData object.
mean_var
    Sparse-aware means and variances.
CenteredScaledMatrix
    The implicitly centred, row-weighted matrix as a linear operator (products only).
SVDResult, svd_sign_flip
    Result type and the sign convention.
dask_randomized_svd, DaskCenteredScaledMatrix
    The same SVD and operator for a dask array chunked along rows (dask is imported only when used).
is_dask_array, check_dask_matrix
    Recognise a dask array (without importing dask) and check that it is chunked along rows only.
"""

from mnnkit.linalg._dask import DaskCenteredScaledMatrix, check_dask_matrix, dask_randomized_svd, is_dask_array
from mnnkit.linalg._operator import CenteredScaledMatrix
from mnnkit.linalg._pca import pca
from mnnkit.linalg._stats import mean_var
from mnnkit.linalg._svd import SVDResult, randomized_svd, svd_sign_flip

__all__ = [
    "CenteredScaledMatrix",
    "DaskCenteredScaledMatrix",
    "SVDResult",
    "check_dask_matrix",
    "dask_randomized_svd",
    "is_dask_array",
    "mean_var",
    "pca",
    "randomized_svd",
    "svd_sign_flip",
]
