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

from mnnkit._config import COSINE_NORM_FLOOR
from mnnkit._validation import check_key

__all__ = ["CorrectionData", "compare_metrics", "correction_data", "correction_record", "find_corrections"]

logger = logging.getLogger("mnnkit")

#: Rows of a gene-level output read to tell the corrected genes from the NaN ones (every row agrees).
_PROBE_ROWS = 64


def obs_columns(adata: Any, batch_key: str, label_key: str | None) -> list[str]:
    """``[batch_key]`` or ``[batch_key, label_key]``, after checking that ``adata.obs`` has them."""
    columns = [check_key(adata, batch_key, "batch_key")]
    if label_key is not None:
        columns.append(check_key(adata, label_key, "label_key"))
    return columns


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
    method
        ``"classic"`` or ``"fast"`` (the record's ``method``).
    batch_key
        The ``.obs`` column the correction used.
    corrected
        Dense float64: cells x ``genes`` for a gene-level output (``.layers[key]`` of the classic method),
        else the corrected embedding (``.obsm["X_<key>"]``).
    uncorrected
        Dense float64: the correction's input, cells x ``genes``, cosine-normalised over those genes when the
        correction normalised; or, for an embedding the correction started from (``use_rep``), that embedding.
    genes
        Column positions (in ``adata.var``) of the genes in ``uncorrected`` (``None`` for an embedding): the
        genes used for distances when known, else every gene the correction returned (or read).
    gene_level
        Whether ``corrected`` and ``uncorrected`` lie on the same genes (then ``corrected - uncorrected`` are
        the correction vectors).
    uncorrected_is_genes
        Whether ``uncorrected`` is gene-level (else an embedding).
    corrected_where, uncorrected_where
        Human-readable origins of the two matrices.
    """

    key: str
    method: str
    batch_key: str
    corrected: np.ndarray
    uncorrected: np.ndarray
    genes: np.ndarray | None
    gene_level: bool
    uncorrected_is_genes: bool
    corrected_where: str
    uncorrected_where: str

    @property
    def vector_lengths(self) -> np.ndarray | None:
        """Per-cell length of the correction vector over ``genes`` (``None`` unless ``gene_level``)."""
        if not self.gene_level:
            return None
        return np.linalg.norm(self.corrected - self.uncorrected, axis=1)


def _subset_columns(adata: Any, subset: Any) -> np.ndarray:
    """Column positions from a boolean ``.var`` column name, a boolean mask or gene names."""
    if isinstance(subset, str):
        mask = adata.var[check_key(adata, subset, "subset", "var")].to_numpy()
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


def _output_of(adata: Any, key: str, method: str) -> tuple[Any, str, bool]:
    """The correction's output: ``(values, where, gene_level)``.

    The classic method's output is ``.layers[key]`` (corrected expression); the fast method's is the
    embedding ``.obsm["X_<key>"]`` (its optional ``.layers[key]`` holds centred reconstructions, not values
    comparable with the input, so it is not used here).
    """
    embedding_first = method == "fast"
    candidates = [("obsm", f"X_{key}"), ("obsm", key)]
    candidates = candidates + [("layers", key)] if embedding_first else [("layers", key), *candidates]
    for where, name in candidates:
        store = adata.obsm if where == "obsm" else adata.layers
        if name in store:
            return store[name], f"{where}[{name!r}]", where == "layers"
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
        when it cannot be read from the record (the classic method records the subset's gene names in
        ``params["subset_genes"]``, the command line records its subset; older records may lack both).

    Returns
    -------
    CorrectionData
    """
    record = correction_record(adata, key_added)
    params = dict(record.get("params", {}))
    method = str(record.get("method", "classic"))
    batch_key = str(params.get("batch_key", "batch"))
    output, out_where, gene_level = _output_of(adata, key_added, method)
    cli = record.get("cli", {}) if isinstance(record.get("cli", {}), Mapping) else {}

    use_rep = params.get("use_rep")
    if use_rep is not None:  # the correction started from an embedding: compare with that embedding
        if str(use_rep) not in adata.obsm:
            msg = f"correction {key_added!r} corrected .obsm[{use_rep!r}], which is no longer in the file"
            raise ValueError(msg)
        uncorrected = _dense(adata.obsm[str(use_rep)], None)
        corrected = _dense(output, None)
        return CorrectionData(
            key=key_added, method=method, batch_key=batch_key, corrected=corrected, uncorrected=uncorrected,
            genes=None, gene_level=False, uncorrected_is_genes=False, corrected_where=out_where,
            uncorrected_where=f"obsm[{str(use_rep)!r}]",
        )  # fmt: skip

    genes = _compared_genes(adata, key_added, params, cli, subset, output if gene_level else None)
    layer = params.get("layer")
    if layer is not None and str(layer) not in adata.layers:
        msg = f"correction {key_added!r} read .layers[{layer!r}], which is no longer in the file"
        raise ValueError(msg)
    source = adata.X if layer is None else adata.layers[str(layer)]
    src_where = "X" if layer is None else f"layers[{str(layer)!r}]"
    uncorrected = _dense(source, genes)
    cosine = bool(params.get("cos_norm_out", params.get("cos_norm", True)))
    if cosine:
        norms = np.sqrt(np.einsum("ij,ij->i", uncorrected, uncorrected))
        uncorrected /= np.maximum(norms, COSINE_NORM_FLOOR)[:, None]
    corrected = _dense(output, genes if gene_level else None)
    if not np.isfinite(corrected).all():
        msg = f"{out_where} has NaN values on the compared genes; pass the genes the correction used as subset="
        raise ValueError(msg)
    where_genes = f"{genes.size} genes"
    return CorrectionData(
        key=key_added,
        method=method,
        batch_key=batch_key,
        corrected=corrected,
        uncorrected=uncorrected,
        genes=genes,
        gene_level=gene_level,
        uncorrected_is_genes=True,
        corrected_where=f"{out_where}, {where_genes}" if gene_level else out_where,
        uncorrected_where=f"{src_where}, {where_genes}" + (", cosine-normalised" if cosine else ""),
    )


def _compared_genes(adata: Any, key: str, params: dict, cli: Mapping, subset: Any, layer_out: Any) -> np.ndarray:
    """Columns of the genes to compare: the correction's subset when known, else what it returned or read."""
    n_subset = int(params.get("n_subset_genes", adata.n_vars))
    if subset is None:  # the command line records the subset it used; the fast method records a column name
        if str(cli.get("subset", "")) and str(cli["subset"]) in adata.var.columns:
            subset = str(cli["subset"])
        elif np.size(cli.get("subset_genes", [])) > 0:
            subset = [str(name) for name in np.atleast_1d(cli["subset_genes"])]
        elif isinstance(params.get("subset"), str) and params["subset"] in adata.var.columns:
            subset = params["subset"]
        elif np.size(params.get("subset_genes", [])) > 0:  # the classic method records the subset's names
            subset = [str(name) for name in np.atleast_1d(params["subset_genes"])]
    if subset is not None:
        genes = _subset_columns(adata, subset)
    elif layer_out is not None and not bool(params.get("correct_all", False)):
        rows = layer_out[: min(adata.n_obs, _PROBE_ROWS)]
        sample = rows.toarray() if sparse.issparse(rows) else np.asarray(rows)
        genes = np.flatnonzero(np.isfinite(sample).all(axis=0))  # genes outside the subset are NaN
    elif layer_out is None or n_subset == adata.n_vars:
        genes = np.arange(adata.n_vars)
    else:
        msg = (
            f"correction {key!r} corrected all genes using a subset of {n_subset} of {adata.n_vars} genes that "
            "is not recorded; pass subset= (the .var column, mask or names used)"
        )
        raise ValueError(msg)
    if genes.size == 0:
        msg = f"correction {key!r}: no genes to compare (the subset is empty)"
        raise ValueError(msg)
    return genes


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
    from mnnkit.metrics import evaluate

    if data is None:
        data = correction_data(adata, key_added, subset=subset)
    batch_key = data.batch_key if batch_key is None else batch_key
    columns = list(dict.fromkeys(obs_columns(adata, batch_key, label_key)))  # once if label_key == batch_key
    obs = adata.obs[columns].copy()
    kwargs = {"batch_key": batch_key, "label_key": label_key, **evaluate_kwargs}
    before = _evaluate_matrix(evaluate, data.uncorrected, obs, genes=data.uncorrected_is_genes, **kwargs)
    after = _evaluate_matrix(evaluate, data.corrected, obs, genes=data.gene_level, **kwargs)
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


def _evaluate_matrix(evaluate, values: np.ndarray, obs: pd.DataFrame, *, genes: bool, **kwargs: Any) -> pd.DataFrame:
    """``evaluate`` of a gene-level matrix (through its PCA) or of an embedding (as it is)."""
    from anndata import AnnData

    if genes:
        return evaluate(AnnData(X=values, obs=obs.copy()), rep="X", **kwargs)
    return evaluate(AnnData(obs=obs.copy(), obsm={"embedding": values}), rep="embedding", **kwargs)
