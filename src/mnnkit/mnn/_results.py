"""Writing a correction's results into an AnnData (``.layers`` and ``.uns``)."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

from mnnkit.mnn._engine import MergeRecord
from mnnkit.mnn._input import Batches


def write_results(
    adata: AnnData,
    *,
    corrected: np.ndarray,
    out_cols: np.ndarray | None,
    dtype: np.dtype,
    key_added: str,
    batches: Batches,
    records: list[MergeRecord],
    entered: list[int],
    params: dict,
) -> None:
    """Store the corrected matrix in ``.layers[key_added]`` and the merge information in ``.uns``.

    Genes outside ``out_cols`` (when only a subset was corrected) are NaN in the layer.
    """
    if out_cols is None or out_cols.size == adata.n_vars:
        layer = corrected.astype(dtype, copy=False)
    else:
        layer = np.full((adata.n_obs, adata.n_vars), np.nan, dtype=dtype)
        layer[:, out_cols] = corrected
    adata.layers[key_added] = layer

    names = np.asarray(adata.obs_names, dtype=object)
    steps = {}
    for i, record in enumerate(records, start=1):
        steps[f"step_{i}"] = {
            "left": np.array([batches.names[b] for b in record.left], dtype=object),
            "right": np.array([batches.names[b] for b in record.right], dtype=object),
            "n_pairs": int(record.pairs.shape[0]),
            "pairs": record.pairs.astype(np.int64),
            "left_names": names[record.pairs[:, 0]],
            "right_names": names[record.pairs[:, 1]],
            "seconds": float(record.seconds),
            "max_truncated_kernel_mass": float(record.max_truncated_mass),
        }
    adata.uns[key_added] = {
        "method": "classic",
        "params": {key: value for key, value in params.items() if value is not None},
        "batches": np.array(batches.names, dtype=object),
        "merge_order": np.array([batches.names[b] for b in entered], dtype=object),
        "steps": steps,
    }
