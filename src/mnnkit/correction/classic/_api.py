"""``mnnkit.correct``: MNN batch correction of an AnnData: classic (batchelor's ``mnnCorrect``) or fast.

``method="fast"`` forwards to :func:`mnnkit.fast_mnn` (batchelor's ``fastMNN``, in PC space).
"""

from __future__ import annotations

import logging
import numbers
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData

from mnnkit._config import APPROXIMATE_VAR_ADJ_SAMPLE
from mnnkit._logging import finished
from mnnkit._random import RngLike, as_seed
from mnnkit._threads import job_threads
from mnnkit._validation import (
    check_adata,
    check_bool,
    check_choice,
    check_k,
    check_key_added,
    check_prop_k,
    check_real,
    is_int,
)
from mnnkit.correction._front import DEFAULT_KEY_ADDED, merge_uns, output_dtype, step_reporter, warn_batch_problems
from mnnkit.correction._inputs import (
    check_norms,
    cosine_scale,
    dense_columns,
    get_matrix,
    resolve_batches,
    resolve_restrict,
    resolve_subset,
    subset_l2_norms,
)
from mnnkit.correction._plan import resolve_merge_plan
from mnnkit.correction.classic._engine import MergeState, MnnParams, run_merges
from mnnkit.correction.classic._results import write_results

logger = logging.getLogger("mnnkit")


def correct(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    method: Literal["classic", "fast"] = "classic",
    layer: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    correct_all: bool = True,
    k: int | tuple[int, int] = 20,
    prop_k: float | None = None,
    sigma: float = 0.1,
    cos_norm_in: bool = True,
    cos_norm_out: bool = True,
    var_adj: bool = True,
    svd_dim: int = 0,
    merge_order: Sequence[str] | Literal["auto"] | None = None,
    restrict: str | np.ndarray | None = None,
    approximate: bool = False,
    neighbors: Literal["auto", "exact", "pynndescent"] = "auto",
    kernel_neighbors: int | None = None,
    var_adj_sample: int | None = None,
    flavor: Literal["batchelor", "robust"] = "batchelor",
    key_added: str | None = None,
    copy: bool = False,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    progress: bool = False,
    **fast_options,
) -> AnnData | None:
    """Correct batch effects with mutual nearest neighbours (Haghverdi et al. 2018).

    The classic MNN correction with the semantics of batchelor's ``mnnCorrect``: cells are cosine-
    normalised, mutual nearest neighbours (MNN pairs) are found between the batches, each pair gives
    a correction vector, and every cell of the batch being merged gets a Gaussian-kernel-weighted
    average of those vectors. Batches are merged in sequence: the first is the reference, each next
    one is corrected onto everything merged so far. Defaults equal batchelor's, except the output layout:
    every gene is corrected by default (``correct_all``).

    ``method="fast"`` runs :func:`mnnkit.fast_mnn` instead (batchelor's ``fastMNN``: the correction in
    the space of a multi-batch PCA; the choice for large data, see the README): the shared parameters
    (``batch_key``, ``layer``, ``subset``, ``k``, ``prop_k``, ``merge_order``, ``restrict``, ``neighbors``,
    ``flavor``, ``key_added``, ``copy``, ``rng``, ``n_jobs``, ``progress``) are passed on, and so are
    fast-only ones given as keywords (``d``, ``ndist``, ``cos_norm``, ``use_rep``, ``weights``,
    ``min_batch_skip``, ``svd_solver``, ``reconstruct``, ``pairing``). Classic-only
    parameters must keep their defaults then.

    Parameters
    ----------
    adata
        Cells x genes, log-normalised expression in ``.X`` or ``layer``: dense ``numpy.ndarray`` or
        ``scipy.sparse`` CSR/CSC, float32 or float64 (float16 is accepted and computed in float64;
        integers are accepted with a warning). Backed
        AnnData is not supported (load it with ``adata.to_memory()``).
    batch_key
        Column of ``.obs`` with the batch of each cell. Batch order is the category order (or sorted
        values), which is also the default merge order. With a single batch there is nothing to merge:
        the output is the (cosine-normalised) input, with a warning.
    method
        ``"classic"`` (this function's correction, in gene space) or ``"fast"`` (:func:`mnnkit.fast_mnn`).
    layer
        Layer to correct instead of ``.X``.
    subset
        Genes used for distances and for the cosine norm: a boolean mask, gene names, positions, or
        the name of a boolean ``.var`` column such as ``"highly_variable"``. ``None``: all genes.
    correct_all
        True (default): every gene is corrected, with the MNN pairs, kernel weights and var.adj scales
        found on the ``subset`` genes (batchelor's ``correct.all=TRUE``), so the layer has no NaN and
        ``sc.pp.pca(adata, layer="mnn")``, ``sc.pp.neighbors`` and ``sc.tl.umap`` run on it as they are.
        Its ``subset`` columns equal those of ``correct_all=False``. False: batchelor's default layout,
        only the ``subset`` genes are corrected and every other column of the layer is NaN, so every
        later step must keep to the subset genes (``sc.pp.pca`` does so by itself only when the subset
        is ``.var["highly_variable"]``; with ``mask_var=None`` or another subset it fails on the NaN).
        Without a ``subset`` (or with all genes in it) both give the same output. The output layer is
        cells x all genes either way; True also holds the data of every gene in float64 during the call
        (cells x genes x 8 bytes, plus each step's copies of its two sides): the peak memory of the call
        grows by 2.5-3x that size and the time by the extra columns' averaging and smoothing. Measured
        (2 cores, subset of highly variable genes): shipped pancreas data (350 cells x 12474 genes, 1000
        in the subset) peak 19 -> 124 MiB, 0.15 -> 0.30 s; 3 batches x 3000 cells x 2000 genes (500 in
        the subset) peak 423 -> 764 MiB, 6.4 -> 7.5 s.
    k
        Number of nearest neighbours sought on each side for the MNN search, or a pair
        ``(k_left, k_right)``: ``k_left`` nearest reference cells for each cell being merged, and
        ``k_right`` nearest cells of the merged batch for each reference cell. Capped at a side's size
        with a warning.
    prop_k
        If set, each side's k is ``max(k, round(prop_k * n_side))`` (batchelor's ``prop.k``).
    sigma
        Kernel width: weights are ``exp(-d^2 / sigma)`` on (by default cosine-normalised) data.
    cos_norm_in
        Cosine-normalise the data used for distances.
    cos_norm_out
        Cosine-normalise the data that is corrected and returned.
    var_adj
        Variance adjustment: lengthen each correction so that the cell lands at the matching
        quantile of the reference along its correction direction (``O(n_right x n x genes)``).
    svd_dim
        Number of biological axes (from an SVD of the MNN cells of each side) removed from the
        correction vectors; 0 (default) turns it off.
    merge_order
        ``None`` (batch order; with ``flavor="robust"``: largest batch first), a list of every batch
        name in the order to merge, nested lists for a
        hierarchical order (``[["s1_a", "s1_b"], ["s2_a", "s2_b"]]``: each inner list is merged first,
        in its order, then the merged nodes; any depth, batchelor's step order), or ``"auto"``
        (repeatedly merge the two nodes with the most MNN pairs, batchelor's ``auto.merge``).
    restrict
        Compute the corrections from some cells only (batchelor's ``restrict``, e.g. control cells):
        the name of a boolean ``.obs`` column or a boolean mask. Only those cells form MNN pairs and
        set var.adj's quantiles (batchelor's rules, including its quirk for a cell below every
        restricted one); every cell is smoothed and corrected. Every batch needs at least one such
        cell. Not combined with ``approximate=True`` or ``var_adj_sample``.
    approximate
        False (default) reproduces batchelor exactly. True, for large data: var.adj takes its quantiles
        over a seeded sample of ``var_adj_sample`` cells per side, with projections in float32 (about
        2x faster at 2 x 6000 cells; the deviation from exact mode is measured in
        ``benchmarks/bench_mnn.py`` and bounded in ``tests/test_mnn_approximate.py``).
    neighbors
        Neighbour search: ``"auto"`` (default), ``"exact"`` (chunked BLAS brute force, exact ties) or
        ``"pynndescent"`` (approximate, seeded). ``"auto"`` is ``"exact"`` here: the classic method
        computes every right cell's distances to both sides for its kernel and var.adj anyway, so the
        exact search reuses those products (``benchmarks/bench_mnn.py``); with ``method="fast"`` it
        follows :func:`mnnkit.fast_mnn`'s rule. The search used is recorded in ``.uns``.
    kernel_neighbors
        If set, the kernel uses only each cell's ``kernel_neighbors`` nearest MNN cells (found with
        ``neighbors``); the largest dropped share of kernel weight is bounded and recorded per step as
        ``max_truncated_kernel_mass``. Off by default in both modes: with the default ``sigma`` on
        cosine-normalised data the kernel is wide, and truncation drops real weight.
    var_adj_sample
        Number of cells per side over which var.adj takes its quantiles. Default: all cells, or 2000
        with ``approximate=True``.
    flavor
        ``"batchelor"`` (default): batchelor's ``mnnCorrect``, to its numbers. ``"robust"``: the same
        steps with two changes that make the result independent of the batch order and mix small
        batches better: the default reference is the largest batch (merged from the largest down; ties
        by name), and each pair's correction vector joins the two cells' local centres of mass (the
        trimmed mean of each cell's 15 nearest cells on its own side) instead of the cells. See the
        guide's "Choosing a flavour" for the measured differences. Recorded in ``.uns``.
    key_added
        The key the outputs are written under: ``.layers[key_added]`` and ``.uns[key_added]``.
        Default: ``DEFAULT_KEY_ADDED["classic"]`` (``"mnn"``); with ``method="fast"``,
        ``DEFAULT_KEY_ADDED["fast"]`` (``"X_mnn"``, see :func:`mnnkit.fast_mnn`).
    copy
        Return a corrected copy instead of writing into ``adata``.
    rng
        Randomness of ``neighbors="pynndescent"`` and of the var.adj sample (the default exact mode uses
        none): an int seed >= 0 (same seed, same result), a :class:`numpy.random.Generator` (used as
        given: its stream advances, and the seed handed to pynndescent is drawn from it) or None (fresh
        entropy from the operating system: a different result on every call).
    n_jobs
        Threads for numba and BLAS during the call: an int (negative counts back from the cores, as in
        joblib), or ``None`` to follow ``scanpy.settings.n_jobs`` once it is set (see
        :func:`mnnkit._threads.job_threads`; otherwise the threads stay as they are). The result does
        not depend on it, up to the last bits of BLAS sums.
    progress
        Show a progress bar over merge steps.
    **fast_options
        With ``method="fast"`` only: further keywords of :func:`mnnkit.fast_mnn`.

    Returns
    -------
    ``None`` (or the corrected copy with ``copy=True``). Writes

    ``.layers[key_added]``
        The corrected values (cosine-normalised input plus correction), cells in the original order,
        dense, in the input's float dtype (float64 for integer input).
    ``.uns[key_added]``
        ``params`` (including ``subset_genes``, the names of the genes used for distances when a subset was
        given); ``merge_order`` (batch names in the order they entered the merge); ``batches``;
        ``steps``: per merge step ``left``/``right`` batch names, ``n_pairs``, ``pairs`` (cell indices,
        column 0 the reference side) and ``left_names``/``right_names`` (obs names of the pairs).

    Notes
    -----
    Reproducibility: the same input and ``rng`` give the same output bit for bit whatever the number
    of numba threads; the number of BLAS threads can change the last bits (about 1e-16) of the dot
    products behind the distances.

    Memory: the dense in-space data (cells x subset genes, float64), the dense output (cells x
    output genes), and per step a copy of the two sides plus chunked temporaries bounded by
    ``mnnkit._config.CHUNK_BYTES``. No cells x cells matrix is ever formed. Sparse input is densified
    only column by column as far as the output needs.

    Examples
    --------
    >>> import scanpy as sc, mnnkit
    >>> adata = mnnkit.datasets.pancreas()
    >>> sc.pp.normalize_total(adata)
    >>> sc.pp.log1p(adata)
    >>> sc.pp.highly_variable_genes(adata, n_top_genes=1000)
    >>> mnnkit.correct(adata, "batch", subset="highly_variable")
    >>> sc.pp.pca(adata, layer="mnn")  # every gene corrected: no NaN
    >>> mnnkit.correct(adata, "batch", subset="highly_variable", correct_all=False, key_added="mnn_subset")
    """
    if method == "fast":
        classic_only = {
            "sigma": (sigma, 0.1), "var_adj": (var_adj, True), "svd_dim": (svd_dim, 0),
            "cos_norm_in": (cos_norm_in, True), "cos_norm_out": (cos_norm_out, True),
            "correct_all": (correct_all, True), "approximate": (approximate, False),
            "kernel_neighbors": (kernel_neighbors, None), "var_adj_sample": (var_adj_sample, None),
        }  # fmt: skip
        return _correct_fast(
            adata, batch_key, classic_only, fast_options,
            shared={
                "layer": layer, "subset": subset, "k": k, "prop_k": prop_k, "merge_order": merge_order,
                "restrict": restrict, "flavor": flavor,
                "neighbors": neighbors, "key_added": key_added or DEFAULT_KEY_ADDED["fast"], "copy": copy,
                "rng": rng, "progress": progress,
                "n_jobs": n_jobs,
            },
        )  # fmt: skip
    if method != "classic":
        msg = f"method must be 'classic' or 'fast', got {method!r}"
        raise ValueError(msg)
    if fast_options:
        msg = f"unexpected keyword argument(s) for method='classic': {', '.join(sorted(fast_options))}" + (
            " (these belong to method='fast')" if set(fast_options) <= set(FAST_ONLY) else ""
        )
        raise TypeError(msg)
    adata = check_adata(adata, "mnnkit.correct")
    key_added = DEFAULT_KEY_ADDED["classic"] if key_added is None else key_added
    params = _check_params(
        k=k, prop_k=prop_k, sigma=sigma, svd_dim=svd_dim, approximate=approximate, neighbors=neighbors,
        kernel_neighbors=kernel_neighbors, var_adj_sample=var_adj_sample, key_added=key_added, rng=rng,
        var_adj=var_adj, flavor=flavor,
    )  # fmt: skip
    batches = resolve_batches(adata, batch_key)
    sizes = [m.size for m in batches.members] if params.flavor == "robust" else None
    plan = resolve_merge_plan(merge_order, batches.names, sizes=sizes)
    restricted = resolve_restrict(adata, restrict, batches)
    if restricted is not None and params.var_adj_sample is not None:
        msg = "restrict cannot be combined with approximate=True or var_adj_sample (var.adj takes all restricted cells)"
        raise ValueError(msg)
    matrix = get_matrix(adata, layer)
    cols = resolve_subset(adata, subset)
    warn_batch_problems(
        batches, batch_key, max(params.k_left, params.k_right), single_output="the cosine-normalised input"
    )

    threads = job_threads(n_jobs)  # checked before any numba code runs
    with threads:
        started = time.perf_counter()
        logger.info(
            "computing MNN correction (%s mode) of %d batches: %s",
            "approximate" if approximate else "exact",
            len(batches.names),
            ", ".join(batches.names),
        )
        norms = check_norms(subset_l2_norms(matrix, cols))
        scale_in = cosine_scale(norms) if cos_norm_in else None
        scale_out = cosine_scale(norms) if cos_norm_out else None
        proper_subset = cols is not None and cols.size < adata.n_vars
        same_set = cos_norm_in == cos_norm_out and not (correct_all and proper_subset)
        data_in = dense_columns(matrix, cols, scale_in)
        if same_set:
            data_out, out_cols, out_subset_cols = None, cols, None
        else:
            out_cols = None if correct_all else cols
            data_out = dense_columns(matrix, out_cols, scale_out)
            out_subset_cols = cols if (correct_all and cols is not None) else None
        state = MergeState(
            data_in=data_in,
            data_out=data_out,
            out_subset_cols=out_subset_cols,
            members=batches.members,
            params=params,
            out_scale_shared=cos_norm_in == cos_norm_out,
            restricted=restricted,
        )
        with step_reporter(batches, "MNN", progress) as report:
            run_merges(state, plan, progress=report)
        corrected = state.data_in if data_out is None else data_out

    target = adata.copy() if copy else adata
    write_results(
        target,
        corrected=corrected,
        out_cols=out_cols,
        dtype=output_dtype(matrix.dtype),
        key_added=key_added,
        uns=merge_uns(
            "classic", plan, adata.obs_names, batches, state.records,
            params={
                "batch_key": batch_key, "layer": layer, "correct_all": correct_all, "k_left": params.k_left,
                "k_right": params.k_right, "prop_k": prop_k, "sigma": sigma, "cos_norm_in": cos_norm_in,
                "cos_norm_out": cos_norm_out, "var_adj": var_adj, "svd_dim": svd_dim, "approximate": approximate,
                "neighbors": params.neighbors, "neighbors_requested": neighbors or "auto",
                "kernel_neighbors": params.kernel_truncate,
                "var_adj_sample": params.var_adj_sample, "n_subset_genes": int(data_in.shape[1]),
                "subset_genes": None if cols is None else np.asarray(adata.var_names[cols], dtype=object),
                "restrict": restrict if isinstance(restrict, str) else (None if restrict is None else "given"),
                "flavor": params.flavor,
            },
        ),
    )  # fmt: skip
    logger.info(finished(started))
    return target if copy else None


#: Keywords that only ``method="fast"`` takes (see :func:`mnnkit.fast_mnn`).
FAST_ONLY = (
    "d", "ndist", "cos_norm", "use_rep", "weights", "min_batch_skip", "svd_solver", "reconstruct", "pairing",
)  # fmt: skip


def _correct_fast(adata, batch_key, classic_only: dict, fast_options: dict, shared: dict):
    """Check the arguments for ``method="fast"`` and run :func:`mnnkit.fast_mnn`."""
    changed = []
    for name, (value, default) in classic_only.items():
        if default is None:
            same = value is None
        elif isinstance(default, bool):
            same = isinstance(value, bool | np.bool_) and bool(value) == default
        else:
            same = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == default
        if not same:
            changed.append(f"{name}={value!r}")
    if changed:
        msg = (
            f"{', '.join(changed)} only apply to method='classic'; method='fast' (fastMNN) has no such "
            f"parameter. Leave them at their defaults, or use method='classic'"
        )
        raise ValueError(msg)
    unknown = sorted(set(fast_options) - set(FAST_ONLY))
    if unknown:
        msg = (
            f"unexpected keyword argument(s) for method='fast': {', '.join(unknown)}; "
            f"fast-only options are {', '.join(FAST_ONLY)}"
        )
        raise TypeError(msg)
    from mnnkit.correction.fast import fast_mnn

    if shared["neighbors"] is None:
        shared["neighbors"] = "auto"
    return fast_mnn(adata, batch_key, **shared, **fast_options)


def _check_params(
    *,
    k,
    prop_k,
    sigma,
    svd_dim,
    approximate,
    neighbors,
    kernel_neighbors,
    var_adj_sample,
    key_added,
    rng,
    var_adj,
    flavor="batchelor",
):
    """Validate the scalar parameters; return an :class:`MnnParams` (k not yet capped)."""
    if isinstance(k, tuple | list):
        if len(k) != 2:
            msg = f"k must be an int or a pair (k_left, k_right), got {k!r}"
            raise ValueError(msg)
        k_left, k_right = k
    else:
        k_left = k_right = k
    check_k("k", k_left)
    check_k("k", k_right)
    check_prop_k(prop_k)
    check_real(sigma, "sigma", positive=True)
    if not is_int(svd_dim) or svd_dim < 0:
        msg = f"svd_dim must be a non-negative integer, got {svd_dim!r}"
        raise ValueError(msg)
    check_bool(approximate, "approximate")
    if neighbors is None:
        neighbors = "auto"
    check_choice(neighbors, "neighbors", ("auto", "exact", "pynndescent"))
    if neighbors == "auto":
        neighbors = "exact"
    if kernel_neighbors is not None and (not is_int(kernel_neighbors) or kernel_neighbors < 1):
        msg = f"kernel_neighbors must be None or a positive integer, got {kernel_neighbors!r}"
        raise ValueError(msg)
    if var_adj_sample is None:
        var_adj_sample = APPROXIMATE_VAR_ADJ_SAMPLE if approximate else None
    elif not is_int(var_adj_sample) or var_adj_sample < 2:
        msg = f"var_adj_sample must be None or an integer >= 2, got {var_adj_sample!r}"
        raise ValueError(msg)
    check_key_added(key_added)
    check_choice(flavor, "flavor", ("batchelor", "robust"))
    return MnnParams(
        k_left=int(k_left),
        k_right=int(k_right),
        prop_k=None if prop_k is None else float(prop_k),
        sigma=float(sigma),
        var_adj=bool(var_adj),
        svd_dim=int(svd_dim),
        neighbors=neighbors,
        kernel_truncate=None if kernel_neighbors is None else int(kernel_neighbors),
        var_adj_dtype=np.float32 if approximate else np.float64,
        var_adj_sample=None if var_adj_sample is None else int(var_adj_sample),
        rng=as_seed(rng),
        flavor=flavor,
    )
