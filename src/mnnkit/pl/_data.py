"""What the plots and ``mnnkit evaluate`` need from a corrected AnnData.

The correction record in ``.uns[key_added]``, the corrected values, and the *uncorrected* values on the same
genes and in the same scale (the correction's input, cosine-normalised when the output was), so that
"before" and "after" differ by the correction only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = ["CorrectionData", "compare_metrics", "correction_data", "correction_record", "find_corrections"]

logger = logging.getLogger("mnnkit")

#: batchelor's floor on a cell's l2 norm in cosine normalisation (as in :mod:`mnnkit.mnn`).
_COSINE_NORM_FLOOR = 1e-8


def _is_record(value: Any) -> bool:
    return isinstance(value, Mapping) and {"method", "params", "steps"} <= set(value.keys())


def find_corrections(adata: Any) -> list[str]:
    """Keys of ``adata.uns`` that hold an mnnkit correction record (``method``, ``params``, ``steps``)."""
    return [str(key) for key, value in adata.uns.items() if _is_record(value)]


def correction_record(adata: Any, key_added: str) -> Mapping:
    """The correction record ``adata.uns[key_added]``; ``ValueError`` listing the recorded ones if absent."""
    value = adata.uns.get(key_added)
    if not _is_record(value):
        found = find_corrections(adata)
        listing = ", ".join(map(repr, found)) if found else "none"
        msg = f"adata.uns[{key_added!r}] is not an mnnkit correction record; corrections recorded: {listing}"
        raise ValueError(msg)
    return value


@dataclass
class CorrectionData:
    """Corrected and uncorrected values of one recorded correction.

    Attributes
    ----------
    key
        ``key_added`` of the correction.
    batch_key
        The ``.obs`` column the correction used.
    corrected
        Dense float64: cells x ``genes`` for a gene-level output (``.layers[key]``), else the embedding.
    uncorrected
        Dense float64 cells x ``genes``: the correction's input on those genes, cosine-normalised over them
        when the correction's output was.
    genes
        Column positions (in ``adata.var``) of the genes in ``uncorrected``: the genes used for distances
        when known, else every gene the correction returned.
    gene_level
        Whether ``corrected`` lies on the same genes as ``uncorrected`` (then ``corrected - uncorrected`` are
        the correction vectors).
    corrected_where, uncorrected_where
        Human-readable origins of the two matrices.
    """

    key: str
    batch_key: str
    corrected: np.ndarray
    uncorrected: np.ndarray
    genes: np.ndarray
    gene_level: bool
    corrected_where: str
    uncorrected_where: str

    @property
    def vector_lengths(self) -> np.ndarray | None:
        """Per-cell length of the correction vector over ``genes`` (``None`` for an embedding output)."""
        if not self.gene_level:
            return None
        return np.linalg.norm(self.corrected - self.uncorrected, axis=1)


def _subset_columns(adata: Any, subset: Any) -> np.ndarray:
    """Column positions from a boolean ``.var`` column name, a boolean mask or gene names."""
    if isinstance(subset, str):
        if subset not in adata.var.columns:
            msg = f"subset {subset!r} is not a column of adata.var; available: {sorted(map(str, adata.var.columns))}"
            raise ValueError(msg)
        mask = adata.var[subset].to_numpy()
        if mask.dtype != bool:
            msg = f"adata.var[{subset!r}] must be boolean, got dtype {mask.dtype}"
            raise TypeError(msg)
        return np.flatnonzero(mask)
    values = np.asarray(subset)
    if values.dtype == bool:
        if values.shape != (adata.n_vars,):
            msg = f"a boolean subset needs one entry per gene ({adata.n_vars}), got shape {values.shape}"
            raise ValueError(msg)
        return np.flatnonzero(values)
    positions = adata.var_names.get_indexer(values.astype(str))
    if (positions < 0).any():
        msg = f"subset has {int((positions < 0).sum())} names not in adata.var_names"
        raise ValueError(msg)
    return np.sort(positions)


def _output_of(adata: Any, key: str) -> tuple[Any, str, bool]:
    """The correction's output: ``(values, where, gene_level)``."""
    if key in adata.layers:
        return adata.layers[key], f"layers[{key!r}]", True
    for name in (f"X_{key}", key):
        if name in adata.obsm:
            return adata.obsm[name], f"obsm[{name!r}]", False
    msg = (
        f"the correction {key!r} is recorded in .uns but its output is neither .layers[{key!r}] nor "
        f".obsm[{'X_' + key!r}]; layers: {sorted(adata.layers.keys())}, obsm: {sorted(adata.obsm.keys())}"
    )
    raise ValueError(msg)


def _dense(matrix: Any, cols: np.ndarray | None) -> np.ndarray:
    sub = matrix if cols is None else matrix[:, cols]
    sub = sub.toarray() if sparse.issparse(sub) else np.asarray(sub)
    return np.array(sub, dtype=np.float64, order="C")


def correction_data(adata: Any, key_added: str = "mnn", *, subset: str | Sequence[str] | np.ndarray | None = None):
    """Corrected and uncorrected values of the correction recorded under ``key_added``.

    Parameters
    ----------
    adata
        AnnData holding a correction made by :func:`mnnkit.correct` (or ``mnnkit correct``); not modified.
    key_added
        The correction's key (``.uns[key_added]``, ``.layers[key_added]``).
    subset
        The genes the correction used for distances (boolean ``.var`` column, mask or names). Only needed
        when it cannot be read from the record: a ``correct_all=True`` correction on a gene subset made from
        Python (the command line records its subset).

    Returns
    -------
    CorrectionData
    """
    record = correction_record(adata, key_added)
    params = dict(record.get("params", {}))
    batch_key = str(params.get("batch_key", "batch"))
    output, out_where, gene_level = _output_of(adata, key_added)
    cli = record.get("cli", {}) if isinstance(record.get("cli", {}), Mapping) else {}

    n_subset = int(params.get("n_subset_genes", adata.n_vars))
    if subset is None:  # the command line records the subset it used
        if str(cli.get("subset", "")) and str(cli["subset"]) in adata.var.columns:
            subset = str(cli["subset"])
        elif np.size(cli.get("subset_genes", [])) > 0:
            subset = [str(name) for name in np.atleast_1d(cli["subset_genes"])]
    if subset is not None:
        genes = _subset_columns(adata, subset)
        if gene_level and genes.size != n_subset:
            logger.info("subset of %d genes differs from the %d the correction used", genes.size, n_subset)
    elif gene_level and not bool(params.get("correct_all", False)):
        sample = np.asarray(output[: min(adata.n_obs, 64)] if not sparse.issparse(output) else output[:64].toarray())
        genes = np.flatnonzero(np.isfinite(sample).all(axis=0))
    elif n_subset == adata.n_vars:
        genes = np.arange(adata.n_vars)
    elif gene_level:
        msg = (
            f"correction {key_added!r} corrected all genes using a subset of {n_subset} of {adata.n_vars} genes that "
            "is not recorded; pass subset= (the .var column, mask or names used)"
        )
        raise ValueError(msg)
    else:
        genes = np.arange(adata.n_vars)
    if genes.size == 0:
        msg = f"correction {key_added!r}: no genes to compare (the subset is empty)"
        raise ValueError(msg)

    layer = params.get("layer")
    if layer is not None and str(layer) not in adata.layers:
        msg = f"correction {key_added!r} read .layers[{layer!r}], which is no longer in the file"
        raise ValueError(msg)
    source = adata.X if layer is None else adata.layers[str(layer)]
    src_where = "X" if layer is None else f"layers[{str(layer)!r}]"
    uncorrected = _dense(source, genes)
    cosine = bool(params.get("cos_norm_out", True))
    if cosine:
        norms = np.sqrt(np.einsum("ij,ij->i", uncorrected, uncorrected))
        uncorrected /= np.maximum(norms, _COSINE_NORM_FLOOR)[:, None]
    corrected = _dense(output, genes if gene_level else None)
    if not np.isfinite(corrected).all():
        msg = f"{out_where} has NaN values on the compared genes; pass the genes the correction used as subset="
        raise ValueError(msg)
    where_genes = f"{genes.size} genes"
    return CorrectionData(
        key=key_added,
        batch_key=batch_key,
        corrected=corrected,
        uncorrected=uncorrected,
        genes=genes,
        gene_level=gene_level,
        corrected_where=f"{out_where}, {where_genes}" if gene_level else out_where,
        uncorrected_where=f"{src_where}, {where_genes}" + (", cosine-normalised" if cosine else ""),
    )


def compare_metrics(
    adata: Any,
    *,
    key_added: str = "mnn",
    batch_key: str | None = None,
    label_key: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    data: CorrectionData | None = None,
    **evaluate_kwargs: Any,
) -> pd.DataFrame:
    """:func:`mnnkit.metrics.evaluate` of the uncorrected and the corrected values of a correction.

    Both are scored the same way (a gene-level matrix through the same PCA). Returns a table indexed by
    metric with columns ``uncorrected``, ``corrected``, ``higher_is_better``, ``description``; ``attrs``
    holds each side's ``evaluate`` attributes under ``"uncorrected"`` and ``"corrected"``.
    """
    from anndata import AnnData

    from mnnkit.metrics import evaluate

    if data is None:
        data = correction_data(adata, key_added, subset=subset)
    batch_key = data.batch_key if batch_key is None else batch_key
    columns = [batch_key] + ([label_key] if label_key is not None and label_key != batch_key else [])
    for column in columns:
        if column not in adata.obs.columns:
            msg = f"{column!r} is not a column of adata.obs; available: {sorted(map(str, adata.obs.columns))}"
            raise ValueError(msg)
    obs = adata.obs[columns].copy()
    kwargs = {"batch_key": batch_key, "label_key": label_key, **evaluate_kwargs}
    before = evaluate(AnnData(X=data.uncorrected, obs=obs), rep="X", **kwargs)
    if data.gene_level:
        after = evaluate(AnnData(X=data.corrected, obs=obs), rep="X", **kwargs)
    else:
        after = evaluate(AnnData(obs=obs, obsm={"corrected": data.corrected}), rep="corrected", **kwargs)
    table = pd.DataFrame(
        {
            "uncorrected": before["value"],
            "corrected": after["value"],
            "higher_is_better": after["higher_is_better"],
            "description": after["description"],
        }
    )
    table.attrs = {
        "uncorrected": {**before.attrs, "rep": data.uncorrected_where},
        "corrected": {**after.attrs, "rep": data.corrected_where},
        "key_added": data.key,
    }
    return table
