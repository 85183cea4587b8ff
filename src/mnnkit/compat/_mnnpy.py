"""``mnn_correct``: mnnpy's interface (``scanpy.external.pp.mnn_correct``) on mnnkit's classic correction."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from mnnkit._config import COSINE_NORM_FLOOR
from mnnkit._threads import resolve_n_jobs, thread_limits
from mnnkit._validation import check_adata, check_bool, check_choice, check_int, check_k, check_real, is_int
from mnnkit._warnings import ParameterWarning

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["mnn_correct"]

#: Keyword arguments mnnpy forwarded to its Lanczos SVD (``irlb``): accepted and ignored, because
#: mnnkit's SVDs are exact (they only ever shaped the approximation error of ``svd_mode="irlb"``).
IRLB_KEYWORDS = frozenset({"tol", "maxit", "center", "scale", "L"})

#: mnnkit.correct keywords a migrating user might pass here by mistake, with the mnnpy spelling.
_MNNKIT_SPELLINGS = {
    "merge_order": "mnn_order (batch positions)",
    "subset": "var_subset (gene names)",
    "correct_all": "nothing: mnn_correct always corrects every gene",
    "k1": "k",
    "k2": "k",
}

#: Key of the temporary layer and ``.uns`` entry on the internal AnnData the correction runs on.
_KEY = "mnn"


def mnn_correct(
    *datas: AnnData | np.ndarray | sparse.spmatrix | sparse.sparray,
    var_index: Collection[str] | None = None,
    var_subset: Collection[str] | None = None,
    batch_key: str = "batch",
    index_unique: str | None = "-",
    batch_categories: Collection[Any] | None = None,
    k: int = 20,
    sigma: float = 1.0,
    cos_norm_in: bool = True,
    cos_norm_out: bool = True,
    svd_dim: int | None = None,
    var_adj: bool = True,
    compute_angle: bool = False,
    mnn_order: Sequence[int] | None = None,
    svd_mode: Literal["svd", "rsvd", "irlb"] = "rsvd",
    do_concatenate: bool = True,
    save_raw: bool = False,
    n_jobs: int | None = None,
    **kwargs: Any,
) -> tuple[Any, list[pd.DataFrame | int], list[list[tuple[float | None, int]] | int] | None]:
    """Correct batch effects with mutual nearest neighbours: a drop-in for ``sc.external.pp.mnn_correct``.

    Takes the arguments of :func:`scanpy.external.pp.mnn_correct` (which wraps mnnpy) and returns the same
    three things, computed by mnnkit's classic correction (:func:`mnnkit.correct`, batchelor's
    ``mnnCorrect``). Replace ``sc.external.pp.mnn_correct`` by ``mnnkit.compat.mnn_correct`` and the
    rest of the code keeps working. The defaults are mnnpy's, including ``sigma=1.0`` (batchelor and
    :func:`mnnkit.correct` default to 0.1), so a migrated script corrects with the same parameters as
    before. Where mnnkit's numbers differ from mnnpy's, and why, is in the docs' migration page.

    Parameters
    ----------
    *datas
        Two or more batches: AnnData objects with the same ``var_names`` in the same order (``.X`` is
        corrected: dense, CSR or CSC), or matrices (``numpy.ndarray`` or ``scipy.sparse``, cells x genes)
        with the same number of columns. Log-normalised expression, as for mnnpy. Never modified.
    var_index
        Gene names of the columns, for matrix input (needed with ``var_subset``). Ignored, with a
        warning, for AnnData input (their ``var_names`` are used), as in mnnpy.
    var_subset
        Genes (names) used to find the neighbours and for the cosine norms, typically the highly variable
        genes; every gene is corrected. ``None``: all genes.
    batch_key
        AnnData input, concatenated: ``.obs`` column of the output that names each cell's batch.
    index_unique
        AnnData input, concatenated: separator between a cell's name and its batch category in the
        output's ``obs_names`` (``None`` keeps the names as they are).
    batch_categories
        AnnData input, concatenated: the batch names, one per input (default ``"0"``, ``"1"``, ...).
    k
        Number of nearest neighbours sought on each side for the mutual pairs.
    sigma
        Width of the Gaussian kernel ``exp(-d^2 / sigma)`` that smooths the correction vectors. mnnpy's
        default 1.0 is kept; batchelor's (and :func:`mnnkit.correct`'s) is 0.1.
    cos_norm_in
        Cosine-normalise the data used for distances.
    cos_norm_out
        Cosine-normalise the data that is corrected and returned.
    svd_dim
        Number of biological axes (per side, from the MNN cells) removed from the correction vectors;
        ``None`` or 0: none.
    var_adj
        Variance adjustment of the correction vectors.
    compute_angle
        Also return, for every corrected cell, the angle between its correction vector and the first two
        principal axes of the reference it was merged onto.
    mnn_order
        Order in which the batches are merged, as input positions (a permutation of ``0 .. n-1``); the
        first is the reference. ``None``: input order.
    svd_mode
        mnnpy's SVD algorithm for ``svd_dim`` (``"svd"``, ``"rsvd"`` or ``"irlb"``). Accepted for
        compatibility; mnnkit's SVDs there are exact whatever the value.
    do_concatenate
        Return one concatenated AnnData (or matrix) rather than one per input.
    save_raw
        AnnData input: keep the uncorrected ``.X`` (and ``.var``) in ``.raw`` of the output(s).
    n_jobs
        Threads for numba and BLAS during the call. ``None``: ``scanpy.settings.n_jobs``; negative
        values count back from the number of cores (-1: all). The results do not depend on it.
    **kwargs
        mnnpy passed these to its Lanczos SVD (``tol``, ``maxit``, ``center``, ``scale``, ``L``); they are
        accepted and ignored. Any other keyword raises a :class:`TypeError` naming it.

    Returns
    -------
    datas
        The corrected data, every gene, cells in input order. AnnData input: with ``do_concatenate``
        one AnnData, the inputs concatenated as mnnpy did (``.obs`` columns outer-joined, ``batch_key``
        holding ``batch_categories``, ``obs_names`` made unique with ``index_unique``; ``.var``
        columns kept where all inputs agree), corrected values in ``.X`` and, with ``save_raw``, the
        input in ``.raw``; otherwise a list of corrected copies of the inputs. Matrix input: one dense
        ``numpy.ndarray`` with ``do_concatenate``, else a list of them. Values are in the input's float
        dtype (float64 for integers); mnnpy returned float32.
    mnn_list
        One entry per input, in input order: for the reference batch (the first merged) the integer
        ``0``, as in mnnpy; for every other batch a :class:`pandas.DataFrame` of the MNN pairs found
        when it was merged, with mnnpy's columns ``"new cell"`` (position in that batch),
        ``"ref cell"`` (position in the reference of that step: the batches merged before it,
        concatenated in merge order) and ``"original batch"`` (input position of the reference cell's
        batch); rows sorted by new cell, then ref cell.
    angle_list
        ``None`` unless ``compute_angle``. Then one entry per input, in input order: ``0`` for the
        reference batch, and for every other batch a list with one ``(angle, shared)`` tuple per cell:
        the angle in degrees (0 to 90) between the cell's correction vector (in the space of the
        distances) and the plane of the reference's two leading principal axes, and ``shared`` 1 if the
        cosine of that angle exceeds 0.05, else 0 (mnnpy's count of shared dimensions). A cell with a
        zero correction gets ``(None, 0)``.

    Raises
    ------
    TypeError
        Unknown keyword arguments (all named), inputs neither all AnnData nor all matrices, or values of
        the wrong type.
    ValueError
        Bad values: inputs with different genes, ``var_subset`` names not among the genes,
        ``mnn_order`` not a permutation, ``batch_categories`` of the wrong length, and so on.

    Notes
    -----
    The correction is :func:`mnnkit.correct` with ``subset=var_subset, correct_all=True, k=k,
    sigma=sigma, cos_norm_in=cos_norm_in, cos_norm_out=cos_norm_out, svd_dim=svd_dim or 0,
    var_adj=var_adj`` and ``merge_order`` from ``mnn_order``, so the corrected values are batchelor's
    ``mnnCorrect`` answers for those parameters. They differ from what mnnpy returned where mnnpy
    departs from batchelor: mnnpy scales all correction vectors of a step by one factor (the largest
    var.adj scale) rather than each by its own, takes the output's cosine norms from all genes rather
    than from ``var_subset``, works in float32 and finds neighbours with a k-d tree (ties broken
    differently). With ``compute_angle``, mnnpy measured the angle before removing ``svd_dim``
    biological axes, mnnkit after (the direction the correction is applied in); ``var_adj`` only scales
    the vectors, so it does not change the angle. Unlike mnnpy, the inputs are never modified
    (``do_concatenate=False`` returns new objects) and nothing is printed.

    Examples
    --------
    >>> import mnnkit, scanpy as sc
    >>> adata = mnnkit.datasets.pancreas()
    >>> sc.pp.normalize_total(adata)
    >>> sc.pp.log1p(adata)
    >>> sc.pp.highly_variable_genes(adata, n_top_genes=500)
    >>> batches = [adata[adata.obs["batch"] == b].copy() for b in adata.obs["batch"].cat.categories]
    >>> hvg = adata.var_names[adata.var["highly_variable"]]
    >>> corrected, pairs, angles = mnnkit.compat.mnn_correct(*batches, var_subset=hvg, batch_key="batch")
    """
    _check_kwargs(kwargs)
    k = check_k("k", k)
    sigma = check_real(sigma, "sigma", positive=True)
    cos_norm_in = check_bool(cos_norm_in, "cos_norm_in")
    cos_norm_out = check_bool(cos_norm_out, "cos_norm_out")
    var_adj = check_bool(var_adj, "var_adj")
    compute_angle = check_bool(compute_angle, "compute_angle")
    do_concatenate = check_bool(do_concatenate, "do_concatenate")
    save_raw = check_bool(save_raw, "save_raw")
    check_choice(svd_mode, "svd_mode", ("svd", "rsvd", "irlb"))
    svd_dim = 0 if svd_dim is None else check_int(svd_dim, "svd_dim", minimum=0)
    threads = resolve_n_jobs(n_jobs)
    if not isinstance(batch_key, str) or not batch_key:
        msg = f"batch_key must be a non-empty string, got {batch_key!r}"
        raise TypeError(msg)
    if index_unique is not None and not isinstance(index_unique, str):
        msg = f"index_unique must be a string or None, got {index_unique!r}"
        raise TypeError(msg)

    if len(datas) < 2:
        # what scanpy's wrapper returns for fewer than two inputs; the warning says nothing was done
        warnings.warn(
            f"mnn_correct needs at least two batches, got {len(datas)}; the input is returned uncorrected",
            ParameterWarning,
            stacklevel=2,
        )
        return datas, [], []

    n_batches = len(datas)
    order = _check_mnn_order(mnn_order, n_batches)
    is_anndata = _input_kind(datas)
    if is_anndata:
        genes = _check_anndatas(datas)
        if var_index is not None:
            warnings.warn(
                "var_index is ignored for AnnData inputs (their var_names are used), as in mnnpy",
                ParameterWarning,
                stacklevel=2,
            )
        matrices = [a.X for a in datas]
    else:
        genes = _check_matrices(datas, var_index, var_subset)
        matrices = list(datas)
    subset = _check_var_subset(var_subset, genes)
    keys = _batch_keys(batch_categories, n_batches) if is_anndata and do_concatenate else None

    from anndata import AnnData

    combined = _concatenate(datas, batch_key, keys, index_unique) if keys is not None else None
    stacked = combined.X if combined is not None else _stack(matrices)
    sizes = np.array([m.shape[0] for m in matrices])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    labels = [str(i) for i in range(n_batches)]  # internal batch names: input positions
    work = AnnData(
        X=stacked,
        obs=pd.DataFrame(
            {"batch": pd.Categorical(np.repeat(labels, sizes), categories=labels)},
            index=np.arange(stacked.shape[0]).astype(str),
        ),
        var=pd.DataFrame(index=pd.Index(genes, dtype=object).astype(str)),
    )
    options = {
        "subset": subset,
        "correct_all": True,
        "k": k,
        "sigma": sigma,
        "cos_norm_in": cos_norm_in,
        "var_adj": var_adj,
        "svd_dim": svd_dim,
        "merge_order": [labels[i] for i in order],
    }

    import mnnkit

    with thread_limits(numba=threads, blas=threads):
        mnnkit.correct(work, "batch", cos_norm_out=cos_norm_out, key_added=_KEY, **options)
        corrected = work.layers[_KEY]
        mnn_list = _pair_tables(work.uns[_KEY]["steps"], order, offsets)
        angle_list = None
        if compute_angle:
            if cos_norm_out == cos_norm_in:
                in_space = corrected  # the subset columns of the output are the distance space then
            else:
                # a second run whose output space is the distance space (same pairs, same weights)
                in_work = AnnData(X=stacked, obs=work.obs, var=work.var)
                mnnkit.correct(in_work, "batch", cos_norm_out=cos_norm_in, key_added=_KEY, **options)
                in_space = in_work.layers[_KEY]
            angle_list = _angles(stacked, in_space, genes, subset, cos_norm_in, order, offsets)

    if combined is not None:
        if save_raw:
            combined.raw = combined
        combined.X = corrected
        return combined, mnn_list, angle_list
    parts = [corrected[offsets[i] : offsets[i + 1]] for i in range(n_batches)]
    if not is_anndata:
        return (corrected if do_concatenate else parts), mnn_list, angle_list
    outputs = []
    for adata, part in zip(datas, parts, strict=True):
        out = adata.copy()
        if save_raw:
            out.raw = out
        out.X = part
        outputs.append(out)
    return outputs, mnn_list, angle_list


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    unknown = sorted(set(kwargs) - IRLB_KEYWORDS)
    if not unknown:
        return
    names = ", ".join(repr(name) for name in unknown)
    hints = [f"{name!r}: use {_MNNKIT_SPELLINGS[name]}" for name in unknown if name in _MNNKIT_SPELLINGS]
    msg = f"mnn_correct() got unexpected keyword argument(s) {names}"
    if hints:
        msg += " (" + "; ".join(hints) + ")"
    msg += "; for mnnkit's own keywords call mnnkit.correct"
    raise TypeError(msg)


def _check_mnn_order(mnn_order: object, n_batches: int) -> list[int]:
    if mnn_order is None:
        return list(range(n_batches))
    if isinstance(mnn_order, str) or not isinstance(mnn_order, Sequence | np.ndarray):
        msg = f"mnn_order must be None or a sequence of batch positions, got {mnn_order!r}"
        raise TypeError(msg)
    order = list(mnn_order)
    if not all(is_int(i) for i in order) or sorted(int(i) for i in order) != list(range(n_batches)):
        msg = f"mnn_order must be a permutation of 0 .. {n_batches - 1} (one position per input), got {order!r}"
        raise ValueError(msg)
    return [int(i) for i in order]


def _input_kind(datas: tuple[Any, ...]) -> bool:
    """True for AnnData inputs, False for matrices; a TypeError for anything else or a mix."""
    from anndata import AnnData

    kinds = []
    for i, data in enumerate(datas):
        if isinstance(data, AnnData):
            kinds.append(True)
        elif isinstance(data, np.ndarray) or sparse.issparse(data):
            kinds.append(False)
        else:
            msg = f"datas[{i}] must be an AnnData, a numpy.ndarray or a scipy.sparse matrix, got {type(data).__name__}"
            raise TypeError(msg)
    if len(set(kinds)) > 1:
        msg = "datas must be all AnnData objects or all matrices, not a mix"
        raise TypeError(msg)
    return kinds[0]


def _check_anndatas(datas: tuple[AnnData, ...]) -> np.ndarray:
    for i, adata in enumerate(datas):
        check_adata(adata, "mnn_correct")
        if adata.X is None:
            msg = f"datas[{i}] has no .X to correct"
            raise ValueError(msg)
    genes = datas[0].var_names
    for i, adata in enumerate(datas[1:], start=1):
        if not adata.var_names.equals(genes):
            msg = (
                f"datas[{i}] has other var_names than datas[0] ({adata.n_vars} against {len(genes)} genes, "
                "or another order); subset them to the same genes first"
            )
            raise ValueError(msg)
    return np.asarray(genes)


def _check_matrices(datas: tuple[Any, ...], var_index: object, var_subset: object) -> np.ndarray:
    n_genes = None
    for i, data in enumerate(datas):
        if data.ndim != 2:
            msg = f"datas[{i}] must be 2-D (cells x genes), got shape {data.shape}"
            raise ValueError(msg)
        if n_genes is None:
            n_genes = data.shape[1]
        elif data.shape[1] != n_genes:
            msg = f"datas[{i}] has {data.shape[1]} columns, datas[0] has {n_genes}: the matrices must share their genes"
            raise ValueError(msg)
    if var_index is None:
        if var_subset is not None:
            msg = "var_subset needs var_index (the gene names of the columns) for matrix inputs"
            raise ValueError(msg)
        return np.arange(n_genes).astype(str)
    if isinstance(var_index, str):
        msg = f"var_index must be a collection of gene names, got the string {var_index!r}"
        raise TypeError(msg)
    genes = np.asarray(list(var_index), dtype=object)
    if genes.shape[0] != n_genes:
        msg = f"var_index has {genes.shape[0]} names, the matrices have {n_genes} columns"
        raise ValueError(msg)
    if len(pd.unique(genes)) != genes.shape[0]:
        msg = "var_index has duplicate names"
        raise ValueError(msg)
    return genes


def _check_var_subset(var_subset: object, genes: np.ndarray) -> list[str] | None:
    if var_subset is None:
        return None
    if isinstance(var_subset, str) or not isinstance(var_subset, Collection):
        msg = f"var_subset must be None or a collection of gene names, got {var_subset!r}"
        raise TypeError(msg)
    names = [str(g) for g in var_subset]
    if not names:
        msg = "var_subset is empty: give the genes to use, or None for all"
        raise ValueError(msg)
    known = {str(g) for g in genes}
    missing = [g for g in names if g not in known]
    if missing:
        msg = f"var_subset has {len(missing)} names that are not genes of the input, e.g. {missing[:5]}"
        raise ValueError(msg)
    if set(names) == known:
        return None  # every gene: the same as no subset, as in mnnpy
    return names


def _batch_keys(batch_categories: object, n_batches: int) -> list[str]:
    if batch_categories is None:
        return [str(i) for i in range(n_batches)]
    if isinstance(batch_categories, str) or not isinstance(batch_categories, Collection):
        msg = f"batch_categories must be None or one name per input, got {batch_categories!r}"
        raise TypeError(msg)
    keys = list(batch_categories)
    if len(keys) != n_batches:
        msg = f"batch_categories has {len(keys)} names for {n_batches} inputs"
        raise ValueError(msg)
    if len(set(map(str, keys))) != n_batches:
        msg = f"batch_categories must be distinct, got {keys!r}"
        raise ValueError(msg)
    return keys


# ---------------------------------------------------------------------------------------------
# data layout
# ---------------------------------------------------------------------------------------------


def _concatenate(datas: tuple[AnnData, ...], batch_key: str, keys: list[Any], index_unique: str | None) -> AnnData:
    """The inputs concatenated as mnnpy did with ``AnnData.concatenate`` (deprecated in anndata)."""
    import anndata

    out = anndata.concat(
        list(datas), axis=0, join="inner", merge="same", label=batch_key, keys=keys, index_unique=index_unique
    )
    # AnnData.concatenate outer-joined the .obs columns (anndata.concat inner-joins them with the genes)
    with warnings.catch_warnings():
        # these gene-less helpers get a generated var index, which older anndata warns about
        warnings.simplefilter("ignore", anndata.ImplicitModificationWarning)
        obs_only = [anndata.AnnData(obs=a.obs) for a in datas]
        obs = anndata.concat(obs_only, axis=0, join="outer", label=batch_key, keys=keys, index_unique=index_unique).obs
    out.obs = obs
    return out


def _stack(matrices: list[Any]) -> Any:
    if any(sparse.issparse(m) for m in matrices):
        return sparse.vstack([sparse.csr_matrix(m) for m in matrices], format="csr")
    return np.concatenate([np.asarray(m) for m in matrices], axis=0)


def _pair_tables(steps: dict[str, Any], order: list[int], offsets: np.ndarray) -> list[pd.DataFrame | int]:
    """The per-batch pair tables of mnnpy from the global cell indices of mnnkit's ``.uns`` steps."""
    n_batches = len(order)
    n_cells = int(offsets[-1])
    batch_of_cell = np.repeat(np.arange(n_batches), np.diff(offsets))
    tables: list[pd.DataFrame | int] = [0] * n_batches
    ref_position = np.full(n_cells, -1, dtype=np.int64)
    first = order[0]
    ref_position[offsets[first] : offsets[first + 1]] = np.arange(offsets[first + 1] - offsets[first])
    n_ref = int(offsets[first + 1] - offsets[first])
    for step, target in enumerate(order[1:], start=1):
        info = steps[f"step_{step}"]
        if [str(b) for b in np.atleast_1d(info["right"])] != [str(target)]:
            msg = f"mnnkit.correct merged {info['right']!r} at step {step}, expected batch {target}"
            raise RuntimeError(msg)
        pairs = np.asarray(info["pairs"], dtype=np.int64).reshape(-1, 2)
        new = pairs[:, 1] - offsets[target]
        ref = ref_position[pairs[:, 0]]
        rows = np.lexsort((ref, new))
        tables[target] = pd.DataFrame(
            {
                "new cell": new[rows],
                "ref cell": ref[rows],
                "original batch": batch_of_cell[pairs[rows, 0]],
            }
        )
        size = int(offsets[target + 1] - offsets[target])
        ref_position[offsets[target] : offsets[target + 1]] = n_ref + np.arange(size)
        n_ref += size
    return tables


# ---------------------------------------------------------------------------------------------
# angles
# ---------------------------------------------------------------------------------------------


def _angles(
    stacked: Any,
    in_space: np.ndarray,
    genes: np.ndarray,
    subset: list[str] | None,
    cos_norm_in: bool,
    order: list[int],
    offsets: np.ndarray,
) -> list[list[tuple[float | None, int]] | int]:
    """Angle of each correction vector to the reference's two leading principal axes (distance space)."""
    from mnnkit.linalg import randomized_svd

    if subset is None:
        cols = np.arange(len(genes))
    else:
        position = {str(g): i for i, g in enumerate(genes)}
        cols = np.sort(np.array([position[g] for g in subset]))
    before = stacked[:, cols]
    before = before.toarray() if sparse.issparse(before) else np.asarray(before)
    before = before.astype(np.float64)
    if cos_norm_in:
        before = before / np.maximum(np.sqrt((before**2).sum(axis=1)), COSINE_NORM_FLOOR)[:, None]
    after = np.asarray(in_space[:, cols], dtype=np.float64)

    angles: list[list[tuple[float | None, int]] | int] = [0] * len(order)
    for step, target in enumerate(order[1:], start=1):
        ref = np.concatenate([after[offsets[b] : offsets[b + 1]] for b in order[:step]])
        n_axes = min(2, ref.shape[0], ref.shape[1])
        axes = randomized_svd(ref, n_axes, center="mean", rng=0).Vt  # (n_axes, genes), orthonormal rows
        rows = slice(offsets[target], offsets[target + 1])
        correction = after[rows] - before[rows]
        length = np.sqrt((correction**2).sum(axis=1))
        unit = correction / np.where(length > 0, length, 1.0)[:, None]
        inside = unit @ axes.T
        cos = np.sqrt((inside**2).sum(axis=1))
        sin = np.sqrt(((unit - inside @ axes) ** 2).sum(axis=1))
        degrees = np.degrees(np.arctan2(sin, cos))  # stable at both ends, unlike arccos alone
        angles[target] = [
            (float(d), int(c > 0.05)) if n > 0 else (None, 0) for d, c, n in zip(degrees, cos, length, strict=True)
        ]
    return angles
