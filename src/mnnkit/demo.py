"""Correct the shipped simulated batches with classic MNN, print how they mix before and after, and draw it.

``python -m mnnkit.demo`` is the README's quick start: it needs no network and no files of your own.
The data (``mnnkit.datasets.simulated()``, MIT) are two batches of the same four cell types with a
batch effect between them, the case MNN correction is made for. They are log-expression-like values
already, so there is no preprocessing: the correction runs with every default of :func:`mnnkit.correct`,
and the metrics are :func:`mnnkit.pl.compare_metrics`'s, both exactly what the command line does
(:data:`CLI_COMMANDS`, printed at the end; ``tests/test_demo.py`` checks that the two agree).

Where MNN is not the right tool, for example human against mouse cells (the shipped pancreas data),
the correction moves one batch onto the other without mixing them: notebook 7
(``notebooks/07_cross_species.ipynb``) shows that case.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

#: The integration metrics the demo prints, names as in :func:`mnnkit.metrics.evaluate`'s table.
DEMO_METRICS = ("ilisi_scaled", "clisi_scaled", "silhouette_label", "silhouette_batch", "kbet_global_acceptance")
#: Where the before/after UMAP goes by default (a free name is chosen if the file exists).
DEFAULT_PLOT = "mnnkit_demo_umap.png"
#: The demo's correction and metrics on the command line, as the demo prints them: the same data, the same
#: defaults, the same numbers (``"$(mnnkit data simulated)"`` is the shipped file's path).
CLI_COMMANDS = (
    'mnnkit correct "$(mnnkit data simulated)" -o corrected.h5ad',
    "mnnkit evaluate corrected.h5ad --label-key cell_type",
)


def _same_batch_fraction(x: np.ndarray, batch: np.ndarray, cells: np.ndarray, k: int = 15) -> float:
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x[cells], return_distance=False)[:, 1:]
    return float((batch[idx] == batch[cells][:, None]).mean())


def _free_path(path: Path) -> Path:
    """``path``, or ``stem-1.suffix``, ``stem-2.suffix``, ... if it exists (the demo never overwrites a file)."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def correct_and_score() -> tuple[AnnData, pd.DataFrame, float]:
    """The demo's work, without printing: ``(adata, table, seconds)``.

    ``adata`` is ``mnnkit.datasets.simulated()`` corrected by :func:`mnnkit.correct` with every default
    (``mnnkit correct`` with no option); ``table`` is :func:`mnnkit.pl.compare_metrics` of that correction
    with ``label_key="cell_type"`` (``mnnkit evaluate --label-key cell_type``: the uncorrected and corrected
    values through the same PCA); ``seconds`` is the correction's wall time.
    """
    import mnnkit

    adata = mnnkit.datasets.simulated()
    started = time.perf_counter()
    mnnkit.correct(adata, "batch")
    seconds = time.perf_counter() - started
    return adata, mnnkit.pl.compare_metrics(adata, label_key="cell_type"), seconds


def main(argv: list[str] | None = None) -> int:
    """Correct ``mnnkit.datasets.simulated()``, print a summary and write a UMAP PNG; return 0."""
    parser = argparse.ArgumentParser(prog="python -m mnnkit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default=DEFAULT_PLOT, help=f"before/after UMAP PNG (default: {DEFAULT_PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="skip the UMAP (it computes two UMAPs)")
    args = parser.parse_args(argv)

    import mnnkit

    adata, table, seconds = correct_and_score()
    counts = ", ".join(f"{name} {n}" for name, n in adata.obs["batch"].value_counts(sort=False).items())
    print(f"the shipped simulated data: {adata.n_obs} cells x {adata.n_vars} genes; batches {counts}")
    info = adata.uns["mnn"]
    print(
        f"mnnkit.correct merged {' <- '.join(info['merge_order'])} in {seconds:.2f} s "
        "(the first run also compiles and caches mnnkit's numba kernels)"
    )
    for name, step in info["steps"].items():
        print(f"  {name}: {step['n_pairs']} MNN pairs between {list(step['left'])} and {list(step['right'])}")

    batch = adata.obs["batch"].to_numpy()
    x = np.asarray(adata.X, dtype=np.float64)
    before = x / np.linalg.norm(x, axis=1, keepdims=True)
    after = adata.layers["mnn"]
    print("share of each cell's 15 nearest neighbours (all genes) from its own batch (0.5 = perfectly mixed here):")
    for name in np.unique(batch):
        cells = batch == name
        print(
            f"  {name:>8}: before {_same_batch_fraction(before, batch, cells):.3f} "
            f"-> after {_same_batch_fraction(after, batch, cells):.3f}"
        )
    print(
        "integration metrics (mnnkit.pl.compare_metrics, on a 50-component PCA of each; "
        "iLISI up = batches mixed, cLISI near 1 = types kept):"
    )
    print(f"  {'metric':<22} {'before':>8} {'after':>8}")
    for metric in DEMO_METRICS:
        print(f"  {metric:<22} {table.loc[metric, 'uncorrected']:8.3f} {table.loc[metric, 'corrected']:8.3f}")
    if not args.no_plot:
        path = _free_path(Path(args.plot))
        # mnnkit's NumPy UMAP: umap-learn would compile for about half a minute in a new installation
        mnnkit.pl.umap_comparison(adata, label_key="cell_type", umap_method="mnnkit", save=path)
        print(f"before/after UMAPs by batch and cell type: {path}")
    print(f"corrected values are in adata.layers['mnn'] {adata.layers['mnn'].shape}, merge info in adata.uns['mnn']")
    print("the same correction and metrics from the command line (the same numbers):")
    for command in CLI_COMMANDS:
        print(f"  {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
