"""``n_jobs`` of the heavy functions besides the corrections (mnnkit.pca, mnnkit.metrics.evaluate): one
policy (mnnkit._threads.job_threads), checked before any work, threads restored, the same result."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import mnnkit
from tests.conftest import three_batches, to_adata


@pytest.fixture
def adata():
    a = to_adata(three_batches(n=(60, 50, 55), genes=30))
    a.obs["cell_type"] = np.where(np.asarray(a.X)[:, 0] > np.median(np.asarray(a.X)[:, 0]), "x", "y")
    return a


def test_pca_n_jobs(adata, monkeypatch) -> None:
    from mnnkit.linalg import _pca

    seen = []
    real = _pca.mean_var

    def recording(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(_pca, "mean_var", recording)
    before = numba.get_num_threads()
    one = mnnkit.pca(adata, n_comps=5, n_jobs=1, copy=True)
    assert seen == [1] and numba.get_num_threads() == before
    two = mnnkit.pca(adata, n_comps=5, n_jobs=2, copy=True)
    np.testing.assert_allclose(one.obsm["X_pca"], two.obsm["X_pca"], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer"):
        mnnkit.pca(adata, n_comps=5, n_jobs=0)
    assert "X_pca" not in adata.obsm


def test_evaluate_n_jobs(adata) -> None:
    adata.obsm["X_emb"] = np.asarray(adata.X, dtype=np.float64)[:, :10]
    one = mnnkit.metrics.evaluate(adata, batch_key="batch", label_key="cell_type", rep="X_emb", n_jobs=1)
    two = mnnkit.metrics.evaluate(adata, batch_key="batch", label_key="cell_type", rep="X_emb", n_jobs=2)
    np.testing.assert_allclose(one["value"].to_numpy(), two["value"].to_numpy(), rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="n_jobs must be None or a non-zero integer"):
        mnnkit.metrics.evaluate(adata, batch_key="batch", rep="X_emb", n_jobs="all")
