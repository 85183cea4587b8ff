"""MNN batch correction of an AnnData: classic (in gene space) and fast (in PC space), one engine.

How a cell travels from input to output (both methods):

1. **Front** (AnnData side, before any numba code): the parameters are checked
   (:mod:`mnnkit._validation`), the batches and the gene subset resolved and the matrix read
   (``_inputs``), the merge plan built from ``merge_order`` (``_plan``), and warnings about the
   batches given (``_front``).
2. **Engine** (plain arrays): ``classic`` corrects the cosine-normalised genes; ``fast`` first builds a
   multi-batch PCA (``fast._prepare``, ``fast._pca``, ``fast._dask``) and corrects in PC space. Both
   run the plan's merge steps (:func:`~mnnkit.correction._plan.run_plan`); in each step the MNN pairs
   come from ``_pairs`` (exact or pynndescent searches of :mod:`mnnkit.neighbors`; the fast method's
   graph searches in ``fast._search``) and ``_pair_kernels``, and the engine's own modules turn them
   into corrections (``classic._smoothing``, ``classic._var_adj``, ``classic._svd_dim``;
   ``fast._orthogonalize``, ``fast._tricube``). Kernel files (``*_kernels``) hold numba code only.
3. **Outputs**: the method's writer (``classic._results``: ``.layers``; ``fast._results``: ``.obsm``,
   ``.varm``, ``.layers``) and the one ``.uns`` schema of the merge information (``_front.merge_uns``).
"""

from mnnkit.correction._front import DEFAULT_KEY_ADDED as DEFAULT_KEY_ADDED
from mnnkit.correction.classic import correct
from mnnkit.correction.fast import cluster_mnn, fast_mnn

__all__ = ["cluster_mnn", "correct", "fast_mnn"]  # and DEFAULT_KEY_ADDED (data, not in the API pages)
