"""Plots of an mnnkit correction (matplotlib; UMAPs through scanpy).

Each function takes the corrected AnnData first (not modified), the rest keyword-only, and returns a
:class:`matplotlib.figure.Figure` (``save=`` writes it, ``show=True`` shows it through pyplot instead).

- :func:`umap_comparison`: UMAPs before and after, coloured by batch and by label.
- :func:`mnn_pairs`: MNN pairs per merge step and the distribution of correction vector lengths.
- :func:`metrics_comparison`: integration metrics (:func:`mnnkit.metrics.evaluate`) before and after.

The same figures come out of the command line with ``--plot DIR``.
"""

from mnnkit.pl._plots import metrics_comparison, mnn_pairs, umap_comparison

__all__ = ["metrics_comparison", "mnn_pairs", "umap_comparison"]
