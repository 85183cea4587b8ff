"""The AnnData front shared by :func:`~mnnkit.rescale_batches` and :func:`~mnnkit.regress_batches`.

Both read the same input (batches, gene subset, ``restrict``, the matrix), and write the same outputs
(a cells x genes layer, NaN outside the subset, and a small ``.uns`` record). Everything here runs
before (checks) or after (outputs) the per-gene arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from anndata import AnnData

from mnnkit.correction._front import output_dtype, warn_batch_problems
from mnnkit.correction._inputs import Batches, get_matrix, resolve_batches, resolve_restrict, resolve_subset
from mnnkit.correction._per_gene import batch_codes


@dataclass
class LinearInput:
    """What both methods work on, resolved and checked.

    ``codes``: each cell's batch position; ``mean_codes``: the same, -1 for cells outside ``restrict``
    (the means are taken over the others). ``cols``: the subset's columns, or None for all genes.
    """

    matrix: Any
    batches: Batches
    codes: np.ndarray
    mean_codes: np.ndarray
    cols: np.ndarray | None
    dtype: np.dtype


def read_input(adata: AnnData, batch_key: str, layer: str | None, subset, restrict, *, output: str) -> LinearInput:
    """Resolve the batches, the subset, ``restrict`` and the matrix, in that order (cheap checks first).

    ``output`` says what a single batch gives (the warning's wording).
    """
    batches = resolve_batches(adata, batch_key, min_cells=1)
    cols = resolve_subset(adata, subset)
    if cols is not None and cols.size == adata.n_vars:
        cols = None
    mask = resolve_restrict(adata, restrict, batches)
    matrix = get_matrix(adata, layer)
    warn_batch_problems(batches, batch_key, 1, single_output=output)
    codes = batch_codes(batches, adata.n_obs)
    return LinearInput(
        matrix=matrix,
        batches=batches,
        codes=codes,
        mean_codes=codes if mask is None else batch_codes(batches, adata.n_obs, mask),
        cols=cols,
        dtype=output_dtype(matrix.dtype),
    )


def output_layer(n_cells: int, n_genes: int, data: LinearInput) -> np.ndarray:
    """The dense output layer: uninitialised for all genes, NaN outside the subset otherwise."""
    if data.cols is None:
        return np.empty((n_cells, n_genes), dtype=data.dtype)
    return np.full((n_cells, n_genes), np.nan, dtype=data.dtype)


def write_outputs(
    adata: AnnData, key_added: str, layer, *, method: str, data: LinearInput, restrict, params: dict[str, Any]
) -> None:
    """``.layers[key_added]`` and ``.uns[key_added]`` (``method``, ``params`` without None values, ``batches``).

    ``params`` gains ``n_subset_genes`` and ``subset_genes`` (the corrected genes, when a subset was given),
    and with ``restrict`` its column name (or ``"mask"``) and ``n_restricted_cells``.
    """
    adata.layers[key_added] = layer
    subset_genes = None if data.cols is None else np.asarray(adata.var_names[data.cols], dtype=object)
    n_genes = adata.n_vars if data.cols is None else int(data.cols.size)
    params = {**params, "n_subset_genes": n_genes, "subset_genes": subset_genes}
    if restrict is not None:
        params["restrict"] = restrict if isinstance(restrict, str) else "mask"
        params["n_restricted_cells"] = int(np.count_nonzero(data.mean_codes >= 0))
    adata.uns[key_added] = {
        "method": method,
        "params": {key: value for key, value in params.items() if value is not None},
        "batches": np.array(data.batches.names, dtype=object),
    }
