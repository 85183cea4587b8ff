"""The fast method with every default at moderate size, against harmonypy and scranpy, in one run.

Usage::

    python benchmarks/bench_defaults.py                        # 3 batches x 10,000 cells x 50 PCs
    python benchmarks/bench_defaults.py --cells 3000 30000     # other per-batch sizes
    python benchmarks/bench_defaults.py --methods auto exact harmony

Data: the synthetic 50-dimensional embedding of ``bench_fastmnn.py`` (15 cell types with batch-specific
proportions, a batch shift larger than the within-type noise), here in 3 equal batches.

Every method runs in its own subprocess, which first runs it once on the same data (so that numba,
pynndescent and library start-up are not timed: a warm process, as a user's second call), then times
``--repeats`` further calls and reports the fastest and the median.

Methods:

``auto``
    ``mnnkit.fast_mnn(adata, "batch", use_rep="X_pca")`` with every default (``neighbors="auto"``; the
    table names the search it chose, from ``.uns["X_mnn"]["params"]["neighbors"]``).
``exact`` / ``partition`` / ``pynndescent``
    The same with that ``neighbors``. The approximate ones also give the kNN(15) overlap of their
    corrected embedding with the exact run's (the mean share of each cell's 15 nearest neighbours that
    both runs share).
``harmony``
    ``harmonypy.run_harmony`` on the same embedding (seed 0, its defaults).
``scranpy``
    ``scranpy.correct_mnn`` (libscran's MNN, its defaults: k=15, 2 threads here).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks._process import run_worker  # noqa: E402
from benchmarks.bench_fastmnn import _adata, make_embedding  # noqa: E402

N_BATCHES = 3
MNNKIT_SEARCHES = ("auto", "exact", "partition", "pynndescent")
METHODS = (*MNNKIT_SEARCHES, "harmony", "scranpy")


def _runner(method: str, x, codes):
    """A no-argument callable running ``method`` on ``(x, codes)`` and returning ``(embedding, note)``."""
    import numpy as np

    if method in MNNKIT_SEARCHES:
        import mnnkit

        def run():
            adata = _adata(x, codes)
            mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", **({} if method == "auto" else {"neighbors": method}))
            return adata.obsm["X_mnn"], adata.uns["X_mnn"]["params"]["neighbors"]

        return run
    if method == "harmony":
        import harmonypy
        import pandas as pd

        meta = pd.DataFrame({"batch": pd.Categorical(codes.astype(str))})

        def run():
            out = np.asarray(harmonypy.run_harmony(x, meta, ["batch"], random_state=0, verbose=False).Z_corr)
            return (out if out.shape == x.shape else out.T), ""

        return run
    if method == "scranpy":
        import scranpy

        def run():
            out = scranpy.correct_mnn(np.ascontiguousarray(x.T, dtype=np.float64), codes, num_threads=2)
            return np.asarray(out["corrected"]).T, ""

        return run
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def _worker(method: str, path: str, out: str, repeats: int) -> dict:
    import numpy as np

    data = np.load(path)
    x, codes = data["x"], data["codes"]
    run = _runner(method, x, codes)
    run()  # warm-up: compilation and library start-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedding, note = run()
        seconds.append(time.perf_counter() - started)
    np.save(out, np.asarray(embedding, dtype=np.float32))
    return {"best": min(seconds), "median": statistics.median(seconds), "note": note}


def _overlap(first_path: str, second_path: str) -> float:
    import numpy as np

    from mnnkit.neighbors import knn

    first, second = np.load(first_path), np.load(second_path)
    a = knn(first, first, 15, exclude_self=True, method="exact").indices
    b = knn(second, second, 15, exclude_self=True, method="exact").indices
    return float(np.mean((a[:, :, None] == b[:, None, :]).any(-1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", type=int, default=[10_000], help="cells per batch")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per method and size")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        method, path, out, repeats = args.worker
        print(json.dumps(_worker(method, path, out, int(repeats))))
        return 0

    import numpy as np

    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        for per_batch in args.cells:
            n_cells = N_BATCHES * per_batch
            x, codes = make_embedding(n_cells, n_batches=N_BATCHES, seed=0)
            path = os.path.join(tmp, f"data_{n_cells}.npz")
            np.savez(path, x=x, codes=codes)
            print(
                f"\n{N_BATCHES} batches x {per_batch:,} cells x {x.shape[1]} dims (warm process, "
                f"best / median of {args.repeats})\n"
            )
            print("| method | best s | median s | search | kNN(15) overlap with exact |")
            print("|---|---|---|---|---|")
            outputs, rows = {}, {}
            for method in args.methods:
                out = os.path.join(tmp, f"{method}_{n_cells}.npy")
                cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, path, out, str(args.repeats)]
                rows[method] = run_worker(cmd, args.timeout, env)
                if "error" not in rows[method]:
                    outputs[method] = out
            for method in args.methods:
                row = rows[method]
                if "error" in row:
                    print(f"| {method} | {row['error']} | | | |")
                    continue
                overlap = ""
                if method in MNNKIT_SEARCHES and method != "exact" and "exact" in outputs:
                    overlap = f"{_overlap(outputs[method], outputs['exact']):.3f}"
                print(f"| {method} | {row['best']:.2f} | {row['median']:.2f} | {row['note']} | {overlap} |")
            timed = {m: row["median"] for m, row in rows.items() if "error" not in row}
            if "auto" in timed:
                for peer in ("harmony", "scranpy"):
                    if peer in timed:
                        print(f"\ndefaults vs {peer}: {timed[peer] / timed['auto']:.1f}x faster (median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
