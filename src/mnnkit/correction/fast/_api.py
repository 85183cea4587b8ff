"""``mnnkit.fast_mnn``: MNN correction in PC space (batchelor's ``fastMNN``) for an AnnData."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData

from mnnkit._logging import finished
from mnnkit._random import RngLike
from mnnkit._threads import job_threads
from mnnkit._validation import check_adata
from mnnkit.correction import _inputs
from mnnkit.correction._front import merge_uns, output_dtype, step_reporter, warn_batch_problems
from mnnkit.correction._plan import resolve_merge_plan
from mnnkit.correction.fast._dask import dask_embedding, is_dask_array, lazy_reconstruction
from mnnkit.correction.fast._engine import FastMergeState, run_merges
from mnnkit.correction.fast._params import check_params
from mnnkit.correction.fast._prepare import PcaSpec, from_genes, from_rep, resolve_d
from mnnkit.correction.fast._results import write_results
from mnnkit.correction.fast._search import ExactSearch, GraphSearch, PartitionSearch, resolve_neighbors

logger = logging.getLogger("mnnkit")


def fast_mnn(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    d: int | None = None,
    k: int = 20,
    prop_k: float | None = None,
    ndist: float = 3.0,
    cos_norm: bool | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    layer: str | None = None,
    use_rep: str | None = None,
    merge_order: Sequence[str] | Literal["auto"] | None = None,
    restrict: str | np.ndarray | None = None,
    weights: dict[str, float] | Sequence | None = None,
    min_batch_skip: float = 0.0,
    svd_solver: Literal["randomized", "exact"] = "randomized",
    neighbors: Literal["auto", "exact", "partition", "pynndescent"] = "auto",
    flavor: Literal["batchelor", "robust"] = "batchelor",
    pairing: Literal["mutual", "dual_softmax"] = "mutual",
    key_added: str = "X_mnn",
    reconstruct: Literal["factors", "layer"] | None = None,
    copy: bool = False,
    rng: RngLike = 0,
    n_jobs: int | None = None,
    progress: bool = False,
) -> AnnData | None:
    """Correct batch effects with mutual nearest neighbours in PC space (batchelor's ``fastMNN``).

    Cells are cosine-normalised and projected on the principal components of a PCA in which every
    batch weighs the same (``multiBatchPCA``). Batches are then merged in sequence: mutual nearest
    neighbours (MNN pairs) between the reference (everything merged so far) and the next batch give
    correction vectors; the variation of both sides along their average (the batch vector, and the
    batch vectors of earlier merges) is removed; and every cell of the batch being merged moves by a
    tricube-weighted average of the vectors of its nearest MNN cells. Defaults equal batchelor's
    (except the SVD: randomized here, irlba there; ``svd_solver="exact"`` reproduces batchelor with
    ``BSPARAM=ExactParam()``). Also available as ``mnnkit.correct(adata, method="fast", ...)``.

    Parameters
    ----------
    adata
        Cells x genes, log-normalised expression in ``.X`` or ``layer`` (float16 is computed in float64):
        dense ``numpy.ndarray``, ``scipy.sparse`` CSR/CSC (never densified), or a ``dask.array.Array``
        chunked along cells (numpy or sparse chunks; see Notes). Or any AnnData with an embedding in ``.obsm[use_rep]``.
    batch_key
        Column of ``.obs`` with the batch of each cell. Batch order is the category order (or sorted
        values), which is also the default merge order. A single batch gives the PCs, with a warning.
    d
        Number of principal components (default 50); at most the number of genes used and of cells.
        With ``use_rep``: the number of the embedding's first columns to use (default all).
    k
        Nearest neighbours sought on each side for the MNN search, and the number of nearest MNN cells
        that smooth each cell's correction. Capped at a side's size.
    prop_k
        If set, each side's k is ``min(n, max(k, round(prop_k * n)))`` (batchelor's ``prop.k``).
    ndist
        Tricube bandwidth, in multiples of the distance to the ``ceil(k/2)``-th nearest MNN cell.
    cos_norm
        Cosine-normalise the cells before the PCA (norms from the ``subset`` genes). Default: True for
        genes, False with ``use_rep`` (the embedding is used as it is, as batchelor's ``reducedMNN``).
    subset
        Genes for the PCA (and the cosine norm): a boolean mask, gene names, positions, or a boolean
        ``.var`` column such as ``"highly_variable"``. ``None``: all genes.
    layer
        Layer to use instead of ``.X``.
    use_rep
        Correct the embedding ``adata.obsm[use_rep]`` (e.g. ``"X_pca"``) instead of computing PCs.
        Cannot be combined with ``layer``, ``subset`` or ``reconstruct``.
    merge_order
        As in :func:`mnnkit.correct`: ``None`` (batch order; with ``flavor="robust"``: largest batch
        first), a list of batches, nested lists (a merge tree) or ``"auto"``.
    restrict
        Compute the corrections from some cells only (batchelor's ``restrict``, e.g. control cells):
        the name of a boolean ``.obs`` column or a boolean mask. Only those cells form MNN pairs and
        give the centres of the orthogonalisations; the PCA uses every cell and every cell is
        corrected. Every batch needs at least one such cell. Needs ``neighbors="exact"``.
    weights
        Each batch's weight in the PCA (batchelor's ``weights``): a dict batch name -> positive number,
        or nested lists of batch names, a tree whose nodes share their weight equally among their
        children (``[["s1_a", "s1_b"], ["s2_a"]]`` gives 1/4, 1/4, 1/2). The weights enter the PCA's
        centre (a weighted mean of the batch means) and its SVD (a batch of ``n_b`` cells weighs
        ``w_b``, not ``n_b``). Default: equal weights. Not with ``use_rep``.
    min_batch_skip
        A merge step whose ``batch_size`` (length of the average correction over the root mean square
        length of the per-cell ones) is below this is skipped: no orthogonalisation, no correction.
    svd_solver
        ``"randomized"`` (default; implicit centring, seeded, never densifies) or ``"exact"`` (dense
        LAPACK SVD: cells x genes memory; for fidelity checks).
    neighbors
        ``"auto"`` (default): the fastest search for the size, decided by the work of an exact search
        (``d`` times the number of pairs of cells from different batches): ``"exact"`` up to 1e9 (about
        6,000 cells in three equal batches, 50 PCs), ``"partition"`` up to 6e11 (about 200,000 cells),
        else ``"pynndescent"``; always ``"exact"`` with ``restrict`` or ``pairing="dual_softmax"``. The
        choice is recorded in ``.uns[key_added]["params"]["neighbors"]``.
        ``"exact"``: brute force with BLAS, exact ties (batchelor's answers). ``"partition"``: the MNN
        pairs and each cell's nearest MNN cells are searched exactly, but only among the cells of the 8
        k-means partitions (of about 200 cells) nearest the cell's own (approximate, seeded; nothing to
        compile; twice as fast as ``"exact"`` at 30,000 cells). ``"pynndescent"``: one pynndescent
        graph per batch, then graph searches on the current data (approximate; for hundreds of thousands
        of cells and more; pynndescent compiles for tens of seconds in each new process).
    flavor
        ``"batchelor"`` (default): batchelor's ``fastMNN``, to its numbers. ``"robust"``: the same steps
        with two changes that make the result independent of the batch order and mix small batches
        better: the default reference is the largest batch (merged from the largest down; ties by
        name; an explicit ``merge_order`` is followed), and each pair's correction vector joins the
        two cells' local centres of mass (the trimmed mean of each cell's 15 nearest cells on its own
        side) instead of the cells. See the guide's "Choosing a flavour" for the measured differences.
    pairing
        ``"mutual"`` (default): MNN pairs. ``"dual_softmax"`` (``flavor="robust"`` only; exact searches):
        every candidate pair found by either side's k-nearest search, weighted by a row softmax times
        a column softmax of ``-distance**2 / tau`` (``tau`` the median squared distance to a cell's
        nearest candidate), so that a cell many others list (a hub) weighs little for each; pairs
        below weight 1e-3 are dropped and the vectors are weighted means. It integrated worse than
        ``"mutual"`` on our benchmarks (guide, "Choosing a flavour"); offered for comparison.
    key_added
        The key every output is written under, as in ``sc.pp.pca(key_added=...)``: ``.obsm[key_added]``,
        ``.varm[key_added]``, ``.uns[key_added]`` and, if asked, ``.layers[key_added]``.
    reconstruct
        The corrected gene-level values, ``obsm[key] @ varm[key].T`` (deviations from ``uns[key]["center"]``
        in cosine-normalised expression, as batchelor's ``reconstructed`` assay). ``None``: only the PCA
        genes have rotation rows (NaN for the others). ``"factors"``: the rotation is extended to every
        gene (batchelor's ``correct.all=TRUE``), so the product above covers all genes without being
        formed. ``"layer"``: as ``"factors"``, and the product is stored in ``.layers[key_added]``:
        dense (cells x genes) for in-memory input, a lazy dask array (computed block by block when
        written) for dask input.
    copy
        Return a corrected copy instead of writing into ``adata``.
    rng
        Randomness of the randomized SVD and of pynndescent: an int seed >= 0 (same seed, same result),
        a :class:`numpy.random.Generator` (used as given: its stream advances, and the seed handed to
        both is drawn from it) or None (fresh entropy from the operating system: a different result on
        every call). The seed used is recorded in ``.uns[key_added]["params"]["seed"]``.
    n_jobs
        Threads for numba and BLAS during the call, as in :func:`mnnkit.correct`.
    progress
        Show a progress bar over merge steps.

    Returns
    -------
    ``None`` (or the corrected copy with ``copy=True``). Writes

    ``.obsm[key_added]``
        The corrected embedding (cells in the original order), float32 for float32 input, else float64.
    ``.varm[key_added]``
        The rotation (genes x d; not with ``use_rep``).
    ``.layers[key_added]``
        With ``reconstruct="layer"`` only.
    ``.uns[key_added]``
        ``method`` (``"fast"``), ``params``, ``batches``, ``merge_order`` (batch names in the order they
        entered), ``center`` (the PCA's centre per gene), ``singular_values`` and ``steps``: per merge
        step ``left``/``right`` batch names, ``n_pairs``, ``pairs`` (cell positions, column 0 on the
        reference side), ``batch_size``, ``skipped`` (and ``skip_reason``), ``lost_var`` (per batch: the
        share of its variance removed by the step's orthogonalisation; 0 for batches not in the step),
        ``batch_vector`` and ``seconds``.

    Notes
    -----
    Memory (in memory): a float64 copy of the PCA genes (sparse stays sparse), the PCs and a copy of
    the two sides of each merge step (cells x d each), and the searches' scratch: linear in cells.
    ``reconstruct="layer"`` adds the dense layer. With ``neighbors="pynndescent"``, the batches'
    graphs (``O(cells x 30)`` int32) and no cells x cells matrix anywhere.

    Dask: every pass over the genes runs as a dask computation on the current scheduler (your
    ``distributed.Client`` if one is active; otherwise dask's local threads; mnnkit never starts a
    cluster). The matrix must be chunked along cells only (a matrix split across genes raises an
    error that shows how to rechunk it). Only the PCs (cells x d) are collected on the driver.

    Reproducibility: the same input and ``rng`` give the same output bit for bit, whatever the number
    of threads you give numba (pynndescent is seeded and always runs on 2 threads, on which its
    output depends, not on their scheduling; 1 where numba has a single thread, which gives
    different graphs; the numba kernels give each output row to one thread). The number of BLAS
    threads can change the last bits (about 1e-16) of the PCA's products.

    Examples
    --------
    >>> import scanpy as sc, mnnkit
    >>> adata = mnnkit.datasets.pancreas()
    >>> sc.pp.normalize_total(adata); sc.pp.log1p(adata)
    >>> mnnkit.fast_mnn(adata, "batch", d=30)  # every gene: sparse input stays sparse
    >>> sc.pp.neighbors(adata, use_rep="X_mnn")
    """
    adata = check_adata(adata, "mnnkit.fast_mnn")
    params, options = check_params(
        d=d, k=k, prop_k=prop_k, ndist=ndist, cos_norm=cos_norm, min_batch_skip=min_batch_skip,
        svd_solver=svd_solver, neighbors=neighbors, reconstruct=reconstruct, key_added=key_added, rng=rng,
        flavor=flavor, pairing=pairing,
    )  # fmt: skip
    batches = _inputs.resolve_batches(adata, batch_key)
    sizes = [m.size for m in batches.members]
    plan = resolve_merge_plan(merge_order, batches.names, sizes=sizes if flavor == "robust" else None)
    restricted = _inputs.resolve_restrict(adata, restrict, batches)
    batch_weights = _inputs.resolve_batch_weights(weights, batches)
    weight_record = None if batch_weights is None else dict(zip(batches.names, batch_weights.tolist(), strict=True))
    if restricted is not None and options.neighbors in ("partition", "pynndescent"):
        msg = f"restrict needs neighbors='exact' or 'auto' (the others span all cells), got {options.neighbors!r}"
        raise ValueError(msg)
    if params.pairing == "dual_softmax" and options.neighbors in ("partition", "pynndescent"):
        msg = "pairing='dual_softmax' needs neighbors='exact' or 'auto' (it weighs exact candidate lists)"
        raise ValueError(msg)
    if use_rep is not None:
        for name, value in (("layer", layer), ("subset", subset), ("reconstruct", reconstruct), ("weights", weights)):
            if value is not None:
                msg = f"{name} cannot be combined with use_rep (the embedding {use_rep!r} is corrected as it is)"
                raise ValueError(msg)
    warn_batch_problems(batches, batch_key, params.k, single_output="the uncorrected embedding")

    threads = job_threads(n_jobs)  # checked before any numba code runs
    with threads:
        started = time.perf_counter()
        logger.info("computing fastMNN correction of %d batches: %s", len(batches.names), ", ".join(batches.names))
        embedding, dtype, matrix = _embedding(
            adata, batches, use_rep=use_rep, layer=layer, subset=subset, options=options, batch_weights=batch_weights
        )
        logger.info("embedding ready: %d cells x %d dimensions (%.2f s)", *embedding.data.shape,
                    time.perf_counter() - started)  # fmt: skip

        neighbors_used = resolve_neighbors(
            options.neighbors, sizes, embedding.data.shape[1],
            exact_only=restricted is not None or params.pairing == "dual_softmax",
        )  # fmt: skip
        logger.info("neighbour search: %s%s", neighbors_used, " (auto)" if options.neighbors == "auto" else "")
        searches = {"pynndescent": GraphSearch, "partition": PartitionSearch}
        search = searches[neighbors_used](options.seed) if neighbors_used in searches else ExactSearch()
        search.prepare(embedding.data, batches.members)
        state = FastMergeState(
            data=embedding.data, members=batches.members, params=params, search=search, restricted=restricted
        )
        with step_reporter(batches, "fastMNN", progress) as report:
            run_merges(state, plan, progress=report)

        layer_out = None
        if options.reconstruct == "layer":
            if is_dask_array(matrix):
                layer_out = lazy_reconstruction(state.data, embedding.rotation, matrix.chunks[0], dtype)
            else:
                layer_out = (state.data @ embedding.rotation.T).astype(dtype, copy=False)
    target = adata.copy() if copy else adata
    write_results(
        target,
        corrected=state.data,
        dtype=dtype,
        key_added=options.key_added,
        rotation=embedding.rotation,
        center=embedding.center,
        singular_values=embedding.singular_values,
        layer=layer_out,
        uns=merge_uns(
            "fast", plan, adata.obs_names, batches, state.records,
            params={
                "batch_key": batch_key, "d": int(embedding.data.shape[1]), "k": params.k, "prop_k": params.prop_k,
                "ndist": params.ndist, "cos_norm": _effective_cos_norm(options.cos_norm, use_rep), "layer": layer,
                "subset": subset if isinstance(subset, str) else (None if subset is None else "given"),
                "use_rep": use_rep, "min_batch_skip": params.min_batch_skip, "svd_solver": options.svd_solver,
                "neighbors": neighbors_used, "neighbors_requested": options.neighbors,
                "reconstruct": options.reconstruct, "seed": options.seed,
                "restrict": restrict if isinstance(restrict, str) else (None if restrict is None else "given"),
                "batch_weights": weight_record, "flavor": params.flavor, "pairing": params.pairing,
            },
        ),
    )  # fmt: skip
    logger.info(finished(started))
    return target if copy else None


def _effective_cos_norm(cos_norm: bool | None, use_rep: str | None) -> bool:
    return (use_rep is None) if cos_norm is None else cos_norm


def _embedding(adata: AnnData, batches, *, use_rep, layer, subset, options, batch_weights):
    """The embedding to correct, the output dtype, and the gene matrix (None with ``use_rep``)."""
    cos_norm = _effective_cos_norm(options.cos_norm, use_rep)
    if use_rep is not None:
        emb = from_rep(adata, use_rep, options.d, cos_norm)
        rep = adata.obsm[use_rep]
        return emb, output_dtype(getattr(rep, "dtype", np.float64)), None
    matrix = adata.X if layer is None else adata.layers[layer] if layer in adata.layers else None
    cols = _inputs.resolve_subset(adata, subset)
    n_used = adata.n_vars if cols is None else cols.size
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    dask = matrix is not None and is_dask_array(matrix)
    if dask:
        _inputs.check_has_genes(matrix.shape, where)
    else:
        matrix = _inputs.get_matrix(adata, layer)
    spec = PcaSpec(
        d=resolve_d(options.d, adata.n_obs, n_used, "genes used"), cos_norm=cos_norm, solver=options.svd_solver,
        seed=options.seed, all_genes=options.reconstruct is not None, batch_weights=batch_weights,
    )  # fmt: skip
    if dask:
        emb = dask_embedding(matrix, cols, batches.members, spec, where)
    else:
        emb = from_genes(matrix, cols, batches.members, spec)
    return emb, output_dtype(matrix.dtype), matrix
