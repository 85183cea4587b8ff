"""Classic MNN correction in gene space (Haghverdi et al. 2018; batchelor's ``mnnCorrect``).

``_api`` is the AnnData front (:func:`mnnkit.correct`); ``_engine`` the merge loop; ``_gram`` the
dot products a step shares between its search, kernel and var.adj; ``_smoothing`` the correction
vectors and their Gaussian-kernel smoothing; ``_var_adj`` the variance adjustment; ``_svd_dim`` the
removal of biological axes; ``_results`` the layer writer; ``_kernels`` the numba code.
"""

from mnnkit.correction.classic._api import correct

__all__ = ["correct"]
