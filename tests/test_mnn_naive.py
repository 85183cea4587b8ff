"""mnnkit.correct against the naive implementation (tests/naive_mnn.py) for options without a batchelor bundle."""

from __future__ import annotations

import numpy as np
import pytest

import mnnkit
from tests.conftest import three_batches, to_adata
from tests.naive_mnn import naive_mnn_correct

SUBSET = np.arange(0, 24, 2)  # 12 of 24 genes

CASES = {
    "defaults": {},
    "no_var_adj": {"var_adj": False},
    "svd_dim": {"svd_dim": 2},
    "subset": {"subset": SUBSET},  # mnnkit's default: every gene corrected (batchelor's correct.all=TRUE)
    "subset_only": {"subset": SUBSET, "correct_all": False},  # batchelor's default layout: the others NaN
    "svd_dim_subset_correct_all": {"svd_dim": 2, "subset": SUBSET, "correct_all": True},
    # sigma=0.1 suits unit-norm data only: on raw-scale data the kernel collapses onto single MNN cells,
    # corrected cells coincide exactly and tie-breaking becomes rounding noise (ALGORITHM.md 1.2.6)
    "cos_in_off": {"cos_norm_in": False, "var_adj": False, "sigma": 30.0},
    "cos_in_off_var_adj": {"cos_norm_in": False, "sigma": 30.0},
    "cos_out_off_correct_all_no_var_adj": {
        "cos_norm_out": False,
        "subset": SUBSET,
        "correct_all": True,
        "var_adj": False,
    },
    # not tested: cos_norm_out=False with var_adj=True, where var.adj runs on raw-scale out data with
    # log-weights near -500 and the chosen quantile depends on the last bits of the sums (ALGORITHM.md 1.2.6)
    "prop_k_order": {"prop_k": 0.3, "order": [2, 0, 1]},
    "k_per_side": {"k_pair": (7, 12)},
    "sigma_k": {"k": 9, "sigma": 0.3},
}


@pytest.mark.parametrize("case", CASES)
def test_matches_naive_implementation(case: str) -> None:
    options = {"correct_all": True, **CASES[case]}  # mnnkit.correct's default; the naive one defaults to False
    batches = three_batches()
    expected, expected_pairs = naive_mnn_correct(batches, **options)

    adata = to_adata(batches)
    order = options.pop("order", None)
    if "k_pair" in options:
        options["k"] = options.pop("k_pair")
    correct_all = options.pop("correct_all") if "correct_all" not in CASES[case] else options["correct_all"]
    mnnkit.correct(adata, "batch", merge_order=None if order is None else [f"b{i}" for i in order], **options)

    sizes = np.cumsum([0] + [b.shape[0] for b in batches])
    out = adata.layers["mnn"]
    subset = options.get("subset")
    cols = subset if subset is not None and not correct_all else slice(None)
    for i, exp in enumerate(expected):
        np.testing.assert_allclose(out[sizes[i] : sizes[i + 1]][:, cols], exp, rtol=0, atol=1e-10)
    if subset is not None and not correct_all:
        others = np.setdiff1d(np.arange(adata.n_vars), subset)
        assert np.isnan(out[:, others]).all()

    merge = order or [0, 1, 2]
    for step, pairs in enumerate(expected_pairs, start=1):
        left_rows = np.concatenate([np.arange(sizes[b], sizes[b + 1]) for b in merge[:step]])
        right_rows = np.arange(sizes[merge[step]], sizes[merge[step] + 1])
        want = np.array([(left_rows[lc], right_rows[r]) for lc, r in pairs])
        mine = adata.uns["mnn"]["steps"][f"step_{step}"]["pairs"]
        # as sets: corrected cells can coincide exactly, and then the order among tied
        # distances depends on summation rounding (the batchelor tests check R's order)
        np.testing.assert_array_equal(np.unique(mine, axis=0), np.unique(want, axis=0))
