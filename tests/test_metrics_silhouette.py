import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_samples as sk_silhouette_samples
from sklearn.metrics import silhouette_score

from mnnkit.metrics import _silhouette, silhouette_batch, silhouette_label, silhouette_samples


@pytest.fixture(scope="module")
def data():
    x, labels = make_blobs(n_samples=600, n_features=5, centers=4, cluster_std=3.0, random_state=0)
    batch = np.random.default_rng(0).choice(["b1", "b2", "b3"], size=600)
    return x, labels, batch


def _scib_batch_asw(x, labels, batch):
    """scIB's batch ASW from scikit-learn's silhouette_samples (independent reference)."""
    means = []
    for group in np.unique(labels):
        mask = labels == group
        n_batches = np.unique(batch[mask]).size
        if n_batches in (1, mask.sum()):
            continue
        means.append(np.mean(1 - np.abs(sk_silhouette_samples(x[mask], batch[mask]))))
    return np.mean(means)


def test_samples_equal_sklearn_including_singletons_and_duplicates(data):
    x, labels, _ = data
    labels = labels.copy()
    labels[7] = 9  # a singleton label: silhouette 0
    x = x.copy()
    x[10] = x[11]  # duplicated cells
    ours = silhouette_samples(x, labels)
    ref = sk_silhouette_samples(x, labels)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
    assert ours[7] == 0.0


def test_chunked_blocks_give_the_same_values(data, monkeypatch):
    x, labels, _ = data
    whole = silhouette_samples(x, labels)
    monkeypatch.setattr(_silhouette, "CHUNK_BYTES", 8 * 600 * 7)  # 7 rows per block
    np.testing.assert_allclose(silhouette_samples(x, labels), whole, rtol=1e-13, atol=1e-15)


def test_label_asw_is_rescaled_sklearn_score(data):
    x, labels, batch = data
    asw = silhouette_score(x, labels)
    assert silhouette_label(x, labels) == pytest.approx((asw + 1) / 2, rel=1e-12)
    assert silhouette_label(x, labels, rescale=False) == pytest.approx(asw, rel=1e-12)
    # string labels work the same
    assert silhouette_label(x, np.array(list("abcd"))[labels]) == pytest.approx((asw + 1) / 2, rel=1e-12)


def test_batch_asw_matches_scib_definition(data):
    x, labels, batch = data
    labels = labels.copy()
    labels[:5] = 7  # a small label: five cells
    batch = batch.copy()
    batch[:5] = ["b1", "b2", "b3", "b1", "b2"]
    labels[5:8] = 8  # three cells, three batches: skipped like scIB
    batch[5:8] = ["b1", "b2", "b3"]
    ref = _scib_batch_asw(x, labels, batch)
    assert silhouette_batch(x, labels, batch) == pytest.approx(ref, rel=1e-10)
    # without rescaling, the mean |s|
    unscaled = silhouette_batch(x, labels, batch, rescale=False)
    assert 0 <= unscaled <= 1


def test_batch_asw_extremes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3))
    labels = np.repeat([0, 1], 200)
    mixed = rng.integers(0, 2, 400)
    assert silhouette_batch(x, labels, mixed) > 0.9
    split = x + np.where(np.arange(400) % 2 == 0, 100.0, 0.0)[:, None]
    assert silhouette_batch(split, labels, np.arange(400) % 2) < 0.05


def test_batch_asw_all_labels_skipped_is_nan(caplog):
    x = np.random.default_rng(2).normal(size=(6, 2))
    assert np.isnan(silhouette_batch(x, np.repeat([0, 1], 3), np.zeros(6)))
    assert "returning NaN" in caplog.text


def test_deterministic_and_input_untouched(data):
    x, labels, batch = data
    keep = x.copy()
    assert silhouette_samples(x, labels).tobytes() == silhouette_samples(x, labels).tobytes()
    silhouette_batch(x, labels, batch)
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x, y: silhouette_samples(x, y[:-1]), ValueError, "labels has 9 entries but there are 10 cells"),
        (lambda x, y: silhouette_samples(x, np.zeros(10)), ValueError, "between 2 and n_cells - 1 = 9"),
        (lambda x, y: silhouette_samples(x, np.arange(10)), ValueError, "got 10"),
        (lambda x, y: silhouette_samples(np.full((10, 2), np.nan), y), ValueError, "X contains NaN"),
        (lambda x, y: silhouette_label(x[:, 0], y), ValueError, "X must be 2-D"),
        (lambda x, y: silhouette_batch(x, y, y[:3]), ValueError, "batch has 3 entries"),
        (lambda x, y: silhouette_label(np.full((10, 2), "a"), y), TypeError, "real numeric"),
    ],
)
def test_bad_input(call, error, match):
    x = np.random.default_rng(3).normal(size=(10, 2))
    y = np.repeat([0, 1], 5)
    with pytest.raises(error, match=match):
        call(x, y)


def test_neighbor_result_is_not_an_embedding():
    from mnnkit.neighbors import knn

    x = np.random.default_rng(4).normal(size=(10, 2))
    with pytest.raises(TypeError, match="must be an embedding"):
        silhouette_label(knn(x, x, 2, exclude_self=True), np.repeat([0, 1], 5))
