"""Clustering: Gaussian mixture models fitted by EM.

Public API
----------
GaussianMixture
    scikit-learn compatible Gaussian mixture estimator (Numba E/M-step kernels).
gmm
    Fit a mixture to a cell embedding of an AnnData object (optionally choosing the number of
    components by BIC/AIC) and store labels and probabilities.
ConvergenceWarning
    Raised when EM stops at ``max_iter``.
"""

from mnnkit.cluster._anndata import gmm
from mnnkit.cluster._gmm import ConvergenceWarning, GaussianMixture

__all__ = ["ConvergenceWarning", "GaussianMixture", "gmm"]
