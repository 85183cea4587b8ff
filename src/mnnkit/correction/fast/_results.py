"""Writing fastMNN's outputs into an AnnData (``.obsm``, ``.varm``, ``.layers``, ``.uns``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData


def output_keys(key_added: str) -> dict[str, str]:
    """Where each output goes: every slot under ``key_added`` itself, as scanpy's ``key_added`` parameters do."""
    return {"obsm": key_added, "varm": key_added, "layers": key_added, "uns": key_added}


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
    uns: dict[str, Any],
) -> None:
    """Store the corrected embedding, the rotation, the optional layer and the merge information.

    ``uns`` is the merge information (:func:`mnnkit.correction._front.merge_uns`); the PCA's
    ``center`` and ``singular_values`` are added to it.
    """
    keys = output_keys(key_added)
    adata.obsm[keys["obsm"]] = corrected.astype(dtype, copy=False)
    if rotation is not None:
        adata.varm[keys["varm"]] = rotation.astype(dtype, copy=False)
    if layer is not None:
        adata.layers[keys["layers"]] = layer
    if center is not None:
        uns["center"] = np.asarray(center, dtype=np.float64)
    if singular_values is not None:
        uns["singular_values"] = np.asarray(singular_values, dtype=np.float64)
    adata.uns[keys["uns"]] = uns
