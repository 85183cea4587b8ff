"""The README's first command ends in ``python -m mnnkit.demo``: it must run and print what it promises."""

from __future__ import annotations

import re

import numpy as np

from mnnkit import demo


def test_demo_prints_every_metric_it_names(capsys):
    assert demo.main(["--approximate"]) == 0
    out = capsys.readouterr().out
    assert "merged" in out and "MNN pairs" in out
    rows = {
        m.group(1): (float(m.group(2)), float(m.group(3)))
        for m in re.finditer(r"^\s+(\w+)\s+(-?[\d.]+)\s+(-?[\d.]+)$", out, re.M)
    }
    for metric in demo.DEMO_METRICS:
        before, after = rows[metric]
        assert np.isfinite(before) and np.isfinite(after)
        assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
