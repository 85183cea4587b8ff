import numpy as np
import pytest
from scipy.stats import chisquare

from mnnkit.metrics import kbet_acceptance, kbet_pvalues
from mnnkit.neighbors import knn


def test_well_mixed_batches_are_accepted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 4))
    batch = rng.choice(["a", "b", "c"], size=1500, p=[0.5, 0.3, 0.2])
    rate = kbet_acceptance(x, batch, n_neighbors=50)
    assert rate > 0.85  # ~ 1 - alpha under the null


def test_separated_batches_are_rejected():
    rng = np.random.default_rng(1)
    batch = np.repeat([0, 1, 2], 300)
    x = rng.normal(size=(900, 4)) + batch[:, None] * 20.0
    assert kbet_acceptance(x, batch, n_neighbors=50) < 0.05


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
    assert kbet_acceptance(nn, batch, n_neighbors=20, alpha=0.05) == pytest.approx(np.mean(p >= 0.05))
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
        kbet_acceptance(x, args.pop("batch"), **args)
