"""Fidelity to batchelor 1.14.1's hierarchical merge.order, restrict and weights, on the bundles of
../shared/reference/batchelor_more (README there: index conventions, tolerances, the restrict quirk).

Every run is reproduced with the same arguments: layers within 1e-6, fastMNN embeddings and rotations
within 1e-6 after per-component sign alignment, MNN pairs identical in R's order, the merge steps'
sides in the merged node's row order.
"""

from __future__ import annotations

import ast
import json

import anndata as ad
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import mnnkit
from tests._shared import reference_more_bundle

MORE_BUNDLES = ["canek_simbatches", "cider_pancreas_human_mouse", "kang_pbmc_ifnb_harmony", "synth_nested"]


@pytest.fixture(autouse=True)
def _single_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _bundle(name: str) -> ad.AnnData:
    return ad.read_h5ad(reference_more_bundle(name))


def _r_list(expression: str, names: list[str]) -> list:
    """``list(list(1,2), 3)`` (R, 1-based batch indices) as nested Python lists of batch names."""
    tree = ast.literal_eval(expression.replace("list(", "[").replace(")", "]"))

    def named(node):
        return [named(child) for child in node] if isinstance(node, list) else names[int(node) - 1]

    return named(tree)


def _layout(run: dict) -> dict:
    """batchelor's ``correct.all`` of the run (its default, False: only the subset genes; mnnkit's default is True)."""
    return {"correct_all": bool(run["params"]["correct.all"])}


def _check_layer(bundle: ad.AnnData, run_name: str) -> None:
    """The layer equals batchelor's within 1e-6, with NaN exactly where batchelor has NaN (genes outside the
    subset with correct.all=FALSE; rows a reference layer left out are NaN there only)."""
    ref, mine = bundle.layers[run_name], bundle.layers["mine"]
    stored = np.isfinite(ref)
    rows = stored.any(axis=1)
    np.testing.assert_array_equal(np.isnan(mine[rows]), ~stored[rows])
    np.testing.assert_allclose(mine[stored], ref[stored], rtol=0, atol=1e-6)


def _check_steps(info: dict, run: dict) -> None:
    assert sorted(info["steps"]) == sorted(run["pairs"])
    for step, ref_pairs in run["pairs"].items():
        mine, ref = info["steps"][step], run["merge_steps"][step]
        assert list(mine["left"]) == list(np.atleast_1d(ref["left"])), step
        assert list(mine["right"]) == list(np.atleast_1d(ref["right"])), step
        assert mine["n_pairs"] == int(ref["npairs"]), step
        np.testing.assert_array_equal(mine["pairs"], np.asarray(ref_pairs))  # R's order


def _aligned(bundle: ad.AnnData, run_name: str, key: str, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref_rotation = bundle.varm[f"{run_name}_rotation"][genes].astype(np.float64)
    rotation = bundle.varm[key][genes].astype(np.float64)
    signs = np.sign(np.sum(ref_rotation * rotation, axis=0))
    assert np.all(signs != 0)
    np.testing.assert_allclose(rotation * signs, ref_rotation, rtol=0, atol=1e-6)
    return bundle.obsm[key].astype(np.float64) * signs, signs


@pytest.mark.parametrize("run_name", ["mnnCorrect_nested", "mnnCorrect_nested_reordered"])
def test_classic_merge_tree(run_name: str) -> None:
    bundle = _bundle("synth_nested")
    run = bundle.uns["runs"][run_name]
    names = list(run["batch_input_order"])
    tree = _r_list(str(run["params"]["merge.order"]), names)
    mnnkit.correct(bundle, "batch", subset="highly_variable", merge_order=tree, key_added="mine", **_layout(run))
    _check_layer(bundle, run_name)
    info = bundle.uns["mine"]
    _check_steps(info, run)
    assert json.loads(info["merge_tree"]) == tree  # R: run["merge_tree"], the same tree with names
    assert info["params"]["merge_order"] == "tree"


@pytest.mark.parametrize("run_name", ["fastMNN_nested", "fastMNN_nested_reordered"])
def test_fast_merge_tree(run_name: str) -> None:
    bundle = _bundle("synth_nested")
    run = bundle.uns["runs"][run_name]
    names = list(run["batch_input_order"])
    tree = _r_list(str(run["params"]["merge.order"]), names)
    hvg = bundle.var["highly_variable"].to_numpy()
    mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=int(run["d"]), merge_order=tree, svd_solver="exact",
                    key_added="mine")  # fmt: skip
    corrected, _ = _aligned(bundle, run_name, "mine", hvg)
    np.testing.assert_allclose(corrected, bundle.obsm[run_name], rtol=0, atol=1e-6)
    _check_steps(bundle.uns["mine"], run)
    for step, ref in run["merge_steps"].items():
        mine = bundle.uns["mine"]["steps"][step]
        np.testing.assert_allclose(mine["batch_size"], float(ref["batch_size"]), rtol=1e-9)
        assert bool(mine["skipped"]) == bool(ref["skipped"])


@pytest.mark.parametrize("bundle_name", MORE_BUNDLES)
def test_fast_restrict(bundle_name: str) -> None:
    bundle = _bundle(bundle_name)
    run = bundle.uns["runs"]["fastMNN_restrict"]
    hvg = bundle.var["highly_variable"].to_numpy()
    before = np.asarray(bundle.obs["restrict"]).copy()
    mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=int(run["d"]), restrict="restrict", svd_solver="exact",
                    key_added="mine")  # fmt: skip
    corrected, _ = _aligned(bundle, "fastMNN_restrict", "mine", hvg)
    np.testing.assert_allclose(corrected, bundle.obsm["fastMNN_restrict"], rtol=0, atol=1e-6)
    _check_steps(bundle.uns["mine"], run)
    restricted = bundle.obs["restrict"].to_numpy()
    for step in bundle.uns["mine"]["steps"].values():
        assert restricted[step["pairs"]].all()  # every paired cell is a restricted one
    np.testing.assert_array_equal(bundle.obs["restrict"].to_numpy(), before)
    assert bundle.uns["mine"]["params"]["restrict"] == "restrict"


@pytest.mark.parametrize("bundle_name", MORE_BUNDLES)
@pytest.mark.parametrize("front", ["correct", "correct_mask"])
def test_classic_restrict(bundle_name: str, front: str) -> None:
    bundle = _bundle(bundle_name)
    run = bundle.uns["runs"]["mnnCorrect_restrict"]
    restrict = "restrict" if front == "correct" else bundle.obs["restrict"].to_numpy()
    mnnkit.correct(bundle, "batch", subset="highly_variable", restrict=restrict, key_added="mine", **_layout(run))
    _check_layer(bundle, "mnnCorrect_restrict")
    _check_steps(bundle.uns["mine"], run)
    restricted = bundle.obs["restrict"].to_numpy()
    for step in bundle.uns["mine"]["steps"].values():
        assert restricted[step["pairs"]].all()


def _r_weights(expression: str, names: list[str]):
    """batchelor's ``weights`` argument as mnnkit's: ``c(1,3)`` -> a dict, ``list(...)`` -> a tree of names."""
    if expression.startswith("c("):
        values = [float(v) for v in expression[2:-1].split(",")]
        return dict(zip(names, values, strict=True))
    return _r_list(expression, names)


@pytest.mark.parametrize(
    ("bundle_name", "run_name"),
    [(name, "fastMNN_weights") for name in MORE_BUNDLES] + [("synth_nested", "fastMNN_weights_tree")],
)
def test_fast_weights(bundle_name: str, run_name: str) -> None:
    bundle = _bundle(bundle_name)
    run = bundle.uns["runs"][run_name]
    names = list(run["batch_input_order"])
    weights = _r_weights(str(run["params"]["weights"]), names)
    hvg = bundle.var["highly_variable"].to_numpy()
    mnnkit.fast_mnn(bundle, "batch", subset="highly_variable", d=int(run["d"]), weights=weights, svd_solver="exact",
                    key_added="mine")  # fmt: skip
    corrected, _ = _aligned(bundle, run_name, "mine", hvg)
    np.testing.assert_allclose(corrected, bundle.obsm[run_name], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bundle.uns["mine"]["center"][hvg], run["pca_centers"], rtol=0, atol=1e-12)
    _check_steps(bundle.uns["mine"], run)
    recorded = bundle.uns["mine"]["params"]["batch_weights"]
    ratio = {name: recorded[name] / float(run["weights_per_batch"][name]) for name in names}
    np.testing.assert_allclose(list(ratio.values()), ratio[names[0]], rtol=1e-12)  # same weights up to scale


@pytest.mark.parametrize("bundle_name", MORE_BUNDLES)
def test_fast_correct_all(bundle_name: str) -> None:
    bundle = _bundle(bundle_name)
    run = bundle.uns["runs"]["fastMNN_correct_all"]
    subset = str(run["params"]["subset_row_var"])
    reconstruct = "layer" if "fastMNN_correct_all_reconstructed" in bundle.layers else "factors"
    mnnkit.fast_mnn(bundle, "batch", subset=subset, d=int(run["d"]), svd_solver="exact", reconstruct=reconstruct,
                    key_added="mine")  # fmt: skip
    every_gene = np.ones(bundle.n_vars, dtype=bool)
    corrected, signs = _aligned(bundle, "fastMNN_correct_all", "mine", every_gene)  # rotation rows for all genes
    np.testing.assert_allclose(corrected, bundle.obsm["fastMNN_correct_all"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(bundle.uns["mine"]["center"], run["pca_centers"], rtol=0, atol=1e-12)
    _check_steps(bundle.uns["mine"], run)
    if reconstruct == "layer":
        ref = bundle.layers["fastMNN_correct_all_reconstructed"]
        np.testing.assert_allclose(np.asarray(bundle.layers["mine"]), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bundle_name", MORE_BUNDLES)
def test_cluster_mnn(bundle_name: str) -> None:
    bundle = _bundle(bundle_name)
    run = bundle.uns["runs"]["clusterMNN_kmeans10"]
    hvg = bundle.var["highly_variable"].to_numpy()
    mnnkit.cluster_mnn(bundle, "batch", clusters="cluster_given", subset="highly_variable", key_added="mine")
    corrected, signs = _aligned(bundle, "clusterMNN_kmeans10", "mine", hvg)
    np.testing.assert_allclose(corrected, bundle.obsm["clusterMNN_kmeans10"], rtol=0, atol=1e-6)
    info, ref = bundle.uns["mine"], run["clusters"]
    np.testing.assert_allclose(info["center"][hvg], run["pca_centers"], rtol=1e-9, atol=1e-15)
    assert list(info["clusters"]["batch"]) == list(ref["batch"])
    assert [int(c) for c in info["clusters"]["cluster"]] == [int(c) for c in ref["cluster"]]
    np.testing.assert_array_equal(info["clusters"]["meta"], np.asarray(ref["meta"]))
    np.testing.assert_allclose(info["clusters"]["pcs"] * signs, ref["pcs"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(info["clusters"]["corrected"] * signs, ref["corrected"], rtol=0, atol=1e-9)
    for step, ref_pairs in run["pairs"].items():
        mine = info["steps"][step]
        assert list(mine["left"]) == list(np.atleast_1d(run["merge_steps"][step]["left"]))
        if bundle_name != "synth_nested":  # exact ties after step 1 there (the bundles' README, Caveats)
            np.testing.assert_array_equal(mine["pairs"], np.asarray(ref_pairs))
