"""``mnnkit.regress_batches``: batchelor's ``regressBatches``, the residuals of a per-batch mean of every gene."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from mnnkit._logging import finished
from mnnkit._validation import check_adata, check_key_added
from mnnkit.correction._per_gene import batch_column_means, map_blocks
from mnnkit.correction.linear._front import output_layer, read_input, write_outputs

logger = logging.getLogger("mnnkit")


def regress_batches(
    adata: AnnData,
    batch_key: str = "batch",
    *,
    layer: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    restrict: str | np.ndarray | None = None,
    key_added: str = "regress_batches",
) -> None:
    """Remove batch effects by regressing each gene on the batch: every batch is centred on its own mean.

    batchelor's ``regressBatches`` with its default design ``~0 + batch``: the output is the residual
    of a linear model with one mean per batch and gene, ``x - mean_b(x)``, where the means are taken
    over the ``restrict`` cells (if given) and subtracted from every cell of the batch. A linear method:
    it assumes that every batch holds the same cell types in the same proportions, and that the batch
    effect is a shift of each gene; use :func:`mnnkit.correct` or :func:`mnnkit.fast_mnn` when
    compositions differ. The residuals are centred within each batch, so they suit a PCA
    (``sc.pp.pca(adata, layer=key_added)``), not a look at expression levels.

    Parameters
    ----------
    adata
        Cells x genes, log-expression in ``.X`` or ``layer``: dense ``numpy.ndarray`` or
        ``scipy.sparse`` CSR/CSC, any float dtype. Backed AnnData is not supported. Not modified,
        except for the outputs written.
    batch_key
        Column of ``.obs`` with the batch of each cell.
    layer
        Layer to read instead of ``.X``.
    subset
        Genes to correct, as in :func:`mnnkit.rescale_batches` (the other columns of the layer are NaN).
    restrict
        Cells from which the batch means are computed: the name of a boolean ``.obs`` column or a
        boolean mask (e.g. control cells); every cell is corrected. Every batch needs such a cell.
        ``None``: all cells.
    key_added
        Where the outputs go: ``.layers[key_added]`` and ``.uns[key_added]``.

    Returns
    -------
    ``None``. Writes

    ``.layers[key_added]``
        The residuals, dense, cells in the original order (NaN outside ``subset``); float32 for float32
        input, else float64.
    ``.uns[key_added]``
        ``method``, ``params`` (including ``subset_genes`` and ``restrict`` when given) and ``batches``
        (names, in batch order).

    Notes
    -----
    Memory: batchelor returns a deferred ``ResidualMatrix`` that stores the input and the per-batch
    means and computes residuals on demand. Here the residuals are realised, so the cost is the dense
    output layer itself (cells x genes of the output dtype: 4 bytes per value for float32 input,
    e.g. 4 GB for 100,000 cells x 10,000 genes), plus the per-batch means (batches x genes, float64)
    and one dense block of about ``mnnkit._config.CHUNK_BYTES``. Nothing larger is built: sparse input
    is densified block by block straight into the output, and the means come from a sparse product.
    For large data, correct only the genes you need (``subset``), or use :func:`mnnkit.fast_mnn`.

    Examples
    --------
    >>> import mnnkit, scanpy as sc
    >>> mnnkit.regress_batches(adata, "batch", subset="highly_variable")
    >>> sc.pp.pca(adata, layer="regress_batches", mask_var="highly_variable")  # the corrected genes only
    """
    adata = check_adata(adata, "mnnkit.regress_batches")
    key_added = check_key_added(key_added)
    data = read_input(adata, batch_key, layer, subset, restrict, output="the input centred on its mean")

    started = time.perf_counter()
    names = data.batches.names
    logger.info("computing regress_batches of %d batches: %s", len(names), ", ".join(names))
    means = batch_column_means(data.matrix, data.mean_codes, len(names), cols=data.cols)
    out = output_layer(adata.n_obs, adata.n_vars, data)
    map_blocks(
        data.matrix, data.cols, out, data.cols,
        lambda block, rows, positions: np.subtract(block, means[data.codes[rows]][:, positions], out=block),
    )  # fmt: skip
    write_outputs(
        adata, key_added, out, method="regress_batches", data=data, restrict=restrict,
        params={"batch_key": batch_key, "layer": layer},
    )  # fmt: skip
    logger.info(finished(started))
