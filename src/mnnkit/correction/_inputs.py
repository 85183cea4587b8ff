"""Validation and preparation of the correction's input: batches, gene subset, cosine normalisation.

Everything here runs before any numba kernel, so bad input fails with a clear message that names
the parameter. The caller's AnnData is only read.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from mnnkit._config import COSINE_NORM_FLOOR
from mnnkit._warnings import InputDataWarning


@dataclass
class Batches:
    """Batch names in input order and the rows of each batch (ascending)."""

    names: list[str]
    members: list[np.ndarray]


def obs_column(adata: AnnData, key: object, name: str, what: str) -> pd.Series:
    """``adata.obs[key]``, or a ValueError naming the parameter ``name`` (missing column, or missing values).

    ``what`` says what every cell needs (e.g. ``"a batch"``).
    """
    if not isinstance(key, str) or key not in adata.obs.columns:
        available = ", ".join(map(str, adata.obs.columns)) or "(none)"
        msg = f"{name} {key!r} not in adata.obs; available: {available}"
        raise ValueError(msg)
    column = adata.obs[key]
    if column.isna().any():
        msg = f"adata.obs[{key!r}] has {int(column.isna().sum())} missing values; every cell needs {what}"
        raise ValueError(msg)
    return column


def resolve_batches(adata: AnnData, batch_key: str, *, min_cells: int = 2) -> Batches:
    """Split cells by ``adata.obs[batch_key]``.

    The batch order is the category order of a categorical column, else the sorted unique values
    (R's ``levels(factor(batch))``). Empty categories are ignored.
    """
    column = obs_column(adata, batch_key, "batch_key", "a batch")
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        labels = list(column.cat.categories)
    else:
        # R's levels(factor(x)): sorted values, numbers in numeric order (2 before 10)
        labels = sorted(pd.unique(column), key=label_sort_key)
        codes = pd.Categorical(column, categories=labels).codes
    categories = [str(c) for c in labels]
    _check_distinct_names(labels, categories, batch_key)
    names, members = [], []
    for code, name in enumerate(categories):
        rows = np.flatnonzero(codes == code)
        if rows.size:
            names.append(name)
            members.append(rows)
    if not names:
        msg = f"adata.obs[{batch_key!r}] has no batches (adata has {adata.n_obs} cells)"
        raise ValueError(msg)
    small = [f"{n} ({m.size} cells)" for n, m in zip(names, members, strict=True) if m.size < min_cells]
    if small:
        msg = f"each batch needs at least {min_cells} cells; too small: {', '.join(small)}"
        raise ValueError(msg)
    return Batches(names=names, members=members)


def label_sort_key(value: object) -> tuple:
    """Sort key of a label (R's factor order): numbers first, in numeric order, then everything else as text."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _check_distinct_names(labels: list, names: list[str], batch_key: str) -> None:
    """Raise if two different labels print the same (``1`` and ``"1"``): their batches would be confused."""
    if len(set(names)) == len(names):
        return
    seen: dict[str, object] = {}
    for label, name in zip(labels, names, strict=True):
        if name in seen:
            first = seen[name]
            msg = (
                f"adata.obs[{batch_key!r}] holds different labels that read the same as text: {first!r} "
                f"({type(first).__name__}) and {label!r} ({type(label).__name__}); make the column one type "
                f"(e.g. adata.obs[{batch_key!r}] = adata.obs[{batch_key!r}].astype(str))"
            )
            raise ValueError(msg)
        seen[name] = label


def resolve_restrict(adata: AnnData, restrict: object, batches: Batches) -> np.ndarray | None:
    """The cells a correction is computed from (batchelor's ``restrict``), as a boolean mask; None for all.

    ``restrict`` is None, the name of a boolean ``.obs`` column, or a boolean mask over the cells. Every
    batch needs at least one such cell (its correction is computed from them; all its cells are then
    corrected).
    """
    if restrict is None:
        return None
    if isinstance(restrict, str):
        if restrict not in adata.obs.columns:
            available = ", ".join(str(c) for c in adata.obs.columns if adata.obs[c].dtype == bool) or "(none)"
            msg = f"restrict {restrict!r} is not a column of adata.obs (boolean columns available: {available})"
            raise ValueError(msg)
        column = adata.obs[restrict]
        if column.dtype != bool:
            msg = f"restrict column adata.obs[{restrict!r}] must be boolean, got dtype {column.dtype}"
            raise TypeError(msg)
        mask = column.to_numpy(dtype=bool)
    else:
        mask = np.asarray(restrict)
        if mask.dtype != bool:
            msg = f"restrict must be None, a boolean .obs column name or a boolean mask, got dtype {mask.dtype}"
            raise TypeError(msg)
        if mask.shape != (adata.n_obs,):
            msg = f"a boolean restrict mask must have one entry per cell ({adata.n_obs}), got shape {mask.shape}"
            raise ValueError(msg)
    empty = [name for name, rows in zip(batches.names, batches.members, strict=True) if not mask[rows].any()]
    if empty:
        msg = f"restrict selects no cell of batch(es) {', '.join(map(repr, empty))}; each batch needs at least one"
        raise ValueError(msg)
    return mask


def resolve_batch_weights(weights: object, batches: Batches) -> np.ndarray | None:
    """Each batch's weight in a multi-batch PCA (batchelor's ``weights``), in batch order; None for equal.

    ``weights`` is None, a dict batch name -> positive number (every batch), or nested lists of batch
    names or positions naming every batch once: a tree in which each node's children share its
    weight equally (``[["a", "b", "c"], [["d", "e"], "f"]]`` gives 1/6, 1/6, 1/6, 1/8, 1/8, 1/4).
    Only ratios matter.
    """
    if weights is None:
        return None
    names = batches.names
    if isinstance(weights, dict):
        keys = {str(key): value for key, value in weights.items()}
        unknown = sorted(set(keys) - set(names))
        missing = [name for name in names if name not in keys]
        if unknown or missing:
            what = f"unknown batches {unknown}" if unknown else f"no weight for {missing}"
            msg = f"weights must give every batch a weight: {what}"
            raise ValueError(msg)
        out = np.array([keys[name] for name in names], dtype=object)
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v) and v > 0 for v in out):
            msg = f"weights must be positive finite numbers, got {weights!r}"
            raise ValueError(msg)
        return out.astype(np.float64)
    if isinstance(weights, str) or not isinstance(weights, list | tuple):
        msg = f"weights must be None, a dict batch -> weight or nested lists of batch names, got {weights!r}"
        raise TypeError(msg)
    out = np.full(len(names), np.nan)
    lookup = {name: b for b, name in enumerate(names)}

    def share(node: object, weight: float) -> None:
        if isinstance(node, list | tuple):
            if not node:
                msg = "weights contains an empty list"
                raise ValueError(msg)
            for child in node:
                share(child, weight / len(node))
            return
        b = int(node) if isinstance(node, numbers.Integral) and not isinstance(node, bool) else lookup.get(str(node))
        if b is None or not 0 <= b < len(names):
            msg = f"weights names {node!r}, which is not a batch; batches: {', '.join(names)}"
            raise ValueError(msg)
        if not np.isnan(out[b]):
            msg = f"weights names batch {names[b]!r} more than once"
            raise ValueError(msg)
        out[b] = weight

    share(weights, 1.0)
    missing = [name for name, w in zip(names, out, strict=True) if np.isnan(w)]
    if missing:
        msg = f"weights must name every batch once; missing: {', '.join(missing)}"
        raise ValueError(msg)
    return out


def get_matrix(adata: AnnData, layer: str | None):
    """The expression matrix (``.X`` or a layer), checked to be numeric and finite."""
    if layer is None:
        mat, where = adata.X, "adata.X"
    else:
        if layer not in adata.layers:
            available = ", ".join(adata.layers.keys()) or "(none)"
            msg = f"layer {layer!r} not in adata.layers; available: {available}"
            raise ValueError(msg)
        mat, where = adata.layers[layer], f"adata.layers[{layer!r}]"
    if mat is None:
        msg = f"{where} is empty (None)"
        raise ValueError(msg)
    if not (sp.issparse(mat) or isinstance(mat, np.ndarray)):
        try:
            mat = np.asarray(mat)
        except Exception as err:  # noqa: BLE001
            msg = f"{where} must be a numpy array or scipy sparse matrix, got {type(mat).__name__}"
            raise TypeError(msg) from err
    if sp.issparse(mat) and mat.format not in ("csr", "csc"):
        mat = mat.tocsr()
    check_has_genes(mat.shape, where)
    dtype = mat.dtype
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        msg = f"{where} must hold real numbers, got dtype {dtype}"
        raise TypeError(msg)
    values = mat.data if sp.issparse(mat) else mat
    if np.issubdtype(dtype, np.floating) and not np.isfinite(values).all():
        bad = int(np.size(values) - np.isfinite(values).sum())
        msg = f"{where} contains {bad} NaN or infinite values; remove or impute them before correction"
        raise ValueError(msg)
    if np.issubdtype(dtype, np.integer) or _looks_like_counts(values):
        warnings.warn(
            f"{where} looks like raw integer counts; MNN correction expects log-normalised expression "
            "(e.g. sc.pp.normalize_total then sc.pp.log1p)",
            InputDataWarning,
            stacklevel=3,
        )
    return mat


def check_has_genes(shape: tuple[int, ...], where: str) -> None:
    """A ValueError unless the matrix has at least one gene (a correction of 0 genes has no distances)."""
    if len(shape) != 2 or shape[1] == 0:
        msg = f"{where} has no genes (shape {tuple(shape)}); there is nothing to correct"
        raise ValueError(msg)


def _looks_like_counts(values: np.ndarray) -> bool:
    """True for float data whose (sampled) values are all non-negative integers with a large maximum."""
    flat = np.ravel(values)
    if flat.size == 0:
        return False
    sample = flat[:: max(1, flat.size // 100_000)]
    return bool(sample.max() > 50 and np.all(sample >= 0) and np.all(sample == np.round(sample)))


def resolve_subset(adata: AnnData, subset) -> np.ndarray | None:
    """Column indices of the gene subset, or None for all genes.

    ``subset`` may be None, a boolean mask over ``var_names``, integer positions, a list of gene
    names, or the name of a boolean ``.var`` column (e.g. ``"highly_variable"``).
    """
    if subset is None:
        return None
    n_vars = adata.n_vars
    if isinstance(subset, str):
        if subset not in adata.var.columns:
            available = ", ".join(c for c in adata.var.columns if adata.var[c].dtype == bool) or "(none)"
            msg = (
                f"subset {subset!r} is not a column of adata.var (boolean columns available: {available}); "
                "pass a .var column name, a boolean mask or a list of gene names"
            )
            raise ValueError(msg)
        column = adata.var[subset]
        if column.dtype != bool:
            msg = f"subset column adata.var[{subset!r}] must be boolean, got dtype {column.dtype}"
            raise TypeError(msg)
        cols = np.flatnonzero(column.to_numpy())
    else:
        arr = np.asarray(subset)
        if arr.dtype == bool:
            if arr.shape != (n_vars,):
                msg = f"a boolean subset must have one entry per gene ({n_vars}), got shape {arr.shape}"
                raise ValueError(msg)
            cols = np.flatnonzero(arr)
        elif np.issubdtype(arr.dtype, np.integer):
            if arr.size and (arr.min() < 0 or arr.max() >= n_vars):
                msg = f"subset positions must lie in [0, {n_vars}); got {arr.min()}..{arr.max()}"
                raise ValueError(msg)
            cols = np.unique(arr)
        else:
            names = arr.astype(str)
            if not adata.var_names.is_unique:
                repeated = adata.var_names[adata.var_names.duplicated()].unique()
                shown = ", ".join(map(repr, repeated[:5])) + (" ..." if repeated.size > 5 else "")
                msg = (
                    f"subset is given by gene names but adata.var_names are not unique ({shown} appear more "
                    "than once); call adata.var_names_make_unique() or give the subset as a boolean mask or "
                    "positions"
                )
                raise ValueError(msg)
            positions = adata.var_names.get_indexer(names)
            missing = names[positions < 0]
            if missing.size:
                shown = ", ".join(missing[:10]) + (" ..." if missing.size > 10 else "")
                msg = f"subset has {missing.size} gene names not in adata.var_names: {shown}"
                raise ValueError(msg)
            cols = np.unique(positions)
    if cols.size == 0:
        msg = "subset selects no genes"
        raise ValueError(msg)
    return cols


def subset_l2_norms(mat, cols: np.ndarray | None) -> np.ndarray:
    """Per-cell l2 norm over the subset genes (all genes if ``cols`` is None), without densifying."""
    if cols is not None:
        mat = mat[:, cols]
    if sp.issparse(mat):
        sq = np.asarray(mat.multiply(mat).sum(axis=1), dtype=np.float64).ravel()
    else:
        dense = np.asarray(mat, dtype=np.float64)
        sq = np.einsum("ij,ij->i", dense, dense)
    return np.sqrt(sq)


def dense_columns(mat, cols: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """Dense float64 copy of the chosen columns, rows divided by ``scale`` (if given).

    Memory: the output itself (cells x chosen genes); a sparse input is densified only column-subset
    by column-subset, never as a whole matrix of all genes unless all genes are asked for.
    """
    sub = mat if cols is None else mat[:, cols]
    dense = sub.toarray() if sp.issparse(sub) else np.array(sub, dtype=np.float64, copy=True)
    dense = np.asarray(dense, dtype=np.float64)
    if scale is not None:
        dense /= scale[:, None]
    return dense


def check_norms(norms: np.ndarray) -> np.ndarray:
    """``norms`` if every cell's l2 norm is finite, else a ValueError naming the first cell that overflows."""
    finite = np.isfinite(norms)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        msg = (
            f"the l2 norm of the cell in row {row} overflows (its values are too large to square in float64, "
            "about 1e154 and above); rescale the data before correction"
        )
        raise ValueError(msg)
    return norms


def cosine_scale(norms: np.ndarray) -> np.ndarray:
    """The divisors of cosine normalisation: the l2 norms floored at 1e-8 (all-zero cells stay zero).

    Raises a ValueError if a norm overflowed (:func:`check_norms`).
    """
    return np.maximum(check_norms(norms), COSINE_NORM_FLOOR)
