"""Plots of an mnnkit correction (matplotlib; UMAPs through scanpy), and the data behind them.

Each plot function takes the corrected AnnData first (not modified), the rest keyword-only, and returns a
:class:`matplotlib.figure.Figure` (``save=`` writes it, ``show=True`` shows it through pyplot instead).

- :func:`umap_comparison`: UMAPs before and after, coloured by batch and by label.
- :func:`mnn_pairs`: MNN pairs per merge step and the distribution of correction vector lengths.
- :func:`metrics_comparison`: integration metrics (:func:`mnnkit.metrics.evaluate`) before and after.

What the plots draw is available as data too (``mnnkit evaluate`` uses these):

- :func:`find_corrections`: the keys of ``adata.uns`` that hold an mnnkit correction record.
- :func:`correction_record`: one such record (``ValueError`` listing the recorded ones if absent).
- :func:`correction_data`: the corrected values and the uncorrected values on the same genes and in the
  same scale (a :class:`CorrectionData`), computed once and passed to the plots as ``data=``.
- :func:`compare_metrics`: :func:`mnnkit.metrics.evaluate` of the uncorrected and corrected values.

:data:`DPI` is the resolution (dots per inch) figures are saved at by ``save=`` and by ``--plot DIR``.

The same figures come out of the command line with ``--plot DIR``.
"""

from mnnkit.pl._data import CorrectionData, compare_metrics, correction_data, correction_record, find_corrections
from mnnkit.pl._plots import DPI, metrics_comparison, mnn_pairs, umap_comparison

__all__ = [
    "DPI",
    "CorrectionData",
    "compare_metrics",
    "correction_data",
    "correction_record",
    "find_corrections",
    "metrics_comparison",
    "mnn_pairs",
    "umap_comparison",
]
