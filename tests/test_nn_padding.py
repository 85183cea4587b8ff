"""The image boundary effect: padding modes change the border of a convolved crop, never its interior."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import mnnkit.nn as mnn

MODES = ["zeros", "reflect", "replicate", "circular"]


def cell_crop():
    """A positive 12x12 crop: a bright cell cut by the bottom edge, dim background on top."""
    yy, xx = np.mgrid[0:12, 0:12]
    img = 0.1 + np.exp(-((yy - 11.0) ** 2 + (xx - 6) ** 2) / 8.0)
    return img[None, None].astype(np.float64)


@pytest.mark.parametrize("method", ["im2col", "direct"])
def test_padding_mode_changes_border_only(method):
    x = cell_crop()
    w = np.full((1, 1, 3, 3), 1 / 9)  # 3x3 mean filter, padding 1 keeps the size
    out = {m: mnn.conv2d(x, w, padding=1, padding_mode=m, method=method)[0, 0] for m in MODES}
    interior = (slice(1, -1), slice(1, -1))
    border = np.ones((12, 12), dtype=bool)
    border[interior] = False
    for a, b in itertools.combinations(MODES, 2):
        np.testing.assert_array_equal(out[a][interior], out[b][interior])  # identical away from the border
        assert np.any(out[a][border] != out[b][border]), (a, b)
    # zeros darken every border pixel of a positive image relative to repeating the edge
    assert np.all(out["zeros"][border] < out["replicate"][border])
    # circular wraps the bright bottom (the cell) onto the dim top row
    assert np.all(out["circular"][0, 3:9] > out["replicate"][0, 3:9] + 0.05)
    # reflect and replicate agree where the image is locally flat (top corners) but not on the cell
    assert abs(out["reflect"][0, 0] - out["replicate"][0, 0]) < 1e-3
    assert abs(out["reflect"][-1, 6] - out["replicate"][-1, 6]) > 0.02


def test_padding_mode_changes_pooled_border_only():
    x = cell_crop()
    out = {m: mnn.avg_pool2d(x, 3, stride=1, padding=1, padding_mode=m)[0, 0] for m in MODES}
    for a, b in itertools.combinations(MODES, 2):
        np.testing.assert_array_equal(out[a][1:-1, 1:-1], out[b][1:-1, 1:-1])
        assert np.any(out[a] != out[b])
    mx = {m: mnn.max_pool2d(-x, 3, stride=1, padding=1, padding_mode=m)[0, 0] for m in MODES}
    # a negative image: zero padding wins the max at every border pixel, the other modes never do
    assert np.all(mx["zeros"][0] == 0.0)
    assert np.all(mx["replicate"][0] < 0.0)
    np.testing.assert_array_equal(mx["zeros"][1:-1, 1:-1], mx["reflect"][1:-1, 1:-1])
