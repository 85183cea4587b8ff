"""Fidelity: mnnkit.correct reproduces every batchelor 1.14.1 mnnCorrect run in ../shared/reference.

Each bundle stores the exact input given to R, the corrected values (float32) and the MNN pairs of
every merge step (0-based bundle rows, column 0 = left/reference). We require the pair lists to be
identical *in R's order*, the merge order to match, and the values to agree within 1e-6.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import mnnkit
from tests._shared import REFERENCE, REFERENCE_BUNDLES, reference_bundle


def _mnn_runs() -> list[tuple[str, str]]:
    runs = []
    for name in REFERENCE_BUNDLES:
        path = REFERENCE / f"{name}.h5ad"
        if not path.is_file():
            runs.append((name, "mnnCorrect"))  # skipped in the test body, with the reason
            continue
        bundle = ad.read_h5ad(path, backed="r")
        runs += [(name, key) for key, run in bundle.uns["runs"].items() if run["method"] == "mnnCorrect"]
        bundle.file.close()
    return runs


def _call_args(bundle: ad.AnnData, run: dict) -> dict:
    params = run["params"]
    args = {
        "k": int(params["k"]),
        "sigma": float(params["sigma"]),
        "var_adj": bool(params["var.adj"]),
        "svd_dim": int(params["svd.dim"]),
        "cos_norm_in": bool(params["cos.norm.in"]),
        "cos_norm_out": bool(params["cos.norm.out"]),
        "correct_all": bool(params["correct.all"]),
        "subset": None if str(params["subset.row"]) == "NULL" else "highly_variable",
    }
    categories = list(bundle.obs["batch"].cat.categories)
    if str(params.get("merge.order", "NULL")) != "NULL":  # written as R code, e.g. c(3,1,2)
        positions = str(params["merge.order"]).removeprefix("c(").removesuffix(")").split(",")
        args["merge_order"] = [categories[int(p) - 1] for p in positions]
    if bool(params.get("auto.merge", False)):
        args["merge_order"] = "auto"
    return args


@pytest.mark.parametrize(("bundle_name", "run_key"), _mnn_runs())
def test_reproduces_batchelor_mnncorrect(bundle_name: str, run_key: str) -> None:
    bundle = ad.read_h5ad(reference_bundle(bundle_name))
    run = bundle.uns["runs"][run_key]
    input_genes = run["params"].get("input_genes", "all")
    if input_genes != "all":  # R was given only these genes (cider's top2000_by_mean run)
        bundle = bundle[:, bundle.var[input_genes].to_numpy()].copy()
    reference_values = bundle.layers[run_key]

    mnnkit.correct(bundle, "batch", key_added="mine", **_call_args(bundle, run))

    info = bundle.uns["mine"]
    assert list(info["merge_order"]) == list(run["merge_order_used"])
    assert sorted(info["steps"]) == sorted(run["pairs"])
    for step, ref_pairs in run["pairs"].items():
        mine = info["steps"][step]
        np.testing.assert_array_equal(mine["pairs"], np.asarray(ref_pairs))
        assert mine["n_pairs"] == int(run["merge_steps"][step]["npairs"])
        assert list(mine["left"]) == list(np.atleast_1d(run["merge_steps"][step]["left"]))
        assert list(mine["right"]) == list(np.atleast_1d(run["merge_steps"][step]["right"]))

    corrected = bundle.layers["mine"]
    assert corrected.dtype == np.float32  # the bundle's X is float32
    stored = np.isfinite(reference_values)
    rows_stored = stored.any(axis=1)
    # genes outside the output are NaN in both; rows left out of a reference layer are NaN there only
    np.testing.assert_array_equal(np.isnan(corrected[rows_stored]), ~stored[rows_stored])
    np.testing.assert_allclose(corrected[stored], reference_values[stored], rtol=0, atol=1e-6)
