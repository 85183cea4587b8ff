"""fast_mnn on dask arrays: a real dask.distributed LocalCluster on data in a temporary zarr store.

Needs the ``dask`` extra (dask[array], distributed, zarr); skipped without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import mnnkit
from mnnkit.correction.fast import _dask_kernels
from mnnkit.linalg import randomized_svd
from tests.conftest import make_batches

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

from mnnkit.linalg._dask import dask_randomized_svd  # noqa: E402


def _data(sparse: bool) -> ad.AnnData:
    adata = make_batches(sizes=(300, 250, 280), genes=40)
    x = adata.X.astype(np.float32)
    adata.X = sp.csr_matrix(x) if sparse else x
    return adata


def _lazy(path, chunk_rows: int) -> ad.AnnData:
    group = zarr.open(path)
    return ad.AnnData(
        X=ad.experimental.read_elem_lazy(group["X"], chunks=(chunk_rows, -1)),
        obs=ad.io.read_elem(group["obs"]),
        var=ad.io.read_elem(group["var"]),
    )


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None)
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_local_cluster_matches_in_memory(client, tmp_path, sparse: bool) -> None:
    adata = _data(sparse)
    adata.write_zarr(tmp_path / "data.zarr")
    expected = mnnkit.fast_mnn(adata, "batch", subset="hvg", d=10, k=10, reconstruct="layer", copy=True)

    lazy = _lazy(tmp_path / "data.zarr", chunk_rows=200)
    assert isinstance(lazy.X, da.Array)
    tasks_before = len(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.task_prefixes))
    mnnkit.fast_mnn(lazy, "batch", subset="hvg", d=10, k=10, reconstruct="layer")
    assert len(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.task_prefixes)) > tasks_before

    np.testing.assert_allclose(lazy.obsm["X_mnn"], expected.obsm["X_mnn"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(lazy.varm["X_mnn"], expected.varm["X_mnn"], rtol=0, atol=1e-6)
    for step, info in expected.uns["X_mnn"]["steps"].items():
        np.testing.assert_array_equal(lazy.uns["X_mnn"]["steps"][step]["pairs"], info["pairs"])
    # the reconstruction is lazy, with the input's row blocks, and is written block by block
    layer = lazy.layers["X_mnn"]
    assert isinstance(layer, da.Array) and layer.chunks[0] == lazy.X.chunks[0]
    layer.to_zarr(str(tmp_path / "reconstructed.zarr"))
    written = zarr.open(str(tmp_path / "reconstructed.zarr"))[:]
    np.testing.assert_allclose(written, expected.layers["X_mnn"], rtol=0, atol=1e-6)


def test_column_chunked_matrix_is_refused_with_the_fix(tmp_path) -> None:
    adata = _data(False)
    adata.X = da.from_array(np.asarray(adata.X), chunks=(200, 10))
    with pytest.raises(ValueError, match=r"chunked along columns \(4 column chunks.*rechunk\(\{0: 'auto', 1: -1\}\)"):
        mnnkit.fast_mnn(adata, "batch", d=5, k=10)


def test_no_cluster_is_started_without_a_client(tmp_path) -> None:
    """Without a client, dask's local threads do the work: no distributed client exists afterwards."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = textwrap.dedent(
        """
        import numpy as np, dask.array as da, distributed, mnnkit
        from tests.conftest import make_batches
        a = make_batches(sizes=(60, 50, 70), genes=20)
        expected = mnnkit.fast_mnn(a, "batch", d=6, k=10, copy=True).obsm["X_mnn"]
        a.X = da.from_array(a.X, chunks=(64, -1))
        mnnkit.fast_mnn(a, "batch", d=6, k=10)
        try:
            distributed.default_client()
        except ValueError:
            pass
        else:
            raise AssertionError("a distributed client was set up")
        np.testing.assert_allclose(a.obsm["X_mnn"], expected, rtol=0, atol=1e-10)
        """
    )
    env = {**os.environ, "PYTHONPATH": here}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("method", ["randomized", "exact"])
@pytest.mark.parametrize("chunk", ["dense", "csr"])
def test_dask_svd_matches_in_memory_svd(method: str, chunk: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(1.0, 1.0, size=(500, 30)) * (rng.random((500, 30)) < 0.4)
    weights = rng.random(500) + 0.5
    centre = x.mean(axis=0)
    memory = randomized_svd(x, 6, center=centre, row_weights=weights, method=method, rng=4)
    lazy = da.from_array(sp.csr_matrix(x) if chunk == "csr" else x, chunks=(128, -1))
    result = dask_randomized_svd(lazy, 6, center=centre, row_weights=weights, method=method, rng=4)
    np.testing.assert_allclose(result.S, memory.S, rtol=1e-10)
    np.testing.assert_allclose(result.Vt, memory.Vt, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.U, memory.U, rtol=0, atol=1e-8)


def test_serial_kernels_are_safe_in_concurrent_threads() -> None:
    """The kernels run inside dask tasks are nogil and serial: concurrent calls give the sequential answers."""
    rng = np.random.default_rng(0)
    blocks = [sp.random(400, 60, density=0.2, format="csr", random_state=i) for i in range(16)]
    groups = [rng.integers(0, 4, 400) for _ in blocks]
    divisors = [rng.random(400) + 0.5 for _ in blocks]

    def work(i):
        b = blocks[i]
        sums = _dask_kernels.csr_row_sumsq_serial(b.data, b.indptr.astype(np.int64), 400)
        grouped = _dask_kernels.csr_group_sums_serial(
            b.data, b.indices.astype(np.int64), b.indptr.astype(np.int64), divisors[i], groups[i], 4, 60
        )
        return sums, grouped

    sequential = [work(i) for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(work, range(16)))
    for (s1, g1), (s2, g2), b, g, dv in zip(sequential, concurrent, blocks, groups, divisors, strict=True):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(g1, g2)
        np.testing.assert_allclose(s1, np.asarray(b.multiply(b).sum(axis=1)).ravel(), rtol=1e-12)
        dense = b.toarray() / dv[:, None]
        np.testing.assert_allclose(g1, np.stack([dense[g == k].sum(axis=0) for k in range(4)]), rtol=1e-12)
