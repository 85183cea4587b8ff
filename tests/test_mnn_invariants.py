"""Invariants and known-answer behaviour of mnnkit.correct."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

import mnnkit
from mnnkit._warnings import ParameterWarning
from tests.conftest import three_batches, to_adata


def shifted_types(seed: int = 0, n_per_batch: int = 150, genes: int = 40) -> ad.AnnData:
    """Two batches, three cell types; batch 2 = batch 1's biology plus a strong gene-wise shift."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 2.0, size=(3, genes)) + 6
    shift = rng.normal(0, 1.5, size=genes)
    blocks, batch, types = [], [], []
    for b in range(2):
        t = rng.integers(0, 3, size=n_per_batch)
        x = centres[t] + rng.normal(0, 0.5, size=(n_per_batch, genes)) + (shift if b else 0)
        blocks.append(np.clip(x, 0, None))
        batch += [f"b{b}"] * n_per_batch
        types += list(t)
    obs = pd.DataFrame({"batch": pd.Categorical(batch), "cell_type": types}, index=[f"c{i}" for i in range(len(batch))])
    return ad.AnnData(np.vstack(blocks), obs=obs)


def same_label_fraction(x: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """Mean fraction of each cell's k nearest neighbours (self excluded) that share its label."""
    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def test_known_shift_is_removed_and_types_stay_apart() -> None:
    adata = shifted_types()
    batch = adata.obs["batch"].to_numpy()
    types = adata.obs["cell_type"].to_numpy()
    cos = adata.X / np.linalg.norm(adata.X, axis=1, keepdims=True)
    assert same_label_fraction(cos, batch) > 0.99  # fully separated by batch before

    mnnkit.correct(adata, "batch")
    out = adata.layers["mnn"]
    mixed = sum((np.mean(batch == b)) ** 2 for b in np.unique(batch))  # 0.5 for two equal batches
    assert same_label_fraction(out, batch) < mixed + 0.08
    assert same_label_fraction(out, types) > 0.98
    # the corrected batch lands on the reference: per-type means agree far better than before
    for t in range(3):
        before = np.linalg.norm(
            cos[(batch == "b0") & (types == t)].mean(0) - cos[(batch == "b1") & (types == t)].mean(0)
        )
        after = np.linalg.norm(
            out[(batch == "b0") & (types == t)].mean(0) - out[(batch == "b1") & (types == t)].mean(0)
        )
        assert after < 0.2 * before


def test_batch_specific_types_are_not_merged() -> None:
    """Canek's simulation: types 2-4 exist in one batch only and must keep their neighbourhoods.

    They are subtle (about half of a rare-type cell's 10 neighbours share its type even before
    correction), so we require the correction to keep at least 80% of that purity, and to mix the
    shared type across batches.
    """
    adata = mnnkit.datasets.simulated()
    x = np.asarray(adata.X, dtype=np.float64)
    cos = x / np.linalg.norm(x, axis=1, keepdims=True)
    mnnkit.correct(adata, "batch")
    out = adata.layers["mnn"]
    types = adata.obs["cell_type"].to_numpy()
    batch = adata.obs["batch"].to_numpy()

    def purity(data, label):
        idx = NearestNeighbors(n_neighbors=11).fit(data).kneighbors(data, return_distance=False)[:, 1:]
        return (types[idx[types == label]] == label).mean()

    for label in ("Cell Type 2", "Cell Type 3", "Cell Type 4"):
        assert purity(out, label) > 0.8 * purity(cos, label)
    shared = types == "Cell Type 1"
    assert same_label_fraction(out[shared], batch[shared]) < same_label_fraction(cos[shared], batch[shared]) - 0.1


def test_single_batch_gives_cosine_normalised_input() -> None:
    x = np.random.default_rng(1).gamma(2.0, 1.0, size=(30, 12))
    adata = ad.AnnData(x, obs=pd.DataFrame({"batch": ["only"] * 30}, index=[f"c{i}" for i in range(30)]))
    with pytest.warns(ParameterWarning, match="single batch"):
        mnnkit.correct(adata, "batch")
    np.testing.assert_allclose(adata.layers["mnn"], x / np.linalg.norm(x, axis=1, keepdims=True), rtol=0, atol=1e-15)
    assert list(adata.uns["mnn"]["merge_order"]) == ["only"]


def test_reference_batch_equals_its_cosine_normalised_input() -> None:
    adata = to_adata(three_batches())
    mnnkit.correct(adata, "batch", merge_order=["b1", "b0", "b2"])
    rows = (adata.obs["batch"] == "b1").to_numpy()
    x = adata.X[rows]
    np.testing.assert_allclose(
        adata.layers["mnn"][rows], x / np.linalg.norm(x, axis=1, keepdims=True), rtol=0, atol=1e-15
    )


def test_cells_keep_their_order_when_batches_are_interleaved() -> None:
    adata = to_adata(three_batches())
    mnnkit.correct(adata, "batch")
    # shuffle rows across batches but keep each batch's internal order: nothing may change per cell
    codes = adata.obs["batch"].cat.codes.to_numpy()
    slots = np.random.default_rng(3).permutation(adata.n_obs)
    perm = np.empty(adata.n_obs, dtype=int)
    for b in np.unique(codes):
        perm[np.sort(slots[codes == b])] = np.flatnonzero(codes == b)
    interleaved = adata[perm].copy()
    del interleaved.layers["mnn"]
    mnnkit.correct(interleaved, "batch")
    np.testing.assert_allclose(interleaved.layers["mnn"], adata.layers["mnn"][perm], rtol=0, atol=1e-12)
    for step in ("step_1", "step_2"):
        mine = interleaved.uns["mnn"]["steps"][step]["pairs"]
        np.testing.assert_array_equal(perm[mine], adata.uns["mnn"]["steps"][step]["pairs"])


def test_permuting_cells_within_a_batch_permutes_the_output() -> None:
    adata = to_adata(three_batches(seed=5))
    mnnkit.correct(adata, "batch")
    rng = np.random.default_rng(7)
    perm = np.arange(adata.n_obs)
    for name in adata.obs["batch"].cat.categories:
        rows = np.flatnonzero((adata.obs["batch"] == name).to_numpy())
        perm[rows] = rng.permutation(rows)
    permuted = adata[perm].copy()
    mnnkit.correct(permuted, "batch")
    np.testing.assert_allclose(permuted.layers["mnn"], adata.layers["mnn"][perm], rtol=0, atol=1e-12)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_types_give_the_same_answer(fmt: str, dtype) -> None:
    base = to_adata(three_batches(seed=2))
    base.X = base.X.astype(dtype)
    reference = mnnkit.correct(base, "batch", copy=True).layers["mnn"]
    x = base.X
    base.X = {"dense": x, "csr": sp.csr_matrix(x), "csc": sp.csc_matrix(x)}[fmt]
    out = mnnkit.correct(base, "batch", copy=True).layers["mnn"]
    assert out.dtype == dtype
    np.testing.assert_allclose(out, reference, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-6)
    assert sp.issparse(base.X) == (fmt != "dense")  # input untouched


def test_copy_true_leaves_adata_untouched() -> None:
    adata = to_adata(three_batches())
    adata.layers["raw"] = adata.X.copy()
    before = adata.copy()
    out = mnnkit.correct(adata, "batch", copy=True)
    assert "mnn" in out.layers and "mnn" in out.uns
    assert "mnn" not in adata.layers and "mnn" not in adata.uns
    np.testing.assert_array_equal(adata.X, before.X)
    np.testing.assert_array_equal(adata.layers["raw"], before.layers["raw"])
    pd.testing.assert_frame_equal(adata.obs, before.obs)


def test_copy_false_changes_only_the_outputs() -> None:
    adata = to_adata(three_batches())
    before = adata.copy()
    assert mnnkit.correct(adata, "batch", key_added="corr") is None
    assert set(adata.layers) == {"corr"}
    assert set(adata.uns) == {"corr"}
    np.testing.assert_array_equal(adata.X, before.X)
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    pd.testing.assert_frame_equal(adata.var, before.var)


def test_uns_records_pairs_names_and_parameters() -> None:
    adata = to_adata(three_batches())
    mnnkit.correct(adata, "batch", k=15, sigma=0.2)
    info = adata.uns["mnn"]
    assert info["params"]["k_left"] == 15 and info["params"]["sigma"] == 0.2
    step = info["steps"]["step_2"]
    assert list(step["left"]) == ["b0", "b1"] and list(step["right"]) == ["b2"]
    assert step["n_pairs"] == step["pairs"].shape[0] > 0
    np.testing.assert_array_equal(step["left_names"], adata.obs_names[step["pairs"][:, 0]])
    assert set(adata.obs["batch"].iloc[step["pairs"][:, 1]]) == {"b2"}
    assert set(adata.obs["batch"].iloc[step["pairs"][:, 0]]) <= {"b0", "b1"}


def test_uns_records_the_subset_genes() -> None:
    adata = to_adata(three_batches())
    mnnkit.correct(adata, "batch", subset=["3", "1", "7"], correct_all=True)
    params = adata.uns["mnn"]["params"]
    assert list(params["subset_genes"]) == ["1", "3", "7"]  # var order
    assert params["n_subset_genes"] == 3
    mnnkit.correct(adata, "batch", key_added="all")
    assert "subset_genes" not in adata.uns["all"]["params"]


def test_result_survives_an_h5ad_round_trip(tmp_path) -> None:
    adata = to_adata(three_batches())
    mnnkit.correct(adata, "batch")
    adata.write_h5ad(tmp_path / "out.h5ad")
    back = ad.read_h5ad(tmp_path / "out.h5ad")
    np.testing.assert_array_equal(back.layers["mnn"], adata.layers["mnn"])
    np.testing.assert_array_equal(
        back.uns["mnn"]["steps"]["step_1"]["pairs"], adata.uns["mnn"]["steps"]["step_1"]["pairs"]
    )


def test_same_seed_same_output_bit_for_bit_when_approximate() -> None:
    adata = to_adata(three_batches(n=(120, 100, 110)))
    first = mnnkit.correct(adata, "batch", approximate=True, neighbors="pynndescent", rng=11, copy=True).layers["mnn"]
    second = mnnkit.correct(adata, "batch", approximate=True, neighbors="pynndescent", rng=11, copy=True).layers["mnn"]
    assert first.tobytes() == second.tobytes()


def test_kernels_run_without_jit_and_agree(tmp_path) -> None:
    """Every numba kernel of the pipeline also runs as plain Python (NUMBA_DISABLE_JIT=1), for coverage."""
    script = textwrap.dedent(
        """
        import numpy as np, mnnkit
        from tests.conftest import three_batches, to_adata
        a = to_adata(three_batches(n=(30, 25, 28), genes=10))
        mnnkit.correct(a, "batch", k=8, svd_dim=1)
        mnnkit.correct(a, "batch", k=8, approximate=True, kernel_neighbors=5, var_adj_sample=20, key_added="fast")
        np.save(OUT, np.stack([a.layers["mnn"], a.layers["fast"]]))
        """
    )
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "out.npy"
    script = f"OUT = {str(target)!r}\n" + script
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": here}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    no_jit = np.load(target)
    a = to_adata(three_batches(n=(30, 25, 28), genes=10))
    mnnkit.correct(a, "batch", k=8, svd_dim=1)
    mnnkit.correct(
        a, "batch", k=8, approximate=True, kernel_neighbors=5, var_adj_sample=20, neighbors="exact", key_added="fast"
    )
    np.testing.assert_allclose(no_jit[0], a.layers["mnn"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(no_jit[1], a.layers["fast"], rtol=0, atol=1e-12)
