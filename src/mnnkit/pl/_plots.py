"""Diagnostic plots of an mnnkit correction: before/after UMAPs, MNN pairs per step, metrics before/after.

Figures are built as :class:`matplotlib.figure.Figure` objects outside pyplot's registry (nothing global is
touched, nothing needs closing) and rendered with Agg when saved; ``show=True`` hands them to pyplot.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mnnkit._random import RngLike, as_generator, as_seed
from mnnkit._validation import check_choice
from mnnkit.pl._data import CorrectionData, compare_metrics, correction_data, correction_record, obs_columns

__all__ = ["metrics_comparison", "mnn_pairs", "umap_comparison"]

logger = logging.getLogger("mnnkit")

#: Resolution of saved figures (dots per inch).
DPI = 120
#: Scaled metrics (all in [0, 1], higher is better) drawn by :func:`metrics_comparison`, by group.
#: ("kbet_acceptance" is the global kBET's row name in tables written before it became "kbet_global_acceptance".)
BATCH_METRICS = ["ilisi_scaled", "kbet_per_label", "kbet_global_acceptance", "kbet_acceptance", "silhouette_batch"]
BIO_METRICS = ["clisi_scaled", "silhouette_label", "ari", "nmi", "graph_connectivity"]
#: Correction vectors shorter than this count as "not moved" (float32 output rounding is ~1e-7 per value).
_NOT_MOVED = 1e-5
_UNCORRECTED_COLOUR = "#9e9e9e"
_CORRECTED_COLOUR = "#1f77b4"


def _new_figure(figsize: tuple[float, float], show: bool):
    if show:
        from matplotlib import pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _finish(fig, save: str | os.PathLike | None, show: bool):
    """Save (format from the suffix, PNG by default) and/or show; return the figure unless shown."""
    if save is not None:
        path = Path(save)
        fmt = path.suffix[1:].lower() if path.suffix else "png"
        fig.savefig(path, format=fmt, dpi=DPI)
        logger.info("saved figure %s", path)
    if show:
        from matplotlib import pyplot as plt

        plt.show()
        plt.close(fig)
        return None
    return fig


def _palette(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


def _categories(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in values.cat.categories if (values == c).any()]
    else:
        cats = sorted(map(str, pd.unique(values.astype(str))))
    codes = pd.Categorical(values.astype(str), categories=cats).codes
    return np.asarray(codes), cats


def _umap(x: np.ndarray, *, gene_level: bool, n_pcs: int, n_neighbors: int, seed: int, method: str) -> np.ndarray:
    """2-d UMAP of a cells x features matrix, through a PCA when it is gene-level: scanpy's, or mnnkit's."""
    import scanpy as sc
    from anndata import AnnData

    if gene_level:
        n_comps = max(1, min(n_pcs, min(x.shape) - 1))
        rep = sc.pp.pca(x, n_comps=n_comps, random_state=seed, dtype="float64")
    else:
        rep = x
    if method == "mnnkit":
        from mnnkit.pl._layout import umap_layout

        return umap_layout(rep, n_neighbors=min(n_neighbors, x.shape[0]), seed=seed)
    tmp = AnnData(obsm={"X_rep": np.asarray(rep, dtype=np.float32)}, shape=(x.shape[0], 0))
    with warnings.catch_warnings():
        # umap-learn notes that a fixed random_state runs single-threaded: intended here (reproducible plots)
        warnings.filterwarnings("ignore", message=".*n_jobs value.*", category=UserWarning)
        sc.pp.neighbors(tmp, n_neighbors=min(n_neighbors, x.shape[0] - 1), use_rep="X_rep", random_state=seed)
        sc.tl.umap(tmp, random_state=seed)
    return np.asarray(tmp.obsm["X_umap"])


def _scatter(ax, xy: np.ndarray, codes: np.ndarray, names: list[str], order: np.ndarray, size: float) -> None:
    colours = np.asarray(_palette(len(names)))
    ax.scatter(xy[order, 0], xy[order, 1], c=colours[codes[order]], s=size, linewidths=0, rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP1", fontsize=8)
    ax.set_ylabel("UMAP2", fontsize=8)


def _legend(ax, names: list[str], title: str) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", markersize=6, color=colour) for colour in _palette(len(names))]
    ax.legend(handles, names, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)


def umap_comparison(
    adata: Any,
    *,
    key_added: str = "mnn",
    batch_key: str | None = None,
    label_key: str | None = None,
    subset: str | Sequence[str] | np.ndarray | None = None,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    rng: RngLike = 0,
    point_size: float | None = None,
    data: CorrectionData | None = None,
    umap_method: Literal["scanpy", "mnnkit"] = "scanpy",
    save: str | os.PathLike | None = None,
    show: bool = False,
):
    """UMAPs before and after a correction, coloured by batch and (optionally) by label.

    Rows: uncorrected (the correction's input on the compared genes, cosine-normalised like the output),
    corrected. Columns: batch, and ``label_key`` if given. Each UMAP is scanpy's (``sc.pp.pca`` with
    ``n_pcs`` components for gene-level values, ``sc.pp.neighbors``, ``sc.tl.umap``) on a temporary
    AnnData, all seeded by ``rng``; cells are drawn in a seeded random order so no batch hides another.
    With ``umap_method="mnnkit"`` the layout after the PCA is mnnkit's NumPy UMAP instead (same fuzzy
    graph and objective as umap-learn, nothing to compile: seconds where umap-learn compiles for about
    half a minute in a new installation, see ``mnnkit.pl._layout``).

    Parameters
    ----------
    adata
        AnnData with a correction recorded under ``key_added``; not modified.
    key_added
        The correction's key.
    batch_key
        ``.obs`` column of the batches; default: the one the correction used.
    label_key
        ``.obs`` column of cell types for a second column of panels.
    subset
        Genes the correction used, if not recorded (see :func:`mnnkit.pl.correction_data`).
    n_pcs, n_neighbors
        PCA components, UMAP neighbours.
    rng
        Randomness of the PCA, the UMAP and the drawing order (one seed drawn for all): an int seed >= 0 (same
        seed, same result), a :class:`numpy.random.Generator` (used as given: its stream advances) or None
        (fresh entropy from the operating system: a different result on every call).
    point_size
        Marker area; default scales with the number of cells.
    data
        Precomputed :class:`~mnnkit.pl.CorrectionData` (saves recomputing it across plots).
    umap_method
        ``"scanpy"`` (``sc.pp.neighbors`` and ``sc.tl.umap``, umap-learn's layout) or ``"mnnkit"`` (its
        NumPy UMAP: the same graph, umap-learn's optimisation with each epoch's moves added at once).
    save
        File to write (format from the suffix; PNG without one).
    show
        Show the figure with pyplot (and return ``None``).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, unless ``show``.
    """
    umap_method = check_choice(umap_method, "umap_method", ("scanpy", "mnnkit"))
    data = correction_data(adata, key_added, subset=subset) if data is None else data
    batch_key = data.batch_key if batch_key is None else batch_key
    columns = obs_columns(adata, batch_key, label_key)
    seed = as_seed(rng)
    layout = {"n_pcs": n_pcs, "n_neighbors": n_neighbors, "seed": seed, "method": umap_method}
    coords = {
        "uncorrected": _umap(data.uncorrected, gene_level=data.uncorrected_is_genes, **layout),
        "corrected": _umap(data.corrected, gene_level=data.gene_level, **layout),
    }
    order = as_generator(seed).permutation(adata.n_obs)
    size = point_size if point_size is not None else float(np.clip(12000 / adata.n_obs, 2, 30))
    fig = _new_figure((4.6 * len(columns) + 1.6 * len(columns), 8.4), show)
    axes = fig.subplots(2, len(columns), squeeze=False)
    titles = {
        "uncorrected": f"uncorrected ({data.uncorrected_where})",
        "corrected": f"corrected ({data.corrected_where})",
    }
    for j, column in enumerate(columns):
        codes, names = _categories(adata.obs[column])
        for i, state in enumerate(("uncorrected", "corrected")):
            ax = axes[i, j]
            _scatter(ax, coords[state], codes, names, order, size)
            ax.set_title(f"{titles[state]}\ncoloured by {column}", fontsize=9)
        _legend(axes[0, j], names, column)
    fig.suptitle(f"mnnkit correction {data.key!r}: {adata.n_obs} cells, before and after", fontsize=11)
    return _finish(fig, save, show)


def _step_label(step: Any) -> str:
    def side(names: Any) -> str:
        names = [str(n) for n in np.atleast_1d(np.asarray(names, dtype=object))]
        text = "+".join(names)
        return text if len(text) <= 24 else f"{names[0]}+{len(names) - 1} more"

    return f"{side(step.get('left', []))}\n<- {side(step.get('right', []))}"


def mnn_pairs(
    adata: Any,
    *,
    key_added: str = "mnn",
    subset: str | Sequence[str] | np.ndarray | None = None,
    data: CorrectionData | None = None,
    save: str | os.PathLike | None = None,
    show: bool = False,
):
    """Per-step MNN pair counts and the distribution of correction vector lengths, per batch.

    Left: MNN pairs found at each merge step (reference side <- side being merged). Right: histograms of the
    length of each cell's correction vector (corrected minus uncorrected values over the compared genes),
    one per batch that was moved; the reference batch does not move. For an embedding output (no
    gene-level values) the right panel says so.

    Parameters
    ----------
    adata, key_added, subset, data, save, show
        As in :func:`umap_comparison`.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, unless ``show``.
    """
    record = correction_record(adata, key_added)
    steps = [record["steps"][name] for name in sorted(record["steps"], key=lambda s: int(str(s).split("_")[-1]))]
    fig = _new_figure((11.0, 4.6), show)
    ax_pairs, ax_len = fig.subplots(1, 2, width_ratios=[max(1.0, 0.55 * len(steps)), 2.0])

    counts = [int(step.get("n_pairs", 0)) for step in steps]
    positions = np.arange(len(steps))
    bars = ax_pairs.bar(positions, counts, color=_CORRECTED_COLOUR, width=0.6)
    ax_pairs.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=8, padding=2)
    ax_pairs.set_xticks(positions, [f"step {i + 1}\n{_step_label(s)}" for i, s in enumerate(steps)], fontsize=8)
    ax_pairs.set_xlim(-0.5 - 0.5 / len(steps), len(steps) - 0.5 + 0.5 / len(steps))
    ax_pairs.set_ylabel("MNN pairs")
    ax_pairs.set_ylim(0, max(counts + [1]) * 1.15)
    ax_pairs.set_title("MNN pairs per merge step", fontsize=10)
    ax_pairs.spines[["top", "right"]].set_visible(False)

    try:
        data = correction_data(adata, key_added, subset=subset) if data is None else data
        lengths = data.vector_lengths
    except ValueError as err:
        lengths, reason = None, str(err)
    else:
        reason = (
            f"correction vectors are shown for gene-level corrections only;\nthis one ({data.method} method) "
            f"is an embedding, {data.corrected_where}"
        )
    if lengths is None:
        ax_len.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, fontsize=9, transform=ax_len.transAxes)
        ax_len.set_axis_off()
    else:
        codes, names = _categories(adata.obs[data.batch_key])
        colours = _palette(len(names))
        moved = [b for b in range(len(names)) if np.any(lengths[codes == b] > _NOT_MOVED)]
        still = [names[b] for b in range(len(names)) if b not in moved]
        top = float(lengths.max()) if lengths.size and lengths.max() > 0 else 1.0
        bins = np.linspace(0.0, top * 1.02, 41)
        for b in moved:
            values = lengths[codes == b]
            ax_len.hist(
                values, bins=bins, histtype="stepfilled", alpha=0.35, color=colours[b],
                label=f"{names[b]} (n={values.size}, median {np.median(values):.3f})",
            )  # fmt: skip
            ax_len.hist(values, bins=bins, histtype="step", color=colours[b], linewidth=1.2)
        if still:
            ax_len.plot([], [], " ", label=f"not moved (reference): {', '.join(still)}")
        ax_len.legend(fontsize=8, frameon=False)
        ax_len.set_xlabel(f"length of each cell's correction vector ({data.genes.size} genes)")
        ax_len.set_ylabel("cells")
        ax_len.set_title("distribution of correction vector lengths, per batch", fontsize=10)
        ax_len.spines[["top", "right"]].set_visible(False)
    fig.suptitle(f"mnnkit correction {key_added!r} ({record.get('method', '?')}): MNN pair diagnostics", fontsize=11)
    return _finish(fig, save, show)


def metrics_comparison(
    adata: Any,
    *,
    key_added: str = "mnn",
    batch_key: str | None = None,
    label_key: str | None = None,
    table: pd.DataFrame | None = None,
    save: str | os.PathLike | None = None,
    show: bool = False,
    **evaluate_kwargs: Any,
):
    """Bar chart of the integration metrics before and after a correction.

    Draws the scaled metrics (all in [0, 1], higher is better): batch mixing (scaled iLISI, kBET acceptance,
    batch ASW) and, with labels, conservation of biology (scaled cLISI, label ASW, ARI, NMI, graph
    connectivity); grey bars uncorrected, blue corrected.

    Parameters
    ----------
    adata
        AnnData with a correction recorded under ``key_added``; not modified. Not read when ``table`` is given.
    key_added
        The correction's key.
    batch_key, label_key
        ``.obs`` columns (default batch: the correction's).
    table
        A precomputed comparison (columns ``uncorrected`` and ``corrected``, indexed by metric, as
        ``mnnkit evaluate`` computes it); default: computed here with :func:`mnnkit.metrics.evaluate`.
    save, show
        As in :func:`umap_comparison`.
    **evaluate_kwargs
        Passed to :func:`mnnkit.metrics.evaluate` (``n_neighbors``, ``perplexity``, ``rng``, ...).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, unless ``show``.
    """
    if table is None:
        table = compare_metrics(adata, key_added=key_added, batch_key=batch_key, label_key=label_key, **evaluate_kwargs)
    missing = {"uncorrected", "corrected"} - set(table.columns)
    if missing:
        msg = f"table needs columns 'uncorrected' and 'corrected'; missing: {sorted(missing)}"
        raise ValueError(msg)
    groups = [("batch mixing", [m for m in BATCH_METRICS if m in table.index])]
    groups.append(("biology conserved", [m for m in BIO_METRICS if m in table.index]))
    groups = [(name, metrics) for name, metrics in groups if metrics]
    if not groups:
        msg = f"table holds none of the plotted metrics {BATCH_METRICS + BIO_METRICS}"
        raise ValueError(msg)
    n_rows = sum(len(m) for _, m in groups)
    fig = _new_figure((7.6, 1.2 + 0.62 * n_rows + 0.4 * len(groups)), show)
    axes = fig.subplots(len(groups), 1, squeeze=False, height_ratios=[len(m) for _, m in groups])[:, 0]
    height = 0.38
    for ax, (group, metrics) in zip(axes, groups, strict=True):
        y = np.arange(len(metrics))[::-1]
        for offset, column, colour in (
            (height / 2, "uncorrected", _UNCORRECTED_COLOUR),
            (-height / 2, "corrected", _CORRECTED_COLOUR),
        ):
            values = table.loc[metrics, column].to_numpy(dtype=float)
            bars = ax.barh(y + offset, values, height=height, color=colour, label=column)
            ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8, padding=2)
        ax.set_yticks(y, metrics, fontsize=9)
        ax.set_xlim(0, 1.12)
        ax.set_title(group, fontsize=10, loc="left")
        ax.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xlabel("score (scaled to [0, 1]; higher is better)")
    axes[0].legend(loc="lower right", fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0), ncols=2)
    fig.suptitle(f"integration metrics before and after correction {table.attrs.get('key_added', key_added)!r}")
    return _finish(fig, save, show)
