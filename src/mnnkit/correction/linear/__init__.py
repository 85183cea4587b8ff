"""batchelor's linear batch corrections: :func:`rescale_batches` and :func:`regress_batches`.

Both treat every gene on its own, with one number per batch and gene (a scale, a mean), so they assume
that the batches hold the same cell types in the same proportions. They are baselines next to the MNN
methods, and the right tool for replicate batches of one population. ``_front`` holds their shared
AnnData side (inputs, outputs); the per-gene arithmetic is ``mnnkit.correction._per_gene``.
"""

from mnnkit.correction.linear._regress import regress_batches
from mnnkit.correction.linear._rescale import rescale_batches

__all__ = ["regress_batches", "rescale_batches"]
