"""mnnkit.fast_mnn against a slow, obviously-correct fastMNN written here from ALGORITHM.md section 2.

The naive version shares no code with mnnkit: dense numpy, full distance matrices, explicit loops
over pairs and cells, ``np.linalg.svd`` for the PCA. It covers what the batchelor bundles do not:
explicit and automatic merge orders (with fastMNN's cumulative orthogonalisation while counting),
prop_k, min_batch_skip, cos_norm=False, ``use_rep``, the rotation of genes outside the subset
(``correct.all``), and every input array type.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import mnnkit
from tests.conftest import make_batches

# --------------------------------------------------------------------------------------- naive fastMNN


def _cosine(x: np.ndarray, cols: np.ndarray) -> np.ndarray:
    l2 = np.sqrt((x[:, cols] ** 2).sum(axis=1))
    return x / np.maximum(l2, 1e-8)[:, None]


def naive_pca(batches: list[np.ndarray], d: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Scores per batch, rotation (genes x d) and centre, by an exact SVD of the batch-scaled data."""
    mu = np.mean([b.mean(axis=0) for b in batches], axis=0)
    z = np.vstack([(b - mu) / np.sqrt(b.shape[0]) for b in batches])
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    v = vt[:d].T
    return [(b - mu) @ v for b in batches], v, mu


def naive_pca_all_genes(batches, cols, d):
    """Rotation for all genes: subset rows from the SVD, the others as Z_other^T U S^-1 (correct.all)."""
    sub = [b[:, cols] for b in batches]
    mu = np.mean([b.mean(axis=0) for b in sub], axis=0)
    z = np.vstack([(b - mu) / np.sqrt(b.shape[0]) for b in sub])
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    others = np.setdiff1d(np.arange(batches[0].shape[1]), cols)
    mu_o = np.mean([b[:, others].mean(axis=0) for b in batches], axis=0)
    z_o = np.vstack([(b[:, others] - mu_o) / np.sqrt(b.shape[0]) for b in batches])
    rotation = np.zeros((batches[0].shape[1], d))
    rotation[cols] = vt[:d].T
    rotation[others] = z_o.T @ u[:, :d] / s[:d]
    return rotation


def _pairs(left: np.ndarray, right: np.ndarray, k_left: int, k_right: int) -> list[tuple[int, int]]:
    d2 = ((left[:, None, :] - right[None, :, :]) ** 2).sum(-1)
    near_right = np.argsort(d2, axis=1, kind="stable")[:, :k_right]
    near_left = np.argsort(d2.T, axis=1, kind="stable")[:, :k_left]
    return [(lc, int(r)) for lc in range(left.shape[0]) for r in near_right[lc] if lc in near_left[r]]


def _k(k: int, prop_k: float | None, n: int) -> int:
    if prop_k is not None:
        k = max(k, int(np.round(prop_k * n)))
    return min(k, n)


def _centre_along(m: np.ndarray, vec: np.ndarray) -> np.ndarray:
    unit = vec / np.sqrt((vec**2).sum())
    t = m @ unit
    return m + np.outer(t.mean() - t, unit)


def _averages(left, right, pairs):
    cells = sorted({r for _, r in pairs})
    return cells, np.array([np.mean([left[lc] - right[r] for lc, r in pairs if r == u], axis=0) for u in cells])


def _var(m: np.ndarray) -> float:
    return float(np.var(m, axis=0, ddof=1).sum())


def naive_merge(pcs: list[np.ndarray], *, k=20, prop_k=None, ndist=3.0, order="default", min_batch_skip=0.0):
    """The fastMNN merge of per-batch PCs. Returns the corrected PCs per batch and the steps."""
    nodes = [{"batches": [b], "data": pcs[b].copy(), "extras": []} for b in range(len(pcs))]

    def count(left, rights):
        ld = left["data"].copy()
        out = []
        for right in rights:
            rd = right["data"].copy()
            for vec in left["extras"]:
                rd = _centre_along(rd, vec)
            for vec in right["extras"]:  # cumulative on the left copy, as batchelor does
                ld = _centre_along(ld, vec)
            n_l, n_r = ld.shape[0], rd.shape[0]
            out.append(len(_pairs(ld, rd, _k(k, prop_k, n_l), _k(k, prop_k, n_r))))
        return out

    def merge(left, right):
        ld, rd = left["data"].copy(), right["data"].copy()
        sizes_l = [pcs[b].shape[0] for b in left["batches"]]
        sizes_r = [pcs[b].shape[0] for b in right["batches"]]
        bounds_l, bounds_r = np.cumsum([0, *sizes_l]), np.cumsum([0, *sizes_r])
        before = [_var(ld[bounds_l[i] : bounds_l[i + 1]]) for i in range(len(sizes_l))]
        before += [_var(rd[bounds_r[i] : bounds_r[i + 1]]) for i in range(len(sizes_r))]
        for vec in left["extras"]:
            rd = _centre_along(rd, vec)
        for vec in right["extras"]:
            ld = _centre_along(ld, vec)
        pairs = _pairs(ld, rd, _k(k, prop_k, ld.shape[0]), _k(k, prop_k, rd.shape[0]))
        cells, ave = _averages(ld, rd, pairs)
        overall = ave.mean(axis=0)
        size = np.sqrt((overall**2).sum() / (ave**2).mean(axis=0).sum())
        skipped = size < min_batch_skip
        extras = left["extras"] + right["extras"]
        if not skipped:
            ld, rd = _centre_along(ld, overall), _centre_along(rd, overall)
            cells, ave = _averages(ld, rd, pairs)
            uniq = rd[cells]
            kk = min(_k(k, prop_k, rd.shape[0]), len(cells))
            corrected = rd.copy()
            for j in range(rd.shape[0]):
                dist = np.sqrt(((uniq - rd[j]) ** 2).sum(axis=1))
                near = np.argsort(dist, kind="stable")[:kk]
                h = max(dist[near[(kk + 1) // 2 - 1]] * ndist, 1e-8)
                w = (1 - np.minimum(dist[near] / h, 1) ** 3) ** 3
                corrected[j] = rd[j] + (w[:, None] * ave[near]).sum(axis=0) / w.sum()
            extras = extras + [overall]
        else:
            corrected = rd
        after = [_var(ld[bounds_l[i] : bounds_l[i + 1]]) for i in range(len(sizes_l))]
        after += [_var(rd[bounds_r[i] : bounds_r[i + 1]]) for i in range(len(sizes_r))]
        batches = left["batches"] + right["batches"]
        step = {
            "left": left["batches"], "right": right["batches"], "batch_size": size, "skipped": skipped,
            "lost_var": {b: 1 - a / bf for b, a, bf in zip(batches, after, before, strict=True)},
            "n_pairs": len(pairs),
        }  # fmt: skip
        return {"batches": batches, "data": np.vstack([ld, corrected]), "extras": extras}, step

    steps = []
    if order == "auto":
        counts = {}
        for i in range(1, len(nodes)):
            for j, c in enumerate(count(nodes[i], nodes[:i])):
                counts[(id(nodes[i]), id(nodes[j]))] = c
        while len(nodes) > 1:
            best = None
            for j in range(len(nodes)):  # column-major: smallest right, then smallest left
                for i in range(j + 1, len(nodes)):
                    c = counts[(id(nodes[i]), id(nodes[j]))]
                    if best is None or c > best[0]:
                        best = (c, i, j)
            _, i, j = best
            merged, step = merge(nodes[i], nodes[j])
            steps.append(step)
            nodes = [n for t, n in enumerate(nodes) if t not in (i, j)] + [merged]
            if len(nodes) > 1:
                for j2, c in enumerate(count(nodes[-1], nodes[:-1])):
                    counts[(id(nodes[-1]), id(nodes[j2]))] = c
    else:
        sequence = list(range(len(nodes))) if order == "default" else order
        current = nodes[sequence[0]]
        for b in sequence[1:]:
            current, step = merge(current, nodes[b])
            steps.append(step)
        nodes = [current]
    final = nodes[0]
    out, start = {}, 0
    for b in final["batches"]:
        out[b] = final["data"][start : start + pcs[b].shape[0]]
        start += pcs[b].shape[0]
    return [out[b] for b in range(len(pcs))], steps


# --------------------------------------------------------------------------------------- data


def _split(adata: ad.AnnData) -> list[np.ndarray]:
    codes = adata.obs["batch"].cat.codes.to_numpy()
    return [np.asarray(adata.X[codes == b], dtype=np.float64) for b in range(codes.max() + 1)]


def _aligned(mine: np.ndarray, ref: np.ndarray, rot_mine: np.ndarray, rot_ref: np.ndarray) -> np.ndarray:
    signs = np.sign(np.sum(rot_mine * rot_ref, axis=0))
    return mine * signs


def _check_steps(info: dict, steps: list[dict], names: list[str]) -> None:
    assert len(info["steps"]) == len(steps)
    for i, step in enumerate(steps, start=1):
        mine = info["steps"][f"step_{i}"]
        assert list(mine["left"]) == [names[b] for b in step["left"]]
        assert list(mine["right"]) == [names[b] for b in step["right"]]
        assert mine["n_pairs"] == step["n_pairs"]
        assert bool(mine["skipped"]) == bool(step["skipped"])
        np.testing.assert_allclose(mine["batch_size"], step["batch_size"], rtol=1e-9)
        for b, value in step["lost_var"].items():
            np.testing.assert_allclose(mine["lost_var"][names[b]], value, rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"merge_order": ["b2", "b0", "b3", "b1"]},
        {"merge_order": "auto"},
        {"prop_k": 0.3, "k": 5},
        {"ndist": 1.5, "k": 7},
    ],
    ids=["default", "explicit-order", "auto", "prop_k", "ndist"],
)
def test_matches_naive_fastmnn(options: dict) -> None:
    adata = make_batches()
    names = list(adata.obs["batch"].cat.categories)
    cols = np.flatnonzero(adata.var["hvg"].to_numpy())
    batches = [_cosine(b, cols)[:, cols] for b in _split(adata)]
    pcs, rotation, _ = naive_pca(batches, 10)
    order = options.get("merge_order", "default")
    naive_order = order if order in ("default", "auto") else [names.index(n) for n in order]
    expected, steps = naive_merge(
        pcs, k=options.get("k", 20), prop_k=options.get("prop_k"), ndist=options.get("ndist", 3.0), order=naive_order
    )
    mnnkit.fast_mnn(adata, "batch", subset="hvg", d=10, svd_solver="exact", **options)
    mine_rotation = adata.varm["X_mnn"][cols]
    corrected = _aligned(adata.obsm["X_mnn"], None, mine_rotation, rotation)
    np.testing.assert_allclose(corrected, np.vstack(expected), rtol=0, atol=1e-9)
    _check_steps(adata.uns["X_mnn"], steps, names)
    if order == "auto":
        entered = [*steps[0]["left"], *steps[0]["right"]] + [b for s in steps[1:] for b in s["right"]]
        assert list(adata.uns["X_mnn"]["merge_order"]) == [names[b] for b in entered]


def test_min_batch_skip_skips_the_step_as_batchelor() -> None:
    """A step with batch_size below min_batch_skip keeps the data as orthogonalised, and adds no vector."""
    adata = make_batches(sizes=(60, 60, 60), shift=0.5, seed=3)
    batches = [_cosine(b, np.arange(30)) for b in _split(adata)]
    pcs, rotation, _ = naive_pca(batches, 8)
    _, probe = naive_merge(pcs, k=10)
    threshold = probe[0]["batch_size"] * 1.001  # just above the first step's batch_size
    expected, steps = naive_merge(pcs, k=10, min_batch_skip=threshold)
    assert [bool(s["skipped"]) for s in steps] == [True, False]  # the test can tell skipped from not
    mnnkit.fast_mnn(adata, "batch", d=8, k=10, svd_solver="exact", min_batch_skip=threshold)
    corrected = _aligned(adata.obsm["X_mnn"], None, adata.varm["X_mnn"], rotation)
    np.testing.assert_allclose(corrected, np.vstack(expected), rtol=0, atol=1e-9)
    _check_steps(adata.uns["X_mnn"], steps, ["b0", "b1", "b2"])


def test_cos_norm_false_and_use_rep() -> None:
    adata = make_batches(sizes=(50, 70, 60))
    batches = _split(adata)
    pcs, rotation, _ = naive_pca(batches, 6)
    expected, steps = naive_merge(pcs, k=9)
    mnnkit.fast_mnn(adata, "batch", d=6, k=9, cos_norm=False, svd_solver="exact")
    corrected = _aligned(adata.obsm["X_mnn"], None, adata.varm["X_mnn"], rotation)
    np.testing.assert_allclose(corrected, np.vstack(expected), rtol=0, atol=1e-9)

    # an embedding in .obsm is corrected as it is (no PCA, no cosine normalisation, reducedMNN)
    adata.obsm["X_pca"] = np.vstack(pcs) * 3.0
    expected, steps = naive_merge([p * 3.0 for p in pcs], k=9)
    mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", k=9, key_added="rep")
    np.testing.assert_allclose(adata.obsm["rep"], np.vstack(expected), rtol=0, atol=1e-9)
    assert "rep_rotation" not in adata.varm
    _check_steps(adata.uns["rep"], steps, ["b0", "b1", "b2"])
    # d with use_rep takes the first d columns
    expected, _ = naive_merge([p[:, :4] * 3.0 for p in pcs], k=9)
    mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", d=4, k=9, key_added="rep4")
    np.testing.assert_allclose(adata.obsm["rep4"], np.vstack(expected), rtol=0, atol=1e-9)


def test_count_row_orthogonalises_the_left_cumulatively() -> None:
    """fastMNN's auto-merge counts carry the left node's orthogonalisation from one candidate to the next."""
    from mnnkit.correction.fast._engine import FastMergeState, FastParams, count_row
    from mnnkit.correction.fast._search import ExactSearch

    rng = np.random.default_rng(5)
    members = [np.arange(i * 40, (i + 1) * 40) for i in range(3)]
    data = rng.normal(size=(120, 5)) + np.repeat(rng.normal(size=(3, 5)) * 2, 40, axis=0)
    state = FastMergeState(data=data.copy(), members=members, params=FastParams(k=6), search=ExactSearch())
    vectors = {(1,): [rng.normal(size=5)], (2,): [rng.normal(size=5)]}
    state.extras.update(vectors)
    counts = count_row(state, (0,), [(1,), (2,)])
    left = data[:40].copy()
    expected = []
    for b in (1, 2):
        right = data[members[b]].copy()
        left = _centre_along(left, vectors[(b,)][0])  # cumulative: the second count sees both vectors
        expected.append(len(_pairs(left, right, 6, 6)))
    assert counts == expected
    independent = len(_pairs(_centre_along(data[:40], vectors[(2,)][0]), data[members[2]], 6, 6))
    assert expected[1] != independent  # the quirk changes the count here, so the test can tell
    np.testing.assert_array_equal(state.data, data)  # counting leaves the data alone


@pytest.mark.parametrize("array_type", ["dense32", "dense64", "csr", "csc"])
def test_array_types_give_the_same_result(array_type: str) -> None:
    adata = make_batches(sizes=(40, 50, 45))
    ref = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=8, k=10, svd_solver="exact", copy=True)
    x = np.asarray(adata.X, dtype=np.float64)
    adata.X = {
        "dense32": x.astype(np.float32), "dense64": x, "csr": sp.csr_matrix(x), "csc": sp.csc_matrix(x),
    }[array_type]  # fmt: skip
    out = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=8, k=10, svd_solver="exact", copy=True)
    tol = 1e-5 if array_type == "dense32" else 1e-10
    expected_dtype = np.float32 if array_type == "dense32" else np.float64
    assert out.obsm["X_mnn"].dtype == expected_dtype
    np.testing.assert_allclose(out.obsm["X_mnn"], ref.obsm["X_mnn"], rtol=0, atol=tol)
    for step in ref.uns["X_mnn"]["steps"]:
        np.testing.assert_array_equal(
            out.uns["X_mnn"]["steps"][step]["pairs"], ref.uns["X_mnn"]["steps"][step]["pairs"]
        )


def test_all_gene_rotation_and_layer_match_naive() -> None:
    """reconstruct='factors'/'layer': rotation of the non-subset genes as batchelor's correct.all."""
    adata = make_batches(sizes=(50, 60))
    cols = np.flatnonzero(adata.var["hvg"].to_numpy())
    batches = [_cosine(b, cols) for b in _split(adata)]
    rotation = naive_pca_all_genes(batches, cols, 7)
    out = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=7, svd_solver="exact", reconstruct="layer", copy=True)
    signs = np.sign(np.sum(out.varm["X_mnn"][cols] * rotation[cols], axis=0))
    np.testing.assert_allclose(out.varm["X_mnn"] * signs, rotation, rtol=0, atol=1e-9)
    np.testing.assert_allclose(out.layers["X_mnn"], out.obsm["X_mnn"] @ out.varm["X_mnn"].T, rtol=0, atol=1e-12)
    mu_all = np.mean([b.mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(out.uns["X_mnn"]["center"], mu_all, rtol=0, atol=1e-12)
    factors = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=7, svd_solver="exact", reconstruct="factors", copy=True)
    np.testing.assert_array_equal(factors.varm["X_mnn"], out.varm["X_mnn"])
    assert "mnn" not in factors.layers
    # without reconstruct, genes outside the subset have no rotation
    plain = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=7, svd_solver="exact", copy=True)
    assert np.isnan(plain.varm["X_mnn"][~adata.var["hvg"].to_numpy()]).all()
    assert np.isnan(plain.uns["X_mnn"]["center"][~adata.var["hvg"].to_numpy()]).all()
