"""Writing the classic correction's results into an AnnData (``.layers`` and ``.uns``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData


def write_results(
    adata: AnnData,
    *,
    corrected: np.ndarray,
    out_cols: np.ndarray | None,
    dtype: np.dtype,
    key_added: str,
    uns: dict[str, Any],
) -> None:
    """Store the corrected matrix in ``.layers[key_added]`` and the merge information in ``.uns[key_added]``.

    Genes outside ``out_cols`` (when only a subset was corrected) are NaN in the layer.
    """
    if out_cols is None or out_cols.size == adata.n_vars:
        layer = corrected.astype(dtype, copy=False)
    else:
        layer = np.full((adata.n_obs, adata.n_vars), np.nan, dtype=dtype)
        layer[:, out_cols] = corrected
    adata.layers[key_added] = layer
    adata.uns[key_added] = uns
