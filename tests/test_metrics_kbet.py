import numpy as np
import pytest
from scipy.stats import chisquare

from mnnkit.metrics import kbet_global_acceptance, kbet_per_label, kbet_pvalues
from mnnkit.neighbors import knn


def test_well_mixed_batches_are_accepted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 4))
    batch = rng.choice(["a", "b", "c"], size=1500, p=[0.5, 0.3, 0.2])
    rate = kbet_global_acceptance(x, batch, n_neighbors=50)
    assert rate > 0.85  # ~ 1 - alpha under the null


def test_separated_batches_are_rejected():
    rng = np.random.default_rng(1)
    batch = np.repeat([0, 1, 2], 300)
    x = rng.normal(size=(900, 4)) + batch[:, None] * 20.0
    assert kbet_global_acceptance(x, batch, n_neighbors=50) < 0.05


def test_pvalues_are_pearson_chi_square_against_global_composition():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 3))
    batch = rng.choice([0, 1, 2], size=300, p=[0.6, 0.3, 0.1])
    batch[x[:, 0] > 1] = 2  # some structure
    nn = knn(x, x, 20, exclude_self=True)
    p = kbet_pvalues(nn, batch, n_neighbors=20)
    share = np.bincount(batch) / 300
    for i in (0, 17, 150, 299):
        observed = np.bincount(batch[nn.indices[i]], minlength=3)
        assert p[i] == pytest.approx(chisquare(observed, 20 * share).pvalue, rel=1e-10)
    assert kbet_global_acceptance(nn, batch, n_neighbors=20, alpha=0.05) == pytest.approx(np.mean(p >= 0.05))
    np.testing.assert_array_equal(kbet_pvalues(x, batch, n_neighbors=20), p)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch": np.zeros(30)}, ValueError, "at least 2 batches"),
        ({"alpha": 1.0}, ValueError, r"alpha must be a number in \(0, 1\)"),
        ({"alpha": True}, ValueError, "alpha must be"),
        ({"batch": np.zeros(29)}, ValueError, "batch has 29 entries but there are 30 cells"),
        ({"n_neighbors": 30}, ValueError, "n_neighbors=30 needs more than 30 cells"),
    ],
)
def test_bad_input(kwargs, error, match):
    x = np.random.default_rng(3).normal(size=(30, 2))
    args = {"batch": np.arange(30) % 2, "n_neighbors": 5} | kwargs
    with pytest.raises(error, match=match):
        kbet_global_acceptance(x, args.pop("batch"), **args)


def _typed_blobs(seed, shift, sizes=(300, 200)):
    """Cell types far apart; inside each, three batches shifted by ``shift`` along their own axis."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    batch = rng.integers(0, 3, labels.size)
    x = rng.normal(size=(labels.size, 5)) + 30.0 * np.eye(5)[labels + 3] + shift * np.eye(5)[batch]
    return x, labels, batch


def test_per_label_mixed_and_separated_batches():
    x, labels, batch = _typed_blobs(0, 0.0)
    value, table = kbet_per_label(x, batch, labels, return_table=True)
    assert value > 0.85  # ~ 1 - alpha under the null, in every label
    assert (table["kbet"] > 0.85).all() and list(table["k0"]) == [25, 16] and list(table["n_tested"]) == [300, 200]
    assert value == pytest.approx(table["kbet"].mean())
    x, labels, batch = _typed_blobs(0, 8.0)
    assert kbet_per_label(x, batch, labels) < 0.05
    # the global test cannot tell the two situations apart when batches are mixed across cell types only:
    # here each cell type comes from its own batch, which the global test rejects and the per-label test skips
    x, labels, _ = _typed_blobs(1, 0.0)
    value, table = kbet_per_label(x, labels, np.repeat(0, labels.size), return_table=True)
    assert kbet_global_acceptance(x, labels) < 0.05 and value < 0.05  # one label holding both separated batches
    value, table = kbet_per_label(x, labels, labels, return_table=True)
    assert np.isnan(value) and table["kbet"].isna().all()  # every label holds a single batch: skipped


def test_per_label_ten_cell_label_and_permutation_invariance():
    x, labels, batch = _typed_blobs(2, 0.5, sizes=(300, 10))
    value, table = kbet_per_label(x, batch, labels, return_table=True)
    assert table.loc[1, "k0"] == 10 and table.loc[1, "n_tested"] == 10 and 0 <= table.loc[1, "kbet"] <= 1
    order = np.random.default_rng(3).permutation(labels.size)
    again = kbet_per_label(x[order], batch[order], labels[order], return_table=True)[1]
    np.testing.assert_allclose(again["kbet"], table["kbet"], rtol=0, atol=1e-12)


def test_umap_connectivities_match_umap_learn():
    umap = pytest.importorskip("umap.umap_")
    from mnnkit.metrics._kbet import _umap_connectivities

    x = np.random.default_rng(4).normal(size=(400, 4))
    x[5] = x[6]  # a duplicated cell: distance 0 to a neighbour
    nn = knn(x, x, 20, exclude_self=True)
    n = x.shape[0]
    indices = np.hstack([np.arange(n)[:, None], nn.indices])  # umap's input lists each cell first
    distances = np.hstack([np.zeros((n, 1)), nn.distances])
    ref = umap.fuzzy_simplicial_set(
        np.zeros((n, 1)), 21, None, None, knn_indices=indices, knn_dists=distances, set_op_mix_ratio=1.0
    )[0].tocsr()
    ours = _umap_connectivities(nn)
    assert ours.dtype == np.float32 and abs(ours - ours.T).max() == 0
    ours.sort_indices()
    ref.sort_indices()
    np.testing.assert_array_equal(ours.indptr, ref.indptr)  # the same edges
    np.testing.assert_array_equal(ours.indices, ref.indices)
    np.testing.assert_allclose(ours.toarray(), ref.toarray(), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch": np.zeros(40)}, ValueError, "at least 2 batches"),
        ({"labels": np.zeros(39)}, ValueError, "labels has 39 entries but there are 40 cells"),
        ({"alpha": 0.0}, ValueError, r"alpha must be a number in \(0, 1\)"),
        ({"diffusion_n_comps": 0}, ValueError, "diffusion_n_comps must be >= 1"),
        ({"diffusion_n_comps": 2.5}, TypeError, "diffusion_n_comps must be an integer"),
        ({"return_table": "yes"}, TypeError, "return_table must be True or False"),
        ({"n_neighbors": 40}, ValueError, "n_neighbors=40 needs more than 40 cells"),
        ({"rng": -1}, ValueError, "rng"),
    ],
)
def test_per_label_bad_input(kwargs, error, match):
    x = np.random.default_rng(5).normal(size=(40, 2))
    args = {"batch": np.arange(40) % 2, "labels": np.arange(40) % 3, "n_neighbors": 5} | kwargs
    with pytest.raises(error, match=match):
        kbet_per_label(x, args.pop("batch"), args.pop("labels"), **args)
