"""``mnnkit.rescale_batches``: batchelor's ``rescaleBatches``, scaling each batch's expression down to the lowest."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from mnnkit._logging import finished
from mnnkit._validation import check_adata, check_key_added, check_real
from mnnkit._warnings import InputDataWarning, warn
from mnnkit.correction._per_gene import batch_column_means, map_blocks, stored_positions
from mnnkit.correction.linear._front import LinearInput, output_layer, read_input, write_outputs

logger = logging.getLogger("mnnkit")


def rescale_batches(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    layer: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    log_base: float = 2,
    pseudo_count: float = 1,
    restrict: str | np.ndarray | None = None,
    key_added: str = "rescale_batches",
) -> None:
    """Remove batch effects by scaling every batch's counts down to the lowest batch, gene by gene.

    batchelor's ``rescaleBatches``: the log-expression ``x`` is turned back into the count scale,
    ``u = log_base**x - pseudo_count``; for every gene, each batch's mean ``m_b`` of ``u`` is computed
    (over the ``restrict`` cells, if given), and every batch is scaled to the lowest of them,
    ``u * min_b(m_b) / m_b`` (a scale of 0 where ``m_b`` is 0); the output is
    ``log(u * scale + pseudo_count, log_base)``. Downscaling (never upscaling) keeps the mean-variance
    relationship of counts, so no batch gains precision it did not measure. A linear method: it assumes
    that every batch holds the same cell types in the same proportions (batchelor's caveat), and suits
    replicate batches of one population; use :func:`mnnkit.correct` or :func:`mnnkit.fast_mnn` when
    compositions differ.

    Parameters
    ----------
    adata
        Cells x genes, log-expression in ``.X`` or ``layer`` (``log(counts + pseudo_count, log_base)``
        after size-factor normalisation, e.g. :func:`mnnkit.multi_batch_norm`'s output): dense
        ``numpy.ndarray`` or ``scipy.sparse`` CSR/CSC, any float dtype. Backed AnnData is not
        supported. Not modified, except for the outputs written.
    batch_key
        Column of ``.obs`` with the batch of each cell.
    layer
        Layer to read instead of ``.X``.
    subset
        Genes to correct: a boolean mask, gene names, positions, or the name of a boolean ``.var``
        column. Every gene is corrected on its own, so the subset changes nothing for its genes; as in
        batchelor, only they are returned, and the other columns of the layer are NaN. ``None``: all
        genes.
    log_base
        Base of the input's logarithm. batchelor's default 2 matches ``log2(x + 1)`` data (scran,
        :func:`mnnkit.multi_batch_norm`); scanpy's ``sc.pp.log1p`` uses the natural log: pass
        ``log_base=np.e`` for such data.
    pseudo_count
        Pseudo-count of the input's logarithm.
    restrict
        Cells from which the means are computed: the name of a boolean ``.obs`` column or a boolean mask
        (e.g. control cells); every cell is rescaled. Every batch needs such a cell. ``None``: all cells.
    key_added
        Where the outputs go: ``.layers[key_added]`` and ``.uns[key_added]``.

    Returns
    -------
    ``None``. Writes

    ``.layers[key_added]``
        The rescaled log-expression, cells in the original order: CSR/CSC (as the input) when the
        input is sparse, ``pseudo_count`` is 1 and no proper subset is given (zeros stay zeros);
        dense otherwise (NaN outside ``subset``). float32 for float32 input, else float64.
    ``.uns[key_added]``
        ``method``, ``params`` (including ``subset_genes`` and ``restrict`` when given) and ``batches``
        (names, in batch order).

    Notes
    -----
    Memory: the output layer (dense: cells x genes of the output dtype; sparse: the input's stored
    values), the per-batch means (batches x genes, float64) and one block of about
    ``mnnkit._config.CHUNK_BYTES``; a sparse output also needs a float64 copy of the input's stored
    values and their cell and gene indices. Sparse input is never densified beyond what a dense output
    holds anyway.

    Examples
    --------
    >>> import mnnkit
    >>> mnnkit.multi_batch_norm(adata, "batch")                 # log2 logcounts in .layers
    >>> mnnkit.rescale_batches(adata, "batch", layer="multi_batch_norm")
    >>> adata.layers["rescale_batches"]
    """
    adata = check_adata(adata, "mnnkit.rescale_batches")
    log_base = check_real(log_base, "log_base", positive=True)
    if log_base == 1:
        msg = f"log_base must be a positive number other than 1, got {log_base!r}"
        raise ValueError(msg)
    pseudo_count = check_real(pseudo_count, "pseudo_count", positive=True)
    key_added = check_key_added(key_added)
    data = read_input(adata, batch_key, layer, subset, restrict, output="the input, unchanged up to rounding")
    _warn_negative(data.matrix, layer)

    started = time.perf_counter()
    names = data.batches.names
    logger.info("computing rescale_batches of %d batches: %s", len(names), ", ".join(names))

    def unlog(values: np.ndarray) -> np.ndarray:
        return np.power(log_base, values) - pseudo_count

    means = batch_column_means(data.matrix, data.mean_codes, len(names), cols=data.cols, transform=unlog)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.min(means, axis=0) / means
    scale[~np.isfinite(scale)] = 0.0  # batchelor's rule: a batch without expression of a gene scales by 0

    def rescaled(values: np.ndarray, factors: np.ndarray) -> np.ndarray:
        return _log(unlog(values) * factors + pseudo_count, log_base)

    if sp.issparse(data.matrix) and pseudo_count == 1 and data.cols is None:
        out = _sparse_rescaled(data, scale, rescaled)
    else:
        out = output_layer(adata.n_obs, adata.n_vars, data)
        map_blocks(
            data.matrix, data.cols, out, data.cols,
            lambda block, rows, positions: rescaled(block, scale[data.codes[rows]][:, positions]),
        )  # fmt: skip
    write_outputs(
        adata, key_added, out, method="rescale_batches", data=data, restrict=restrict,
        params={"batch_key": batch_key, "layer": layer, "log_base": log_base, "pseudo_count": pseudo_count},
    )  # fmt: skip
    logger.info(finished(started))


def _log(values: np.ndarray, base: float) -> np.ndarray:
    """``log(values, base)`` as R computes it (log2 and log10 directly, else log / log(base))."""
    if base == 2:
        return np.log2(values)
    if base == 10:
        return np.log10(values)
    return np.log(values) / np.log(base)


def _sparse_rescaled(data: LinearInput, scale: np.ndarray, rescaled) -> sp.spmatrix:
    """The rescaled values of a sparse matrix, in its format: with ``pseudo_count`` 1 a zero maps to zero."""
    out = data.matrix.astype(np.float64, copy=True)
    cells, genes = stored_positions(out)
    out.data = rescaled(out.data, scale[data.codes[cells], genes])
    return out.astype(data.dtype, copy=False)


def _warn_negative(matrix, layer: str | None) -> None:
    """Warn when the input has negative values: log-expression of counts is >= 0, and means may then be <= 0."""
    values = matrix.data if sp.issparse(matrix) else matrix
    if values.size and values.min() < 0:
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        warn(
            f"{where} has negative values; rescale_batches expects log-expression of counts "
            "(log(counts + pseudo_count) >= 0), and its per-gene means may then be zero or negative",
            InputDataWarning,
        )
