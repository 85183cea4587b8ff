"""Writing fastMNN's outputs into an AnnData (``.obsm``, ``.varm``, ``.layers``, ``.uns``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData

from mnnkit.fastmnn._core import StepRecord
from mnnkit.mnn._input import Batches


def output_keys(key_added: str) -> dict[str, str]:
    """Where each output goes: ``.obsm["X_<key>"]``, ``.varm["<key>_rotation"]``, ``.layers[key]``, ``.uns[key]``."""
    return {"obsm": f"X_{key_added}", "varm": f"{key_added}_rotation", "layers": key_added, "uns": key_added}


def merge_info(batches: Batches, records: list[StepRecord], entered: list[int]) -> dict:
    """The merge information (batchelor's ``merge.info``) as nested dicts, one per merge step."""
    names = batches.names
    steps = {}
    for i, record in enumerate(records, start=1):
        steps[f"step_{i}"] = {
            "left": np.array([names[b] for b in record.left], dtype=object),
            "right": np.array([names[b] for b in record.right], dtype=object),
            "n_pairs": int(record.pairs.shape[0]),
            "pairs": record.pairs.astype(np.int64),
            "batch_size": float(record.batch_size),
            "skipped": bool(record.skipped),
            "skip_reason": record.reason,
            "lost_var": {name: float(record.lost_var.get(b, 0.0)) for b, name in enumerate(names)},
            "batch_vector": np.asarray(record.batch_vector, dtype=np.float64),
            "seconds": float(record.seconds),
        }
    return {
        "batches": np.array(names, dtype=object),
        "merge_order": np.array([names[b] for b in entered], dtype=object),
        "steps": steps,
    }


def write_results(
    adata: AnnData,
    *,
    corrected: np.ndarray,
    dtype: np.dtype,
    key_added: str,
    rotation: np.ndarray | None,
    center: np.ndarray | None,
    singular_values: np.ndarray | None,
    layer: Any,
    info: dict,
    params: dict,
) -> None:
    """Store the corrected embedding, the rotation, the optional layer and the merge information."""
    keys = output_keys(key_added)
    adata.obsm[keys["obsm"]] = corrected.astype(dtype, copy=False)
    if rotation is not None:
        adata.varm[keys["varm"]] = rotation.astype(dtype, copy=False)
    if layer is not None:
        adata.layers[keys["layers"]] = layer
    uns = {"method": "fast", "params": {k: v for k, v in params.items() if v is not None}, **info}
    if center is not None:
        uns["center"] = np.asarray(center, dtype=np.float64)
    if singular_values is not None:
        uns["singular_values"] = np.asarray(singular_values, dtype=np.float64)
    adata.uns[keys["uns"]] = uns
