"""``mnnkit.multi_batch_norm``: batchelor's ``multiBatchNorm``, size factors that also remove coverage differences."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from mnnkit._logging import finished
from mnnkit._validation import check_adata, check_bool, check_key_added, check_real
from mnnkit._warnings import InputDataWarning, warn
from mnnkit.correction._front import output_dtype, warn_batch_problems
from mnnkit.correction._inputs import Batches, get_matrix, resolve_batches, resolve_subset
from mnnkit.correction._per_gene import batch_codes, batch_column_means, map_blocks, stored_positions

logger = logging.getLogger("mnnkit")


def multi_batch_norm(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    layer: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    normalize_all: bool = False,
    min_mean: float = 1.0,
    pseudo_count: float = 1.0,
    key_added: str = "multi_batch_norm",
) -> None:
    """Log-normalise raw counts with size factors that also remove coverage differences between batches.

    batchelor's ``multiBatchNorm``, the normalisation batchelor advises before any batch correction.
    Library-size normalisation alone (``sc.pp.normalize_total``) makes cells comparable within a
    batch, but a batch sequenced more deeply still has larger normalised values, and after the log the
    difference is not a constant shift (it depends on the expression level), which no correction
    removes cleanly. ``multi_batch_norm`` scales every batch down to the batch of lowest coverage:

    1. library size factors per batch: each cell's total count (over ``subset``) divided by the mean
       total of its batch (mean 1 within each batch);
    2. per batch ``b`` and gene, the average of the counts divided by the size factors, ``a_b``;
    3. for every pair of batches ``f < s``, over the genes whose average across the two is at least
       ``min_mean`` (the mean of ``a_f / sum(a_f)`` and ``a_s / sum(a_s)``, times the mean of the two
       sums), the median ratio of ``a_s / a_f`` and of ``a_f / a_s``;
    4. the reference is the batch whose column of ratios holds the smallest value (the lowest
       coverage); each batch's size factors are divided by its ratio to the reference, ``r_b``
       (``r_ref = 1``), and the size factors are not centred again;
    5. the output is ``log2(counts / size_factor + pseudo_count)``.

    Parameters
    ----------
    adata
        Cells x genes, raw counts (non-negative; integers are expected) in ``.X`` or ``layer``: dense
        ``numpy.ndarray`` or ``scipy.sparse`` CSR/CSC. Backed AnnData is not supported. Not modified,
        except for the outputs written.
    batch_key
        Column of ``.obs`` with the batch of each cell.
    layer
        Layer holding the counts instead of ``.X`` (e.g. ``"counts"``).
    subset
        Genes the size factors and the coverage ratios are computed from: a boolean mask, gene names,
        positions, or the name of a boolean ``.var`` column. ``None``: all genes.
    normalize_all
        With a ``subset``: if True, the output covers all genes; if False (batchelor's default) only
        the subset genes, which go to ``.obsm[key_added]`` (see Returns).
    min_mean
        Genes whose average count across a pair of batches is below this are left out of that pair's
        ratio (a positive number; batchelor's ``min.mean``).
    pseudo_count
        Added before the log. A sparse input needs 1 (zeros then stay zeros; any other value would make
        every zero a non-zero and the output a dense matrix of all genes).
    key_added
        Where the outputs go (see Returns).

    Returns
    -------
    ``None``. Writes

    ``.layers[key_added]``
        The log2 normalised counts of all genes (without ``subset``, or with ``normalize_all``), in the
        input's layout: CSR/CSC stays CSR/CSC with the same stored entries, dense stays dense; float32
        for float32 input, else float64.
    ``.obsm[key_added]``
        Instead of the layer, with ``subset`` and ``normalize_all=False``: the log2 normalised counts of
        the subset genes only, cells x subset genes (sparse or dense as the input), as batchelor returns
        them. A layer must cover every gene, and NaN in the other genes would stop scanpy's
        functions; the subset genes' names are in ``.uns[key_added]["genes"]``, so
        ``sub = adata[:, adata.uns[key_added]["genes"]].copy(); sub.layers[key_added] =
        adata.obsm[key_added]`` gives an AnnData of them. (Running on ``adata[:, subset].copy()`` gives
        the same values.)
    ``.obs[f"{key_added}_size_factor"]``
        The final size factors (float64): library size factors divided by ``r_b``.
    ``.uns[key_added]``
        ``method``, ``params``, ``batches`` (names, in batch order), ``rescaling_divisor`` (``r_b``, one
        per batch, in that order), ``reference_batch``, ``output`` (where the values went) and, for the
        ``.obsm`` output, ``genes``.

    Notes
    -----
    Memory: the output (sparse input: a copy of its stored values; dense: cells x output genes), a
    float64 copy of the stored values of ``subset`` for the averages (sparse) or one block of about
    ``mnnkit._config.CHUNK_BYTES`` (dense), and batches x genes of averages. A sparse input is never
    densified.

    Examples
    --------
    >>> import mnnkit
    >>> adata.layers["counts"] = adata.X.copy()
    >>> mnnkit.multi_batch_norm(adata, "batch", layer="counts")
    >>> adata.X = adata.layers["multi_batch_norm"]          # log2 normalised counts
    """
    adata = check_adata(adata, "mnnkit.multi_batch_norm")
    normalize_all = check_bool(normalize_all, "normalize_all")
    min_mean = check_real(min_mean, "min_mean", positive=True)
    pseudo_count = check_real(pseudo_count, "pseudo_count", positive=True)
    key_added = check_key_added(key_added)
    batches = resolve_batches(adata, batch_key, min_cells=1)
    cols = resolve_subset(adata, subset)
    if cols is not None and cols.size == adata.n_vars:
        cols = None
    matrix = _counts(adata, layer)
    if sp.issparse(matrix) and pseudo_count != 1:
        msg = (
            f"pseudo_count must be 1 for sparse counts (zeros stay zeros), got {pseudo_count!r}; any other value "
            "makes the output a dense matrix of all genes: pass dense counts if that is what you want"
        )
        raise ValueError(msg)
    warn_batch_problems(batches, batch_key, 1, single_output="the counts normalised by library size")

    started = time.perf_counter()
    logger.info("computing multi_batch_norm of %d batches: %s", len(batches.names), ", ".join(batches.names))
    codes = batch_codes(batches, adata.n_obs)
    library = _library_size_factors(matrix, cols, codes, batches, adata.obs_names)
    averages = batch_column_means(matrix, codes, len(batches.names), cols=cols, row_weights=1.0 / library)
    divisors, reference = _rescaling_divisors(averages, batches.names, min_mean)
    size_factors = library / divisors[codes]

    out_cols = None if normalize_all else cols
    values = _log_normalised(matrix, out_cols, size_factors, pseudo_count, output_dtype(matrix.dtype))
    uns: dict[str, Any] = {
        "method": "multi_batch_norm",
        "params": {
            key: value
            for key, value in {
                "batch_key": batch_key, "layer": layer, "normalize_all": normalize_all, "min_mean": min_mean,
                "pseudo_count": pseudo_count, "n_subset_genes": adata.n_vars if cols is None else int(cols.size),
                "subset_genes": None if cols is None else np.asarray(adata.var_names[cols], dtype=object),
            }.items()
            if value is not None
        },
        "batches": np.array(batches.names, dtype=object),
        "rescaling_divisor": divisors,
        "reference_batch": reference,
    }  # fmt: skip
    if out_cols is None:
        adata.layers[key_added] = values
        uns["output"] = f"layers[{key_added!r}]"
    else:
        adata.obsm[key_added] = values
        uns["output"] = f"obsm[{key_added!r}]"
        uns["genes"] = np.asarray(adata.var_names[out_cols], dtype=object)
    adata.obs[f"{key_added}_size_factor"] = size_factors
    adata.uns[key_added] = uns
    logger.info(finished(started))


def _counts(adata: AnnData, layer: str | None):
    """The count matrix, checked (finite, via ``get_matrix``; non-negative here); a warning if not integers."""
    with warnings.catch_warnings():
        # get_matrix warns when data look like counts, which is what this function wants
        warnings.simplefilter("ignore", InputDataWarning)
        matrix = get_matrix(adata, layer)
    where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    if values.size and values.min() < 0:
        msg = f"{where} must hold raw counts (>= 0), got negative values (minimum {values.min()!r})"
        raise ValueError(msg)
    if np.issubdtype(values.dtype, np.floating):
        flat = values.ravel()
        sample = flat[:: max(1, flat.size // 100_000)]
        if not np.array_equal(sample, np.round(sample)):
            warn(
                f"{where} has non-integer values; multi_batch_norm expects raw counts (log-normalised data "
                "would be normalised a second time)",
                InputDataWarning,
            )
    return matrix


def _library_size_factors(matrix, cols, codes: np.ndarray, batches: Batches, obs_names) -> np.ndarray:
    """Each cell's total count over ``cols`` divided by the mean total of its batch (scuttle's librarySizeFactors).

    A ValueError names the cells without counts: their size factor would be 0.
    """
    sub = matrix if cols is None else matrix[:, cols]
    totals = np.asarray(sub.sum(axis=1, dtype=np.float64)).ravel()
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        shown = ", ".join(f"{obs_names[i]!r} (batch {batches.names[codes[i]]!r})" for i in empty[:5])
        more = f" and {empty.size - 5} more" if empty.size > 5 else ""
        genes = "the subset genes" if cols is not None else "any gene"
        msg = f"{empty.size} cell(s) have no counts in {genes}, so no size factor: {shown}{more}; remove them first"
        raise ValueError(msg)
    mean_totals = np.bincount(codes, weights=totals) / np.bincount(codes)
    return totals / mean_totals[codes]


def _rescaling_divisors(averages: np.ndarray, names: list[str], min_mean: float) -> tuple[np.ndarray, str]:
    """Per-batch divisors ``r_b`` of the size factors (one per batch) and the reference batch's name.

    ``ratio[f, s]`` is the median of ``a_s / a_f`` over the genes of sufficient average in both; the
    reference is the column holding the smallest ratio (the first such batch on ties), and ``r_b =
    ratio[b, reference]``.
    """
    n = len(names)
    ratio = np.ones((n, n))
    totals = averages.sum(axis=1)
    for first in range(n - 1):
        for second in range(first + 1, n):
            a_f, a_s = averages[first], averages[second]
            # the average of the two batches' profiles, each scaled to the mean of their totals
            pooled = (a_f / totals[first] + a_s / totals[second]) / 2 * (totals[first] + totals[second]) / 2
            keep = pooled >= min_mean
            if not keep.any():
                msg = (
                    f"min_mean={min_mean:g} leaves no gene to compare batches {names[first]!r} and {names[second]!r} "
                    f"(the largest average count across them is {pooled.max():.3g}); lower min_mean"
                )
                raise ValueError(msg)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[first, second] = np.median(a_s[keep] / a_f[keep])
                ratio[second, first] = np.median(a_f[keep] / a_s[keep])
    reference = int(np.argmin(ratio.min(axis=0)))
    return ratio[:, reference], names[reference]


def _log_normalised(matrix, cols, size_factors: np.ndarray, pseudo_count: float, dtype: np.dtype):
    """``log2(counts / size_factor + pseudo_count)`` of ``cols`` (None: all genes), in the input's layout."""
    if sp.issparse(matrix):
        out = (matrix if cols is None else matrix[:, cols]).astype(np.float64, copy=True)
        cells, _ = stored_positions(out)
        out.data = np.log2(out.data / size_factors[cells] + pseudo_count)
        return out.astype(dtype, copy=False)
    n_genes = matrix.shape[1] if cols is None else cols.size
    out = np.empty((matrix.shape[0], n_genes), dtype=dtype)
    map_blocks(
        matrix, cols, out, None,
        lambda block, rows, positions: np.log2(block / size_factors[rows, None] + pseudo_count),
    )  # fmt: skip
    return out
