"""Per-gene maximum-likelihood fits of count models on an AnnData count matrix."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from mnnkit._config import COUNT_CHECK_ELEMENTS
from mnnkit._validation import check_bool, check_choice, check_int, check_key_added
from mnnkit._warnings import ConvergenceWarning
from mnnkit.stats import _kernels as K
from mnnkit.stats._lrt import lrt_pvalue
from mnnkit.stats._validate import check_tol

__all__ = ["fit_genes"]

logger = logging.getLogger("mnnkit")

_MODELS = {"poisson": K.POISSON, "nb": K.NB, "zip": K.ZIP, "zinb": K.ZINB}
_KERNEL_DTYPES = (np.float32, np.float64, np.int32, np.int64)
_STATUS = ("ok", "all_zero", "no_overdispersion", "no_zero_inflation", "no_overdispersion_no_zero_inflation")


def _status(flags: np.ndarray) -> pd.Categorical:
    codes = np.zeros(flags.shape, dtype=np.int8)
    alpha = (flags & K.ALPHA_AT_ZERO) != 0
    pi = (flags & K.PI_AT_ZERO) != 0
    codes[alpha & ~pi] = 2
    codes[pi & ~alpha] = 3
    codes[alpha & pi] = 4
    codes[(flags & K.ALL_ZERO) != 0] = 1
    return pd.Categorical.from_codes(codes, categories=list(_STATUS))


def _get_matrix(adata: AnnData, layer: str | None) -> tuple[Any, str]:
    if layer is None:
        if adata.X is None:
            msg = "adata.X is None; pass layer= to name a layer holding the counts"
            raise ValueError(msg)
        return adata.X, "adata.X"
    if not isinstance(layer, str):
        msg = f"layer must be a string or None, got {type(layer).__name__}"
        raise TypeError(msg)
    if layer not in adata.layers:
        msg = (
            f"layer={layer!r} not found in adata.layers; available layers: {sorted(adata.layers.keys())}. "
            "Use layer=None for adata.X"
        )
        raise ValueError(msg)
    return adata.layers[layer], f"adata.layers[{layer!r}]"


def _to_csc(x: Any, where: str) -> sparse.csc_array | sparse.csc_matrix:
    # column access without densifying; the caller's matrix is never modified
    if sparse.issparse(x):
        if x.format != "csc":
            x = x.tocsc()  # new object, O(nnz)
            if not x.has_canonical_format:
                x.sum_duplicates()
        elif not x.has_canonical_format:
            x = x.copy()
            x.sum_duplicates()
        return x
    if isinstance(x, np.ndarray | np.matrix):
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            msg = f"{where} must be numeric, got dtype {arr.dtype}"
            raise TypeError(msg)
        return sparse.csc_array(arr)
    msg = (
        f"{where} must be a NumPy array or a SciPy sparse matrix, got {type(x).__name__}. "
        "Load backed or lazy data into memory first"
    )
    raise TypeError(msg)


def _check_counts(data: np.ndarray, indptr: np.ndarray, var_names: pd.Index, where: str) -> None:
    if data.dtype.kind not in "biuf":
        msg = f"{where} must be numeric, got dtype {data.dtype}"
        raise TypeError(msg)
    if data.dtype.kind in "bu":
        return
    checks = [("a negative count", lambda b: b < 0)]
    if data.dtype.kind == "f":
        checks = [
            ("a NaN or infinite value", lambda b: ~np.isfinite(b)),
            *checks,
            ("a non-integer count", lambda b: b != np.floor(b)),
        ]
    for what, test in checks:
        for start in range(0, data.size, COUNT_CHECK_ELEMENTS):
            block = data[start : start + COUNT_CHECK_ELEMENTS]
            bad = test(block)
            if bad.any():
                pos = start + int(np.flatnonzero(bad)[0])
                col = int(np.searchsorted(indptr, pos, side="right")) - 1
                msg = (
                    f"{where} contains {what} ({data[pos]!r}) in gene {var_names[col]!r} (column {col}). "
                    "fit_genes needs raw counts: finite, non-negative integers"
                )
                raise ValueError(msg)


def fit_genes(
    adata: AnnData,
    *,
    distribution: Literal["poisson", "nb", "zip", "zinb"] = "nb",
    layer: str | None = "counts",
    key_added: str | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
    copy: bool = False,
) -> AnnData | None:
    """Fit a count distribution to every gene by maximum likelihood and store the fits in ``.var``.

    Each gene (column) is fitted independently, without size factors, to its counts over all
    cells. The negative binomial is NB2: mean ``mu`` and dispersion ``alpha >= 0`` with
    ``Var = mu + alpha mu^2`` (``alpha = 1/theta``; ``alpha = 0`` is Poisson, the boundary of the
    parameter space). Only the nonzero entries are read: the log-likelihood splits into a part
    that depends on the number of zeros only and a sum over the gene's distinct nonzero counts,
    so each Newton step costs ``O(distinct counts)`` (see :func:`~mnnkit.stats.fit_nb`,
    :func:`~mnnkit.stats.fit_zinb` for the algorithms; results are identical to those functions
    applied to one column).

    Parameters
    ----------
    adata
        Annotated data matrix, cells x genes, holding raw counts.
    distribution
        ``"poisson"``, ``"nb"`` (negative binomial), ``"zip"`` (zero-inflated Poisson) or
        ``"zinb"`` (zero-inflated NB).
    layer
        Layer holding the counts; ``None`` uses ``adata.X``. Dense ``numpy.ndarray`` or SciPy
        sparse (CSR, CSC or any format with ``tocsc``) of any integer or float dtype holding
        integer values.
    key_added
        Prefix of the ``.var`` columns; defaults to ``distribution``.
    tol
        Convergence tolerance on the relative parameter change.
    max_iter
        Maximum Newton iterations (NB dispersion) or EM updates (zero-inflated models) per gene.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    AnnData or None
        ``None`` (``adata`` modified in place), or a modified copy if ``copy=True``. Columns added
        to ``.var`` (prefix ``{key_added}_``, all float64 unless noted):

        ``mean``, ``mean_se``
            MLE of the mean of the count component and its standard error.
        ``dispersion``, ``dispersion_se`` (NB, ZINB)
            MLE of ``alpha`` and its standard error.
        ``zero_inflation``, ``zero_inflation_se`` (ZIP, ZINB)
            MLE of the zero-inflation probability ``pi`` and its standard error.
        ``loglik``
            Maximised log-likelihood (with the ``log x!`` terms).
        ``overdispersion_pval`` (NB)
            Likelihood-ratio test of Poisson (``alpha = 0``) against NB, using the boundary null
            ``0.5 chi2(0) + 0.5 chi2(1)`` (see :func:`~mnnkit.stats.likelihood_ratio_test`).
        ``zero_inflation_pval`` (ZIP, ZINB)
            Same for ``pi = 0`` (Poisson against ZIP, NB against ZINB).
        ``converged`` (bool)
            Whether the iterations met ``tol``.
        ``status`` (categorical)
            ``"ok"``: all parameters interior, standard errors from the observed Fisher
            information. ``"all_zero"``: the gene has no nonzero count; ``mean`` is 0, the other
            parameters and all standard errors are NaN (not identifiable / no Wald theory at
            the boundary), ``loglik`` is 0 and the p-value is 1. ``"no_overdispersion"``: the
            sample variance does not exceed the mean, so the MLE is ``alpha = 0`` exactly (the
            Poisson fit); ``dispersion_se`` is NaN (boundary), the other SEs are the Poisson ones,
            ``overdispersion_pval`` is 1. ``"no_zero_inflation"``: the zeros are not in excess of
            the count model, so ``pi = 0`` exactly; ``zero_inflation_se`` is NaN and
            ``zero_inflation_pval`` 1. ``"no_overdispersion_no_zero_inflation"``: both.

        ``adata.uns["fit_genes"][key_added]`` records the settings.

    Raises
    ------
    TypeError
        If ``adata`` is not an AnnData, or the matrix is neither a NumPy array nor SciPy sparse.
    ValueError
        For an unknown ``distribution``, a missing ``layer`` (the available ones are listed),
        invalid ``tol``/``max_iter``, or counts that are NaN/Inf, negative or non-integer (the
        offending gene is named). All checks run before any fitting.

    Warns
    -----
    ConvergenceWarning
        If some genes did not converge within ``max_iter`` (their ``converged`` is False).

    Notes
    -----
    Memory: CSC input is used as is; CSR and other sparse formats are converted to CSC (one
    extra copy of the nonzeros, ``O(nnz)``); dense input is converted to CSC (``O(nnz)`` extra).
    The matrix is never densified. Working memory is ``O(max nnz per gene)`` plus ``O(n_genes)``
    outputs; the validation pass uses bounded blocks. Deterministic: the same input gives
    bit-identical output.
    """
    if not isinstance(adata, AnnData):
        msg = f"adata must be an AnnData object, got {type(adata).__name__}"
        raise TypeError(msg)
    check_choice(distribution, "distribution", sorted(_MODELS))
    key_added = distribution if key_added is None else check_key_added(key_added)
    tol = check_tol(tol)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    copy = check_bool(copy, "copy")
    matrix, where = _get_matrix(adata, layer)
    if adata.n_obs == 0:
        msg = "adata has no observations (cells)"
        raise ValueError(msg)
    csc = _to_csc(matrix, where)
    indptr = np.asarray(csc.indptr, dtype=np.int64)
    data = csc.data
    _check_counts(data, indptr, adata.var_names, where)
    if data.dtype.type not in _KERNEL_DTYPES:
        data = data.astype(np.float64)

    model = _MODELS[distribution]
    logger.info("fit_genes: fitting %s to %d genes x %d cells (%d nonzeros)", distribution, *csc.shape[::-1], data.size)
    params, se, loglik, loglik_null, _, converged, flags = K.fit_csc(indptr, data, csc.shape[0], model, tol, max_iter)

    if copy:
        adata = adata.copy()
    cols: dict[str, Any] = {f"{key_added}_mean": params[:, 0], f"{key_added}_mean_se": se[:, 0]}
    if model in (K.NB, K.ZINB):
        cols[f"{key_added}_dispersion"] = params[:, 1]
        cols[f"{key_added}_dispersion_se"] = se[:, 1]
    if model in (K.ZIP, K.ZINB):
        cols[f"{key_added}_zero_inflation"] = params[:, 2]
        cols[f"{key_added}_zero_inflation_se"] = se[:, 2]
    cols[f"{key_added}_loglik"] = loglik
    if model != K.POISSON:
        stat = np.maximum(2.0 * (loglik - loglik_null), 0.0)
        name = "overdispersion_pval" if model == K.NB else "zero_inflation_pval"
        cols[f"{key_added}_{name}"] = lrt_pvalue(stat, 1, True)
    cols[f"{key_added}_converged"] = converged
    cols[f"{key_added}_status"] = _status(flags)
    for col, values in cols.items():
        adata.var[col] = values

    n_zero = int(np.count_nonzero(flags & K.ALL_ZERO))
    n_alpha = int(np.count_nonzero(flags & K.ALPHA_AT_ZERO))
    n_pi = int(np.count_nonzero(flags & K.PI_AT_ZERO))
    logger.info(
        "fit_genes: %d all-zero genes, %d with alpha = 0, %d with pi = 0 (see .var[%r])",
        n_zero,
        n_alpha,
        n_pi,
        f"{key_added}_status",
    )
    n_bad = int(np.count_nonzero(~converged))
    if n_bad:
        warnings.warn(
            f"fit_genes: {n_bad} gene(s) did not converge within max_iter={max_iter}; "
            f"see .var[{key_added + '_converged'!r}].",
            ConvergenceWarning,
            stacklevel=2,
        )
    settings = {"distribution": distribution, "source": where, "tol": tol, "max_iter": max_iter}
    adata.uns.setdefault("fit_genes", {})[key_added] = settings
    return adata if copy else None
