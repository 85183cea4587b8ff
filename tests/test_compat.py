"""mnnkit.compat.mnn_correct: mnnpy's interface (sc.external.pp.mnn_correct) on mnnkit's classic correction.

Truth comes from outside the function under test: the slow independent implementation in
tests/naive_mnn.py (corrected values and MNN pairs), mnnkit.correct called directly on the same cells,
scanpy's own signature of sc.external.pp.mnn_correct, and anndata's (deprecated) AnnData.concatenate,
which is what mnnpy used to assemble its output.
"""

from __future__ import annotations

import inspect
import os
import warnings

import anndata as ad
import numba
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import mnnkit
from mnnkit._warnings import ParameterWarning
from mnnkit.compat import mnn_correct
from tests.naive_mnn import naive_mnn_correct

N_GENES = 12
GENES = [f"g{i}" for i in range(N_GENES)]
SUBSET = [f"g{i}" for i in (0, 2, 3, 5, 6, 8, 9, 11)]  # 8 of the 12 genes


def _batches(seed: int = 0, sizes: tuple[int, ...] = (24, 18, 21)) -> list[ad.AnnData]:
    """Three batches of the same two cell types, each batch shifted by its own random vector."""
    rng = np.random.default_rng(seed)
    types = rng.uniform(0.5, 3.0, size=(2, N_GENES))
    out = []
    for b, n in enumerate(sizes):
        shift = rng.normal(scale=0.6, size=N_GENES)
        labels = rng.integers(0, 2, size=n)
        x = np.abs(types[labels] + shift + rng.normal(scale=0.3, size=(n, N_GENES)))
        obs = pd.DataFrame({"cell_type": [f"t{t}" for t in labels]}, index=[f"cell{i}" for i in range(n)])
        obs[f"only_in_{b}"] = np.arange(n)  # a column the others lack: .obs is outer-joined
        var = pd.DataFrame({"symbol": [g.upper() for g in GENES]}, index=GENES)
        out.append(ad.AnnData(x, obs=obs, var=var))
    return out


def _positions(names: list[str]) -> np.ndarray:
    return np.sort([GENES.index(g) for g in names])


def _naive(batches, order, **kw):
    return naive_mnn_correct([a.X for a in batches], order=order, **kw)


# ---------------------------------------------------------------------------------------------
# the signature is mnnpy's
# ---------------------------------------------------------------------------------------------


def test_signature_and_defaults_are_scanpys():
    sc = pytest.importorskip("scanpy")
    theirs = inspect.signature(sc.external.pp.mnn_correct).parameters
    ours = inspect.signature(mnn_correct).parameters
    assert list(ours) == list(theirs)
    for name, param in theirs.items():
        assert ours[name].kind == param.kind, name
        assert ours[name].default == param.default, name
    assert ours["sigma"].default == 1.0  # mnnpy's, not batchelor's 0.1


# ---------------------------------------------------------------------------------------------
# values and pairs against independent truth
# ---------------------------------------------------------------------------------------------

CONFIGS = {
    "defaults": {},
    "subset_order_svd": {"var_subset": SUBSET, "mnn_order": [2, 0, 1], "svd_dim": 2},
    "no_cos_in": {"var_subset": SUBSET, "cos_norm_in": False, "sigma": 5.0},
    "no_cos_at_all_no_var_adj": {"cos_norm_in": False, "cos_norm_out": False, "var_adj": False, "sigma": 3.0},
    "order_k7_sigma_small": {"mnn_order": [1, 2, 0], "k": 7, "sigma": 0.1},
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_values_and_pairs_equal_the_naive_implementation(name):
    kw = CONFIGS[name]
    batches = _batches()
    order = kw.get("mnn_order", [0, 1, 2])
    out, mnn_list, angles = mnn_correct(*batches, k=kw.get("k", 5), **{k: v for k, v in kw.items() if k != "k"})
    subset = _positions(kw["var_subset"]) if "var_subset" in kw else None
    expected, naive_pairs = _naive(
        batches,
        order,
        k=kw.get("k", 5),
        sigma=kw.get("sigma", 1.0),
        cos_norm_in=kw.get("cos_norm_in", True),
        cos_norm_out=kw.get("cos_norm_out", True),
        var_adj=kw.get("var_adj", True),
        svd_dim=kw.get("svd_dim", 0),
        subset=subset,
        correct_all=True,
    )
    assert angles is None
    assert out.shape == (sum(a.n_obs for a in batches), N_GENES)  # every gene corrected
    offsets = np.cumsum([0] + [a.n_obs for a in batches])
    for b in range(3):
        np.testing.assert_allclose(out.X[offsets[b] : offsets[b + 1]], expected[b], rtol=0, atol=1e-10)

    # pair tables: one per input in input order; the reference's entry is mnnpy's 0
    assert mnn_list[order[0]] == 0
    sizes = [batches[b].n_obs for b in order]
    for step, target in enumerate(order[1:]):
        table = mnn_list[target]
        assert list(table.columns) == ["new cell", "ref cell", "original batch"]
        got = set(zip(table["new cell"], table["ref cell"], strict=True))
        assert got == {(r, left) for left, r in naive_pairs[step]}
        assert len(table) == len(naive_pairs[step])
        # 'ref cell' counts through the batches merged so far, in merge order
        owner = np.repeat(order[: step + 1], sizes[: step + 1])
        np.testing.assert_array_equal(table["original batch"], owner[table["ref cell"]])
        assert table.sort_values(["new cell", "ref cell"]).index.equals(table.index)


def test_equals_mnnkit_correct_on_the_concatenated_data():
    batches = _batches(seed=3)
    out, mnn_list, _ = mnn_correct(*batches, var_subset=SUBSET, mnn_order=[1, 0, 2], k=6, svd_dim=1)

    joined = ad.concat(batches, label="batch", keys=["0", "1", "2"], index_unique="-")
    mnnkit.correct(
        joined,
        "batch",
        subset=SUBSET,
        correct_all=True,
        k=6,
        sigma=1.0,  # mnnpy's default, which mnn_correct keeps
        svd_dim=1,
        merge_order=["1", "0", "2"],
    )
    np.testing.assert_array_equal(out.X, joined.layers["mnn"])  # same computation, same bits
    # the pairs, mapped back to global cell indices, are mnnkit's
    offsets = np.cumsum([0, 24, 18, 21])
    merged = [1]
    for step, target in enumerate([0, 2], start=1):
        table = mnn_list[target]
        ref_globals = np.concatenate([np.arange(offsets[b], offsets[b + 1]) for b in merged])
        got = np.column_stack([ref_globals[table["ref cell"]], offsets[target] + table["new cell"].to_numpy()])
        want = joined.uns["mnn"]["steps"][f"step_{step}"]["pairs"]
        assert sorted(map(tuple, got)) == sorted(map(tuple, want))
        merged.append(target)


def test_default_sigma_is_mnnpys_not_batchelors():
    batches = _batches(seed=5)
    default, _, _ = mnn_correct(*batches, k=5)
    explicit, _, _ = mnn_correct(*batches, k=5, sigma=1.0)
    batchelor, _, _ = mnn_correct(*batches, k=5, sigma=0.1)
    np.testing.assert_array_equal(default.X, explicit.X)
    assert np.abs(default.X - batchelor.X).max() > 1e-3


# ---------------------------------------------------------------------------------------------
# output layout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("categories", "index_unique"), [(None, "-"), (["x", "y", "z"], "_"), (["x", "y", "z"], None)])
@pytest.mark.filterwarnings("ignore:Observation names are not unique")  # index_unique=None keeps them
def test_concatenation_is_anndatas_concatenate(categories, index_unique):
    batches = _batches()
    out, _, _ = mnn_correct(*batches, k=5, batch_key="sample", batch_categories=categories, index_unique=index_unique)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AnnData.concatenate is deprecated: it is the reference here
        old = batches[0].concatenate(
            *batches[1:], batch_key="sample", batch_categories=categories, index_unique=index_unique
        )
    assert list(out.obs_names) == list(old.obs_names)
    assert list(out.var_names) == list(old.var_names)
    assert list(out.obs["sample"].cat.categories) == list(old.obs["sample"].cat.categories)
    np.testing.assert_array_equal(out.obs["sample"].astype(str), old.obs["sample"].astype(str))
    assert set(out.obs.columns) == set(old.obs.columns)
    for column in old.obs.columns:
        pd.testing.assert_series_equal(
            out.obs[column].astype(str), old.obs[column].astype(str), check_names=False, check_categorical=False
        )
    pd.testing.assert_series_equal(out.var["symbol"], batches[0].var["symbol"])  # agreed columns are kept
    assert out.raw is None


def test_save_raw_keeps_the_uncorrected_values():
    batches = _batches()
    out, _, _ = mnn_correct(*batches, k=5, save_raw=True)
    np.testing.assert_array_equal(out.raw.X, np.vstack([a.X for a in batches]))
    assert list(out.raw.var_names) == GENES
    assert not np.allclose(out.X, out.raw.X)


def test_do_concatenate_false_returns_corrected_copies_and_leaves_inputs_alone():
    batches = _batches()
    before = [a.copy() for a in batches]
    joined, pairs_joined, _ = mnn_correct(*batches, k=5, var_subset=SUBSET)
    parts, pairs_parts, _ = mnn_correct(*batches, k=5, var_subset=SUBSET, do_concatenate=False, save_raw=True)
    assert isinstance(parts, list) and len(parts) == 3
    offsets = np.cumsum([0] + [a.n_obs for a in batches])
    for b, (part, original, kept) in enumerate(zip(parts, batches, before, strict=True)):
        assert part is not original
        np.testing.assert_array_equal(part.X, joined.X[offsets[b] : offsets[b + 1]])
        assert list(part.obs_names) == list(original.obs_names)
        np.testing.assert_array_equal(part.raw.X, kept.X)
        # the caller's objects are untouched
        np.testing.assert_array_equal(original.X, kept.X)
        assert original.raw is None
        pd.testing.assert_frame_equal(original.obs, kept.obs)
    for a, b in zip(pairs_joined[1:], pairs_parts[1:], strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_matrix_inputs_dense_and_sparse():
    batches = _batches()
    from_adata, pairs_adata, _ = mnn_correct(*batches, k=5, var_subset=SUBSET, mnn_order=[2, 1, 0])
    matrices = [a.X for a in batches]
    dense, pairs_dense, _ = mnn_correct(*matrices, var_index=GENES, var_subset=SUBSET, k=5, mnn_order=[2, 1, 0])
    assert isinstance(dense, np.ndarray)
    np.testing.assert_array_equal(dense, from_adata.X)
    for a, b in zip(pairs_adata, pairs_dense, strict=True):
        assert (a == 0 and b == 0) if isinstance(a, int) else a.equals(b)

    listed, _, _ = mnn_correct(
        *matrices, var_index=GENES, var_subset=SUBSET, k=5, mnn_order=[2, 1, 0], do_concatenate=False
    )
    offsets = np.cumsum([0] + [m.shape[0] for m in matrices])
    for b, part in enumerate(listed):
        np.testing.assert_array_equal(part, dense[offsets[b] : offsets[b + 1]])

    csr = [sparse.csr_matrix(m) for m in matrices]
    from_sparse, _, _ = mnn_correct(*csr, var_index=GENES, var_subset=SUBSET, k=5, mnn_order=[2, 1, 0])
    np.testing.assert_allclose(from_sparse, dense, rtol=0, atol=1e-12)
    # without var_index (and without a subset) the columns need no names
    unnamed, _, _ = mnn_correct(*matrices, k=5)
    named, _, _ = mnn_correct(*matrices, var_index=GENES, k=5)
    np.testing.assert_array_equal(unnamed, named)


# ---------------------------------------------------------------------------------------------
# angles
# ---------------------------------------------------------------------------------------------


def _expected_angles(batches, order, subset_names, k, sigma):
    """Angles from the naive implementation's output, with numpy's exact SVD."""
    sub = _positions(subset_names)
    corrected, _ = _naive(batches, order, k=k, sigma=sigma, subset=sub, correct_all=True)
    before = [a.X[:, sub] / np.linalg.norm(a.X[:, sub], axis=1, keepdims=True) for a in batches]
    after = [c[:, sub] for c in corrected]
    result = {}
    for step, target in enumerate(order[1:], start=1):
        ref = np.vstack([after[b] for b in order[:step]])
        axes = np.linalg.svd(ref - ref.mean(axis=0), full_matrices=False)[2][:2]
        corr = after[target] - before[target]
        unit = corr / np.linalg.norm(corr, axis=1, keepdims=True)
        cos = np.linalg.norm(unit @ axes.T, axis=1)
        result[target] = np.degrees(np.arccos(np.clip(cos, 0, 1)))
    return result


def test_angles_against_an_independent_computation():
    batches = _batches(seed=7)
    order = [1, 2, 0]
    _, _, angles = mnn_correct(*batches, k=5, var_subset=SUBSET, mnn_order=order, compute_angle=True)
    expected = _expected_angles(batches, order, SUBSET, 5, 1.0)
    assert len(angles) == 3 and angles[order[0]] == 0
    for target, want in expected.items():
        got = angles[target]
        assert isinstance(got, list) and len(got) == batches[target].n_obs
        degrees = np.array([a for a, _ in got])
        np.testing.assert_allclose(degrees, want, rtol=0, atol=1e-6)
        assert ((degrees >= 0) & (degrees <= 90)).all()
        shared = np.array([s for _, s in got])
        np.testing.assert_array_equal(shared, (np.cos(np.radians(want)) > 0.05).astype(int))


def test_angles_live_in_the_distance_space_whatever_cos_norm_out():
    batches = _batches(seed=8)
    _, _, with_out = mnn_correct(*batches, k=5, var_subset=SUBSET, compute_angle=True)
    out, _, without_out = mnn_correct(*batches, k=5, var_subset=SUBSET, compute_angle=True, cos_norm_out=False)
    assert np.abs(out.X).max() > 1.5  # not cosine-normalised: the output space differs
    for a, b in zip(with_out[1:], without_out[1:], strict=True):
        np.testing.assert_allclose([x for x, _ in a], [x for x, _ in b], rtol=0, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# every mnnpy keyword is accepted
# ---------------------------------------------------------------------------------------------


def test_every_mnnpy_keyword_is_accepted():
    batches = _batches()
    baseline, base_pairs, _ = mnn_correct(*batches, k=6, var_subset=SUBSET, svd_dim=1, mnn_order=[0, 2, 1])
    with pytest.warns(ParameterWarning, match="var_index is ignored"):
        out, pairs, angles = mnn_correct(
            *batches,
            var_index=GENES,
            var_subset=SUBSET,
            batch_key="sample",
            index_unique="|",
            batch_categories=["a", "b", "c"],
            k=6,
            sigma=1.0,
            cos_norm_in=True,
            cos_norm_out=True,
            svd_dim=1,
            var_adj=True,
            compute_angle=True,
            mnn_order=[0, 2, 1],
            svd_mode="irlb",
            do_concatenate=True,
            save_raw=True,
            n_jobs=1,
            tol=1e-5,  # irlb's options, forwarded by mnnpy: accepted and ignored
            maxit=20,
            center=None,
            scale=None,
            L=None,
        )
    np.testing.assert_array_equal(out.X, baseline.X)  # svd_mode and the irlb options change nothing
    assert out.obs_names[0] == "cell0|a"
    assert list(out.obs["sample"].cat.categories) == ["a", "b", "c"]
    assert len(angles) == 3
    for mode in ("svd", "rsvd"):
        again, _, _ = mnn_correct(*batches, k=6, var_subset=SUBSET, svd_dim=1, mnn_order=[0, 2, 1], svd_mode=mode)
        np.testing.assert_array_equal(again.X, baseline.X)


def test_n_jobs_limits_the_threads_and_not_the_answer(monkeypatch):
    batches = _batches()
    previous = numba.get_num_threads()
    seen = []
    real_correct = mnnkit.correct

    def recording(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return real_correct(*args, **kwargs)

    monkeypatch.setattr(mnnkit, "correct", recording)
    one, _, _ = mnn_correct(*batches, k=5, n_jobs=1)
    assert seen == [1]
    assert numba.get_num_threads() == previous  # restored afterwards
    many, _, _ = mnn_correct(*batches, k=5, n_jobs=-1)
    assert seen[1] == min(os.cpu_count(), numba.config.NUMBA_NUM_THREADS)  # -1: every core
    np.testing.assert_array_equal(one.X, many.X)


def test_fewer_than_two_inputs_are_returned_as_scanpy_did():
    batch = _batches()[0]
    with pytest.warns(ParameterWarning, match="at least two batches"):
        result = mnn_correct(batch)
    assert result[0] == (batch,) and result[1] == [] and result[2] == []


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_unknown_keywords_raise_a_type_error_naming_each():
    batches = _batches()
    with pytest.raises(TypeError, match=r"'foo'.*'merge_order'.*use mnn_order"):
        mnn_correct(*batches, foo=1, merge_order=["0", "1", "2"])
    with pytest.raises(TypeError, match="'k1'"):
        mnn_correct(*batches, k1=10)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mnn_order": [0, 1, 1]}, ValueError, "mnn_order must be a permutation"),
        ({"mnn_order": [0, 1]}, ValueError, "mnn_order must be a permutation"),
        ({"var_subset": ["g0", "nope"]}, ValueError, "var_subset has 1 names"),
        ({"var_subset": "g0"}, TypeError, "var_subset"),
        ({"var_subset": []}, ValueError, "var_subset is empty"),
        ({"batch_categories": ["a", "b"]}, ValueError, "batch_categories has 2 names"),
        ({"batch_categories": ["a", "a", "b"]}, ValueError, "batch_categories must be distinct"),
        ({"svd_mode": "lanczos"}, ValueError, "svd_mode"),
        ({"svd_dim": -1}, ValueError, "svd_dim"),
        ({"k": 0}, ValueError, "k must be"),
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"var_adj": "yes"}, TypeError, "var_adj"),
        ({"n_jobs": 0}, ValueError, "n_jobs"),
        ({"batch_key": ""}, TypeError, "batch_key"),
    ],
)
def test_bad_values_name_the_parameter(kwargs, error, match):
    with pytest.raises(error, match=match):
        mnn_correct(*_batches(), **kwargs)


def test_bad_inputs():
    batches = _batches()
    other_genes = batches[1][:, ::-1].copy()
    with pytest.raises(ValueError, match=r"datas\[1\] has other var_names"):
        mnn_correct(batches[0], other_genes)
    with pytest.raises(TypeError, match="not a mix"):
        mnn_correct(batches[0], batches[1].X)
    with pytest.raises(TypeError, match=r"datas\[1\] must be an AnnData"):
        mnn_correct(batches[0].X, "nope")
    with pytest.raises(ValueError, match="var_subset needs var_index"):
        mnn_correct(batches[0].X, batches[1].X, var_subset=["g0"])
    with pytest.raises(ValueError, match="var_index has 3 names"):
        mnn_correct(batches[0].X, batches[1].X, var_index=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"datas\[1\] has 11 columns"):
        mnn_correct(batches[0].X, batches[1].X[:, :11])
