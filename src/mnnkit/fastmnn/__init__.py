"""MNN batch correction in PC space, for atlas-scale data (batchelor's ``fastMNN``).

Where each piece lives: parameter checks in ``_params``; the space to correct (multi-batch PCA of
the genes, or an ``.obsm`` embedding) in ``_prepare`` with the PCA itself in ``_pca`` and its dask
version in ``_dask``; the merge loop in ``_core``; orthogonalisation against batch vectors in
``_orthogonalize``; the MNN vectors and the tricube smoothing in ``_tricube``; the neighbour searches
(exact, or per-batch pynndescent graphs) in ``_search``; numba kernels in ``_kernels``; outputs in
``_results``; the AnnData front in ``_api``. Pairing and merge order are shared with the classic
method (:mod:`mnnkit.mnn`).
"""

from mnnkit.fastmnn._api import fast_mnn
from mnnkit.fastmnn._core import SkippedMergeWarning

__all__ = ["SkippedMergeWarning", "fast_mnn"]
