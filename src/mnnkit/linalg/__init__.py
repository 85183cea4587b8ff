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
"""

from mnnkit.linalg._operator import CenteredScaledMatrix
from mnnkit.linalg._pca import pca
from mnnkit.linalg._stats import mean_var
from mnnkit.linalg._svd import SVDResult, randomized_svd, svd_sign_flip

__all__ = ["CenteredScaledMatrix", "SVDResult", "mean_var", "pca", "randomized_svd", "svd_sign_flip"]
