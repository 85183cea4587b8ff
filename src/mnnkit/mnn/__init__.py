"""Classic MNN batch correction (Haghverdi et al. 2018; batchelor's ``mnnCorrect``).

Where each piece lives: cosine normalisation and input checks in ``_input``; the neighbour search
and pairing in ``_pairs`` (backends in :mod:`mnnkit.neighbors`); correction vectors and kernel
smoothing in ``_smoothing``; variance adjustment in ``_var_adj``; biological-subspace removal in
``_svd_dim``; merge order in ``_merge_order``; the merge loop in ``_engine``; numba kernels in
``_kernels``; the AnnData front in ``_correct``.
"""

from mnnkit.mnn._correct import correct

__all__ = ["correct"]
