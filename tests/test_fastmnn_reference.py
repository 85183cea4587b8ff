"""Fidelity: mnnkit.fast_mnn reproduces every batchelor 1.14.1 fastMNN run in ../shared/reference.

Each bundle stores the exact input given to R and fastMNN's outputs with an exact SVD: corrected PCs
(float32), the rotation, the PCA centre, and per merge step the MNN pairs (0-based bundle rows,
column 0 on the left), batch_size, skipped and lost_var. PC signs are arbitrary: each component's sign
is aligned on the rotation first (README of the bundles). Tolerances are the bundles' recommended ones.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import mnnkit
from tests._shared import REFERENCE, REFERENCE_BUNDLES, reference_bundle


def _fast_runs() -> list[str]:
    names = []
    for name in REFERENCE_BUNDLES:
        path = REFERENCE / f"{name}.h5ad"
        if not path.is_file():
            names.append(name)  # skipped in the test body, with the reason
            continue
        bundle = ad.read_h5ad(path, backed="r")
        if "fastMNN" in bundle.uns["runs"]:
            names.append(name)
        bundle.file.close()
    return names


@pytest.fixture(autouse=True)
def _single_blas_thread():
    # the exact SVD is much slower with BLAS threads fighting over a shared 2-core machine
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("bundle_name", _fast_runs())
@pytest.mark.parametrize("front", ["fast_mnn", "correct"])
def test_reproduces_batchelor_fastmnn(bundle_name: str, front: str) -> None:
    bundle = ad.read_h5ad(reference_bundle(bundle_name))
    run = bundle.uns["runs"]["fastMNN"]
    params = run["params"]
    assert str(params["merge.order"]) == "NULL" and not bool(params["auto.merge"])
    hvg = bundle.var["highly_variable"].to_numpy()
    args = {
        "subset": "highly_variable", "d": int(run["d"]), "k": int(params["k"]), "ndist": float(params["ndist"]),
        "cos_norm": bool(params["cos.norm"]), "min_batch_skip": float(params["min.batch.skip"]),
        "svd_solver": "exact", "neighbors": "exact", "key_added": "mine",
    }  # fmt: skip
    if front == "fast_mnn":
        mnnkit.fast_mnn(bundle, "batch", **args)
    else:
        mnnkit.correct(bundle, "batch", method="fast", **args)

    ref_rotation = bundle.varm["fastMNN_rotation"][hvg].astype(np.float64)
    rotation = bundle.varm["mine"][hvg].astype(np.float64)
    signs = np.sign(np.sum(ref_rotation * rotation, axis=0))
    assert np.all(signs != 0)
    np.testing.assert_allclose(rotation * signs, ref_rotation, rtol=0, atol=1e-6)
    assert np.isnan(bundle.varm["mine"][~hvg]).all()  # genes outside the PCA have no rotation
    corrected = bundle.obsm["mine"].astype(np.float64) * signs
    np.testing.assert_allclose(corrected, bundle.obsm["fastMNN"], rtol=0, atol=1e-6)

    info = bundle.uns["mine"]
    np.testing.assert_allclose(info["center"][hvg], run["pca_centers"], rtol=0, atol=1e-12)
    assert list(info["merge_order"]) == list(run["merge_order_used"])
    assert sorted(info["steps"]) == sorted(run["pairs"])
    for step, ref_pairs in run["pairs"].items():
        mine, ref = info["steps"][step], run["merge_steps"][step]
        np.testing.assert_array_equal(mine["pairs"], np.asarray(ref_pairs))  # same pairs, in R's order
        assert mine["n_pairs"] == int(ref["npairs"])
        assert list(mine["left"]) == list(np.atleast_1d(ref["left"]))
        assert list(mine["right"]) == list(np.atleast_1d(ref["right"]))
        assert bool(mine["skipped"]) == bool(ref["skipped"])
        np.testing.assert_allclose(mine["batch_size"], float(ref["batch_size"]), rtol=1e-9)
        for batch, value in ref["lost_var"].items():
            np.testing.assert_allclose(mine["lost_var"][batch], float(value), rtol=1e-9, atol=1e-15)


def test_reconstruction_matches_batchelor_low_rank_product() -> None:
    """The corrected gene-level values are batchelor's ``reconstructed`` assay: corrected PCs x rotation^T."""
    bundle = ad.read_h5ad(reference_bundle("cider_pancreas_human_mouse"))
    hvg = bundle.var["highly_variable"].to_numpy()
    out = mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", svd_solver="exact", reconstruct="layer", copy=True)
    reference = bundle.obsm["fastMNN"].astype(np.float64) @ bundle.varm["fastMNN_rotation"][hvg].T.astype(np.float64)
    np.testing.assert_allclose(out.layers["X_mnn"][:, hvg], reference, rtol=0, atol=2e-6)
    # the other genes are extended as batchelor's correct.all=TRUE: rows of Z_other^T U S^-1
    assert np.isfinite(out.varm["X_mnn"]).all()
    assert np.isfinite(out.layers["X_mnn"]).all()
