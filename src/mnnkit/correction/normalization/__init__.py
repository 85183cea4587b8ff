"""Normalisation across batches before a correction: :func:`multi_batch_norm` (batchelor's ``multiBatchNorm``).

Raw counts in, log2 normalised counts out, with size factors that also remove the coverage
differences between batches (every batch scaled down to the one of lowest coverage), so that a
correction afterwards sees batch effects, not sequencing depth.
"""

from mnnkit.correction.normalization._multi_batch_norm import multi_batch_norm

__all__ = ["multi_batch_norm"]
