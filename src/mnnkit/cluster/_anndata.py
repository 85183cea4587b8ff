"""``gmm(adata)``: Gaussian-mixture clustering of an embedding stored in ``.obsm``."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from mnnkit._random import RngLike
from mnnkit._validation import check_choice, check_key, check_key_added
from mnnkit.cluster._gmm import GaussianMixture, check_random_state

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["gmm"]

logger = logging.getLogger("mnnkit")


def _component_grid(n_components: Any, n_obs: int) -> list[int]:
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        grid = [int(n_components)]
    elif isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes)):
        grid = list(n_components)
        if not grid or not all(isinstance(k, numbers.Integral) and not isinstance(k, bool) for k in grid):
            msg = f"n_components must be an int or a non-empty range/list of ints, got {n_components!r}"
            raise ValueError(msg)
        grid = sorted({int(k) for k in grid})
    else:
        msg = f"n_components must be an int or a range/list of ints, got {type(n_components).__name__}"
        raise TypeError(msg)
    if grid[0] < 1:
        msg = f"n_components must be >= 1, got {grid[0]}"
        raise ValueError(msg)
    if grid[-1] > n_obs:
        msg = f"n_components={grid[-1]} exceeds the number of cells ({n_obs})"
        raise ValueError(msg)
    return grid


def gmm(
    adata: AnnData,
    *,
    use_rep: str = "X_mnn",
    n_components: int | Iterable[int] = 10,
    criterion: Literal["bic", "aic"] = "bic",
    key_added: str = "gmm",
    covariance_type: Literal["full", "tied", "diag", "spherical"] = "full",
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    reg_covar: float = 1e-6,
    init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = "kmeans",
    rng: RngLike = 0,
    copy: bool = False,
) -> AnnData | None:
    """Cluster cells with a Gaussian mixture fitted to an embedding (e.g. corrected PCs).

    Parameters
    ----------
    adata
        Annotated data with the embedding in ``adata.obsm[use_rep]``. Not modified if ``copy=True``.
    use_rep
        Key of ``adata.obsm`` holding an ``(n_obs, d)`` dense array (e.g. ``"X_mnn"``, ``"X_pca"``).
    n_components
        Number of components, or a range/list of candidates: then one mixture is fitted per value
        and the one with the lowest ``criterion`` is kept.
    criterion
        ``"bic"`` or ``"aic"``, used when ``n_components`` is a range.
    key_added
        Output key (see Returns).
    covariance_type, n_init, max_iter, tol, reg_covar, init_params
        Passed to :class:`mnnkit.cluster.GaussianMixture`.
    rng
        Randomness of the initialisations: an int seed >= 0 (same seed, same result), a
        :class:`numpy.random.Generator` (used as given: its stream advances) or None (fresh entropy from
        the operating system: a different result on every call). Passed to
        :class:`~mnnkit.cluster.GaussianMixture` as ``random_state``, so an int seed must lie below ``2**32``.
    copy
        Return a modified copy instead of writing into ``adata`` (then returning ``None``).

    Returns
    -------
    ``None``, or the modified copy if ``copy=True``. Adds:

    ``.obs[key_added]``
        Categorical labels ``"0"``, ``"1"``, ... of the most probable component.
    ``.obsm[key_added + "_proba"]``
        ``(n_obs, K)`` posterior probabilities.
    ``.uns[key_added]``
        ``params``, the chosen ``n_components``, ``lower_bound``, ``converged``, the criterion
        value, and, for a range, ``n_components_tested`` with ``criterion_values``.

    Notes
    -----
    Memory: the embedding as float64 plus ``n_obs x K`` probabilities per fitted mixture.
    """
    import pandas as pd
    from anndata import AnnData  # imported here: the estimator alone does not need anndata

    if not isinstance(adata, AnnData):
        msg = f"adata must be an AnnData object, got {type(adata).__name__}"
        raise TypeError(msg)
    check_key(adata, use_rep, "use_rep", "obsm")
    check_choice(criterion, "criterion", ("bic", "aic"))
    check_key_added(key_added)
    rep = adata.obsm[use_rep]
    if sp.issparse(rep):
        msg = f"adata.obsm[{use_rep!r}] is sparse; gmm needs a dense embedding (e.g. PCA scores)"
        raise TypeError(msg)
    X = np.asarray(rep.to_numpy() if isinstance(rep, pd.DataFrame) else rep)
    if X.ndim != 2:
        msg = f"adata.obsm[{use_rep!r}] must be 2-D, got shape {X.shape}"
        raise ValueError(msg)
    grid = _component_grid(n_components, adata.n_obs)
    check_random_state(rng, "rng", allow_random_state=False)

    # the mixture's settings, also recorded in .uns
    mixture = {"covariance_type": covariance_type, "n_init": n_init, "reg_covar": reg_covar, "init_params": init_params}
    fits: list[tuple[int, GaussianMixture, float]] = []
    for k in grid:
        model = GaussianMixture(n_components=k, max_iter=max_iter, tol=tol, random_state=rng, **mixture).fit(X)
        value = model.bic(X) if criterion == "bic" else model.aic(X)
        logger.info("gmm: n_components=%d %s=%.6g", k, criterion, value)
        fits.append((k, model, value))
    best_k, best, best_value = min(fits, key=lambda t: t[2])
    proba = best.predict_proba(X)
    labels = proba.argmax(axis=1)

    target = adata.copy() if copy else adata
    target.obs[key_added] = pd.Categorical(labels.astype(str), categories=[str(i) for i in range(best_k)])
    target.obsm[f"{key_added}_proba"] = proba
    uns: dict[str, Any] = {
        "params": {"use_rep": use_rep, "criterion": criterion, **mixture},
        "n_components": best_k,
        "lower_bound": best.lower_bound_,
        "converged": bool(best.converged_),
        criterion: best_value,
    }
    if len(grid) > 1:
        uns["n_components_tested"] = np.array(grid)
        uns["criterion_values"] = np.array([value for _, _, value in fits])
    target.uns[key_added] = uns
    return target if copy else None
