"""Correct the shipped simulated batches with classic MNN, print how they mix before and after, and draw it.

``python -m mnnkit.demo`` is the README's quick start: it needs no network and no files of your own.
The data (``mnnkit.datasets.simulated()``, MIT) are two batches of the same four cell types with a
batch effect between them, the case MNN correction is made for. The same correction from the command
line: ``mnnkit correct $(mnnkit data simulated) -o corrected.h5ad``.

Where MNN is not the right tool, for example human against mouse cells (the shipped pancreas data),
the correction moves one batch onto the other without mixing them: notebook 1 shows that case.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

#: The integration metrics the demo prints, names as in :func:`mnnkit.metrics.evaluate`'s table.
DEMO_METRICS = ("ilisi_scaled", "clisi_scaled", "silhouette_label", "silhouette_batch", "kbet_global_acceptance")
#: Where the before/after UMAP goes by default (a free name is chosen if the file exists).
DEFAULT_PLOT = "mnnkit_demo_umap.png"


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


def main(argv: list[str] | None = None) -> int:
    """Correct ``mnnkit.datasets.simulated()``, print a summary and write a UMAP PNG; return 0."""
    parser = argparse.ArgumentParser(prog="python -m mnnkit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plot", default=DEFAULT_PLOT, help=f"before/after UMAP PNG (default: {DEFAULT_PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="skip the UMAP (it computes two UMAPs)")
    args = parser.parse_args(argv)

    import mnnkit

    adata = mnnkit.datasets.simulated()
    counts = ", ".join(f"{name} {n}" for name, n in adata.obs["batch"].value_counts(sort=False).items())
    print(f"loaded the shipped simulated data: {adata.n_obs} cells x {adata.n_vars} genes; batches {counts}")

    started = time.perf_counter()
    mnnkit.correct(adata, "batch")
    seconds = time.perf_counter() - started
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
    print("share of each cell's 15 nearest neighbours from its own batch (0.5 = perfectly mixed here):")
    for name in np.unique(batch):
        cells = batch == name
        print(
            f"  {name:>8}: before {_same_batch_fraction(before, batch, cells):.3f} "
            f"-> after {_same_batch_fraction(after, batch, cells):.3f}"
        )
    adata.obsm["X_before"], adata.obsm["X_after"] = before, after
    table = {
        rep: mnnkit.metrics.evaluate(adata, batch_key="batch", label_key="cell_type", rep=rep)["value"]
        for rep in ("X_before", "X_after")
    }
    print("integration metrics (mnnkit.metrics.evaluate; iLISI up = batches mixed, cLISI near 1 = types kept):")
    print(f"  {'metric':<22} {'before':>8} {'after':>8}")
    for metric in DEMO_METRICS:
        print(f"  {metric:<22} {table['X_before'][metric]:8.3f} {table['X_after'][metric]:8.3f}")
    if not args.no_plot:
        path = _free_path(Path(args.plot))
        mnnkit.pl.umap_comparison(adata, label_key="cell_type", save=path)
        print(f"before/after UMAPs by batch and cell type: {path}")
    print(f"corrected values are in adata.layers['mnn'] {adata.layers['mnn'].shape}, merge info in adata.uns['mnn']")
    print("the same correction from the command line: mnnkit correct $(mnnkit data simulated) -o corrected.h5ad")
    return 0


if __name__ == "__main__":
    sys.exit(main())
