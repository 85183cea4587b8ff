"""scib-metrics' ``Benchmarker`` behind one call, for tables comparable with published scIB benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mnnkit._random import RngLike, as_seed
from mnnkit._validation import check_adata, check_bool
from mnnkit.metrics._inputs import obs_column
from mnnkit.neighbors import KNeighborsLike, knn

__all__ = ["benchmark"]

logger = logging.getLogger("mnnkit")

_MISSING = (
    "mnnkit.metrics.benchmark runs scib-metrics' Benchmarker, and scib-metrics is not installed: "
    'pip install "mnnkit[scib]" (or pip install scib-metrics directly; it is also in the test extra, mnnkit[test]).'
)


def _import_scib() -> Any:
    try:
        import scib_metrics.benchmark as scib_benchmark
        from scib_metrics.nearest_neighbors import NeighborsResults
    except ImportError as error:
        raise ImportError(_MISSING) from error
    return scib_benchmark, NeighborsResults


def benchmark(
    adata: Any,
    *,
    batch_key: str,
    label_key: str,
    embedding_obsm_keys: Sequence[str],
    pre_integrated_embedding_obsm_key: str | None = None,
    bio_conservation_metrics: Any = None,
    batch_correction_metrics: Any = None,
    neighbors_method: str | KNeighborsLike | None = None,
    min_max_scale: bool = False,
    n_jobs: int = 1,
    progress_bar: bool = False,
    rng: RngLike = 0,
) -> pd.DataFrame:
    """Run scib-metrics' ``Benchmarker`` on embeddings of an AnnData and return its results table.

    Needs the optional dependency scib-metrics (``pip install "mnnkit[scib]"``; it brings JAX). The numbers
    are scib-metrics' own, for comparison with published scIB benchmarks; :func:`evaluate` computes
    mnnkit's panel (the same definitions for the metrics that share a name) without that dependency.

    Parameters
    ----------
    adata
        AnnData; not modified (the Benchmarker works on a new AnnData that shares its arrays). Its ``X``
        should hold normalised, uncorrected expression when ``pre_integrated_embedding_obsm_key`` is None:
        the Benchmarker then computes a PCA of it as the unintegrated reference.
    batch_key, label_key
        ``adata.obs`` columns of batches and cell types.
    embedding_obsm_keys
        ``adata.obsm`` keys of the embeddings to score (e.g. ``["X_pca", "X_mnn"]``).
    pre_integrated_embedding_obsm_key
        ``adata.obsm`` key of the uncorrected embedding (for the PCR comparison), or None (see ``adata``).
    bio_conservation_metrics, batch_correction_metrics
        scib-metrics' ``BioConservation`` and ``BatchCorrection`` specifications, or None for its
        defaults (all of its default metrics).
    neighbors_method
        None (default): scib-metrics' own pynndescent search, i.e. exactly the Benchmarker's numbers.
        ``"exact"``, ``"pynndescent"`` or a fitted estimator: :func:`mnnkit.neighbors.knn`, its neighbour
        lists given to the Benchmarker with each cell first (scib-metrics' convention).
    min_max_scale
        Min-max scale each metric over the embeddings, as in scib-metrics' ``get_results``.
    n_jobs
        Threads of scib-metrics' neighbour search (with ``neighbors_method=None``).
    progress_bar
        Show scib-metrics' progress bars.
    rng
        Randomness of ``neighbors_method="pynndescent"`` (scib-metrics' own search, the default, does not
        take it): an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances) or None (fresh entropy from the operating system: a different result on
        every call).

    Returns
    -------
    pandas.DataFrame
        scib-metrics' ``Benchmarker.get_results(min_max_scale=...)``: one row per embedding (plus its
        "Metric Type" row), one column per metric ("KBET", "Graph connectivity", "iLISI", ...) and the
        aggregate scores ("Batch correction", "Bio conservation", "Total").

    Raises
    ------
    ImportError
        If scib-metrics is not installed; the message says how to install it.

    Notes
    -----
    scib-metrics' neighbour lists include the cell itself: its 15-, 50- and 90-neighbour results are
    mnnkit's ``n_neighbors`` 14, 49 and 89. Time and memory are scib-metrics' (its silhouettes are
    quadratic in the number of cells).
    """
    scib_benchmark, neighbors_results = _import_scib()
    from anndata import AnnData

    check_adata(adata, "benchmark")
    obs_column(adata, batch_key, "batch_key")
    obs_column(adata, label_key, "label_key")
    if isinstance(embedding_obsm_keys, str) or not isinstance(embedding_obsm_keys, Sequence):
        msg = f"embedding_obsm_keys must be a list of adata.obsm keys, got {embedding_obsm_keys!r}."
        raise TypeError(msg)
    keys = list(embedding_obsm_keys)
    if pre_integrated_embedding_obsm_key is not None:
        keys_needed = [*keys, pre_integrated_embedding_obsm_key]
    else:
        keys_needed = keys
    missing = [key for key in keys_needed if key not in adata.obsm]
    if not keys or missing:
        msg = f"embedding_obsm_keys: {missing or 'none given'} not in adata.obsm; available: {sorted(adata.obsm)}."
        raise ValueError(msg)
    min_max_scale = check_bool(min_max_scale, "min_max_scale")
    progress_bar = check_bool(progress_bar, "progress_bar")
    seed = as_seed(rng)

    # a new AnnData sharing the arrays: the Benchmarker writes its PCA and columns there, not into adata
    shallow = AnnData(
        X=adata.X,
        obs=adata.obs[[batch_key, label_key]].copy(),
        obsm={key: np.asarray(adata.obsm[key]) for key in keys_needed},
    )
    options: dict[str, Any] = {}
    if bio_conservation_metrics is not None:
        options["bio_conservation_metrics"] = bio_conservation_metrics
    if batch_correction_metrics is not None:
        options["batch_correction_metrics"] = batch_correction_metrics
    bench = scib_benchmark.Benchmarker(
        shallow,
        batch_key=batch_key,
        label_key=label_key,
        embedding_obsm_keys=keys,
        pre_integrated_embedding_obsm_key=pre_integrated_embedding_obsm_key,
        n_jobs=n_jobs,
        progress_bar=progress_bar,
        **options,
    )
    computer = None
    if neighbors_method is not None:

        def computer(x: np.ndarray, n_neighbors: int) -> Any:
            nn = knn(x, x, n_neighbors - 1, method=neighbors_method, rng=seed, exclude_self=True)
            rows = np.arange(nn.n_obs, dtype=np.int64)[:, None]
            return neighbors_results(
                indices=np.hstack([rows, nn.indices]), distances=np.hstack([np.zeros_like(rows, float), nn.distances])
            )

    logger.info("benchmark: scib-metrics' Benchmarker on %d embedding(s) of %d cells", len(keys), adata.n_obs)
    bench.prepare(neighbor_computer=computer)
    bench.benchmark()
    return bench.get_results(min_max_scale=min_max_scale)
