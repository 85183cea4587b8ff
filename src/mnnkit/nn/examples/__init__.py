"""Runnable examples of :mod:`mnnkit.nn` (``python -m mnnkit.nn.examples.cell_images``)."""
