"""A merge step's shared dot products (kept under a memory budget) change nothing but rounding."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit
from mnnkit import _config
from tests.conftest import three_batches, to_adata
from tests.naive_mnn import naive_mnn_correct


@pytest.mark.parametrize("options", [{}, {"svd_dim": 2}, {"k_pair": (7, 11)}])
def test_kept_and_recomputed_products_agree(monkeypatch, options) -> None:
    batches = three_batches(seed=4, n=(70, 55, 60), genes=30)
    call = {("k" if name == "k_pair" else name): value for name, value in options.items()}
    kept = to_adata(batches)
    mnnkit.correct(kept, "batch", **call)
    monkeypatch.setattr(_config, "GRAM_CACHE_BYTES", 0)  # every step recomputes its products in chunks
    recomputed = to_adata(batches)
    mnnkit.correct(recomputed, "batch", **call)
    for a, b in zip(kept.uns["mnn"]["steps"].values(), recomputed.uns["mnn"]["steps"].values(), strict=True):
        np.testing.assert_array_equal(a["pairs"], b["pairs"])
    np.testing.assert_allclose(kept.layers["mnn"], recomputed.layers["mnn"], rtol=0, atol=1e-12)
    # and both are the algorithm as written
    expected, _ = naive_mnn_correct(batches, **options)
    np.testing.assert_allclose(recomputed.layers["mnn"], np.vstack(expected), rtol=0, atol=1e-10)
