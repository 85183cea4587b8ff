"""Drop-in replacements for other packages' batch-correction entry points, running mnnkit underneath.

:func:`mnn_correct` takes the arguments of ``scanpy.external.pp.mnn_correct`` (mnnpy) and returns its
three results, computed by mnnkit's classic correction (:func:`mnnkit.correct`). The differences from
mnnpy's numbers, and how to move to :func:`mnnkit.correct` itself, are in the docs' migration page.
"""

from mnnkit.compat._mnnpy import mnn_correct

__all__ = ["mnn_correct"]
