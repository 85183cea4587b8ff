"""Principal component analysis of an AnnData object (scanpy-compatible outputs)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from mnnkit._random import RngLike
from mnnkit._threads import job_threads
from mnnkit._validation import check_int, check_key, check_key_added
from mnnkit.linalg._stats import mean_var
from mnnkit.linalg._svd import _exact, _prepare, _right_singular, blas_single_thread_if_sparse

__all__ = ["pca"]

logger = logging.getLogger("mnnkit")


def _check_adata(adata: Any) -> None:
    if not isinstance(adata, AnnData):
        msg = f"adata must be an AnnData object, got {type(adata).__name__}"
        raise TypeError(msg)


def _get_matrix(adata: AnnData, layer: str | None) -> Any:
    if layer is None:
        if adata.X is None:
            msg = "adata.X is None; pass layer= naming one of the layers: " + (
                ", ".join(map(repr, adata.layers.keys())) or "(no layers)"
            )
            raise ValueError(msg)
        return adata.X
    return adata.layers[check_key(adata, layer, "layer", "layers")]


def _resolve_subset(adata: AnnData, subset: Any) -> np.ndarray | None:
    """Boolean gene mask from ``None``, a boolean ``.var`` column name, or a boolean array."""
    if subset is None:
        return None
    if isinstance(subset, str):
        bool_cols = [c for c in adata.var.columns if adata.var[c].dtype == bool]
        if subset not in adata.var.columns:
            msg = f"subset={subset!r} is not a column of adata.var; boolean columns: {bool_cols or '(none)'}"
            raise ValueError(msg)
        mask = adata.var[subset].to_numpy()
        if mask.dtype != bool:
            msg = f"adata.var[{subset!r}] must be boolean, got dtype {mask.dtype}. Boolean columns: {bool_cols}"
            raise ValueError(msg)
    else:
        mask = np.asarray(subset)
        if mask.dtype != bool or mask.shape != (adata.n_vars,):
            msg = (
                f"subset must be None, a boolean column name of adata.var, or a boolean array of length "
                f"n_vars={adata.n_vars}, got dtype {mask.dtype} and shape {mask.shape}"
            )
            raise ValueError(msg)
    if not mask.any():
        msg = "subset selects no genes"
        raise ValueError(msg)
    return mask


def pca(
    adata: AnnData,
    *,
    n_comps: int = 50,
    layer: str | None = None,
    subset: str | np.ndarray | None = None,
    zero_center: bool = True,
    rng: RngLike = 0,
    key_added: str = "X_pca",
    copy: bool = False,
    n_oversamples: int = 10,
    n_iter: int | Literal["auto"] = "auto",
    method: Literal["auto", "randomized", "exact"] = "auto",
    n_jobs: int | None = None,
) -> AnnData | None:
    """Principal component analysis with implicit centring (sparse data are never densified).

    Computes the truncated SVD of the centred cells x genes matrix with
    :func:`mnnkit.linalg.randomized_svd` and stores the results where :func:`scanpy.pp.pca` does.

    Parameters
    ----------
    adata
        Annotated data; ``X`` (or ``layer``) may be a dense array or a CSR/CSC matrix, float32 or
        float64. Not modified unless ``copy=False`` (results are added, the data are untouched).
    n_comps
        Number of principal components; ``1 <= n_comps < min(n_obs, n_genes used)``.
    layer
        Use ``adata.layers[layer]`` instead of ``adata.X``.
    subset
        Genes to use: ``None`` (all), the name of a boolean column of ``adata.var`` (e.g.
        ``"highly_variable"``), or a boolean mask of length ``n_vars``. Selecting a subset copies
        those columns of the matrix.
    zero_center
        Subtract the gene means (implicitly). ``False`` computes a truncated SVD of the raw matrix,
        like :class:`sklearn.decomposition.TruncatedSVD`.
    rng
        Randomness of the randomized SVD: an int seed >= 0 (same seed, same result), a
        :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from
        the operating system: a different result on every call).
    key_added
        Where to store the results. The default ``"X_pca"`` writes ``.obsm["X_pca"]``,
        ``.varm["PCs"]`` and ``.uns["pca"]`` (scanpy's layout); any other key ``k`` writes
        ``.obsm[k]``, ``.varm[k]`` and ``.uns[k]``.
    copy
        Return a modified copy instead of writing to ``adata`` (then returning ``None``).
    n_oversamples, n_iter, method
        Passed to :func:`mnnkit.linalg.randomized_svd`.

    n_jobs
        Threads for numba and BLAS during the call, as in :func:`mnnkit.correct` (``None``: follow
        ``scanpy.settings.n_jobs`` once it is set, else as they are).

    Returns
    -------
    ``None``, or the modified copy if ``copy=True``. Adds:

    ``.obsm[key]``
        ``(n_obs, n_comps)`` scores (float32 for float32 data, else float64).
    ``.varm["PCs" | key]``
        ``(n_vars, n_comps)`` loadings (orthonormal columns; zero rows for genes outside ``subset``).
    ``.uns["pca" | key]``
        ``variance`` (eigenvalues of the covariance: ``S**2 / (n_obs - 1)``), ``variance_ratio``
        (over the total variance of the genes used) and ``params``.

    Notes
    -----
    Sign convention: the largest-magnitude loading of every component is positive. Memory:
    besides the data, O((n_obs + n_vars) * (n_comps + n_oversamples)) floats; a gene subset adds a
    copy of the selected columns.
    """
    _check_adata(adata)
    threads = job_threads(n_jobs)  # checked before any work
    k = check_int(n_comps, "n_comps", minimum=1)
    check_key_added(key_added)
    X = _get_matrix(adata, layer)
    mask = _resolve_subset(adata, subset)
    n_obs = adata.n_obs
    n_genes = int(mask.sum()) if mask is not None else adata.n_vars
    if k >= min(n_obs, n_genes):
        msg = f"n_comps={k} must be smaller than min(n_obs, n_genes) = min({n_obs}, {n_genes}) = {min(n_obs, n_genes)}"
        raise ValueError(msg)
    if mask is not None:
        X = X[:, mask] if sp.issparse(X) else np.asarray(X)[:, mask]
    op, k, p, q, resolved, generator = _prepare(X, k, None, None, n_oversamples, n_iter, method, rng)
    with threads:
        mean, var = mean_var(op.X, axis=0, ddof=1)
        total_var = float(var.sum())
        if not total_var > 0:
            msg = "All genes used for the PCA are constant (total variance is zero); there is nothing to compute"
            raise ValueError(msg)
        if zero_center:
            op = op.with_center(mean)
        out_dtype = np.float32 if op.X.dtype == np.float32 else np.float64
        logger.info("pca: %d cells x %d genes (%s), n_comps=%d, method=%s", n_obs, n_genes, op.format, k, resolved)
        if resolved == "exact":
            U, S, Vt = _exact(op, k)
            scores = (U * S).astype(out_dtype, copy=False)
        else:
            with blas_single_thread_if_sparse(op):
                S, Vt = _right_singular(op, k, p, q, generator)
                scores = np.empty((n_obs, k), dtype=out_dtype)  # allocated after the iteration's blocks are freed
                op.matmat_blocks(Vt.T, scores)
        if zero_center:
            variance = S**2 / (n_obs - 1)
        else:
            variance = np.var(scores, axis=0, ddof=1, dtype=np.float64)
        variance_ratio = variance / total_var

    target = adata.copy() if copy else adata
    key_obsm, key_varm, key_uns = ("X_pca", "PCs", "pca") if key_added == "X_pca" else (key_added,) * 3
    target.obsm[key_obsm] = scores
    loadings = np.zeros((adata.n_vars, k), dtype=out_dtype)
    if mask is None:
        loadings[:] = Vt.T
    else:
        loadings[mask] = Vt.T
    target.varm[key_varm] = loadings
    target.uns[key_uns] = {
        "params": {
            "n_comps": k,
            "zero_center": bool(zero_center),
            "layer": layer,
            "mask_var": subset if isinstance(subset, str) else (None if subset is None else "custom mask"),
            "use_highly_variable": subset == "highly_variable" if isinstance(subset, str) else False,
            "method": resolved,
            "n_iter": q,
            "n_oversamples": p,
        },
        "variance": variance,
        "variance_ratio": variance_ratio,
    }
    return target if copy else None
