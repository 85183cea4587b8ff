"""PC-space MNN (mnnkit.fast_mnn) at scale, against its floor and a peer, side by side in one run.

Usage::

    python benchmarks/bench_fastmnn.py                               # 10k, 100k, 300k and 1M cells
    python benchmarks/bench_fastmnn.py --sizes 10000                 # a quick smoke run
    python benchmarks/bench_fastmnn.py --sizes 300000 --methods floor-1 fast
    python benchmarks/bench_fastmnn.py --sizes 100000 --methods fast --flavor batchelor robust --exact-max 0

Data: a synthetic 50-dimensional embedding (PC-like: a decaying spread per dimension) of ``n`` cells in
10 batches, 15 cell types with batch-specific proportions, and a batch shift larger than the
within-type noise (``make_embedding``), written once per size to a temporary file.

Every method runs in its own subprocess, which first runs it on a small data set (so that numba and
pynndescent compilation is not timed), then reads the data, resets its peak-memory counter
(``/proc/self/clear_refs``), and times the call alone. Peak memory is then the subprocess's ``VmHWM``
(its own high-water mark since the reset: it includes the input embedding, which every method holds).

Methods:

``floor-1`` / ``floor-2``
    One pynndescent kNN-graph build on the whole embedding (``NNDescent(n_neighbors=15)``, what
    ``sc.pp.neighbors`` does), with 1 thread and with 2 threads (seeded; mnnkit builds its per-batch graphs on 2).
    mnnkit's run is compared with the faster of the two.
``fast``
    ``mnnkit.fast_mnn(use_rep="X_pca", neighbors="pynndescent")`` (k=20, batchelor's defaults).
``robust``
    The same with ``flavor="robust"`` (correction vectors between trimmed local centres of mass;
    largest batch first, which for these equal-sized batches is the input order, as for ``fast``).
    ``--flavor batchelor robust`` runs it next to ``fast`` (``--flavor robust`` alone in its place);
    its notes then give the time inside the robust flavour's own work (``nearest_within``: each
    paired cell's nearest cells on its own side; ``trimmed_members``, ``centre_averages``: their
    trimmed means and the vectors), and a second table the ratios robust / batchelor of time and
    peak memory per size.
``scranpy``
    ``scranpy.correct_mnn`` (libscran's C++ MNN in PC space, Annoy, 2 threads, k=20, input merge
    order), if scranpy is installed (``pip install scranpy``); up to ``--scranpy-max`` cells (it took
    292 s at 100k cells here).

At the 100k size and below (``--exact-max``), the exact path (``neighbors="exact"``) also runs, for
each flavour, and the table gives the approximate run's MNN pair recall against it per step (min and
mean) and the kNN(15) overlap of the two corrected embeddings. These compare two runs that drift apart
over the merge steps (each step corrects data the earlier steps moved a little differently), so a
further untimed run checks each step's graph search against an exact search on that run's own data
("per-step search recall").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks._process import peak_mb, reset_peak, run_worker  # noqa: E402

N_BATCHES = 10
DIMS = 50
#: the mnnkit method of each ``fast_mnn`` flavour, and back
METHOD_OF = {"batchelor": "fast", "robust": "robust"}
FLAVOR_OF = {method: flavor for flavor, method in METHOD_OF.items()}


# --------------------------------------------------------------------------------------- helpers


def make_embedding(n_cells: int, n_batches: int = N_BATCHES, dims: int = DIMS, seed: int = 0):
    """``(embedding float32 (n, dims), batch codes)``: 15 Gaussian cell types, per-batch proportions and shift."""
    import numpy as np

    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, dims + 1))
    centres = rng.normal(size=(15, dims)) * scale * 4.0
    sizes = np.full(n_batches, n_cells // n_batches)
    sizes[: n_cells % n_batches] += 1
    blocks, codes = [], []
    for b, size in enumerate(sizes):
        types = rng.choice(15, size=size, p=rng.dirichlet(np.full(15, 2.0)))
        shift = rng.normal(size=dims) * scale * 1.5
        blocks.append((centres[types] + shift + rng.normal(size=(size, dims)) * scale * 0.6).astype(np.float32))
        codes.append(np.full(size, b, dtype=np.int32))
    return np.vstack(blocks), np.concatenate(codes)


def _adata(x, codes):
    import anndata as ad
    import numpy as np
    import pandas as pd

    obs = pd.DataFrame({"batch": pd.Categorical([f"b{c}" for c in codes])}, index=np.arange(len(codes)).astype(str))
    adata = ad.AnnData(np.zeros((len(codes), 0), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = x
    return adata


# --------------------------------------------------------------------------------------- workers
def _worker(method: str, path: str, out: str) -> dict:
    import numpy as np

    tiny_x, tiny_codes = make_embedding(3 * 1500, n_batches=3, seed=1)
    data = np.load(path)
    x, codes = data["x"], data["codes"]
    if method.startswith("floor"):
        from pynndescent import NNDescent

        n_jobs = int(method.split("-")[1])
        NNDescent(tiny_x, n_neighbors=15, random_state=0, n_jobs=n_jobs)  # compile
        reset_peak()
        started = time.perf_counter()
        index = NNDescent(x, n_neighbors=15, random_state=0 if n_jobs == 1 else None, n_jobs=n_jobs, low_memory=True)
        index.neighbor_graph  # noqa: B018
        return {"seconds": time.perf_counter() - started, "peak_mb": peak_mb()}
    if method == "scranpy":
        import scranpy

        scranpy.correct_mnn(tiny_x.T.astype(np.float64), tiny_codes, num_neighbors=20, num_threads=2)
        reset_peak()
        started = time.perf_counter()
        result = scranpy.correct_mnn(
            np.ascontiguousarray(x.T, dtype=np.float64), codes, num_neighbors=20, merge_policy="input", num_threads=2
        )
        seconds = time.perf_counter() - started
        np.save(out, np.asarray(result["corrected"]).T)
        return {"seconds": seconds, "peak_mb": peak_mb()}
    import mnnkit

    base, _, check = method.partition("-")  # "fast" / "robust", then "" / "exact" / "search"
    flavor = FLAVOR_OF[base]
    if check == "search":
        return _search_recall_per_step(x, codes, flavor)
    neighbors = "exact" if check == "exact" else "pynndescent"
    mnnkit.fast_mnn(_adata(tiny_x, tiny_codes), "batch", use_rep="X_pca", neighbors=neighbors, flavor=flavor)  # compile
    adata = _adata(x, codes)
    timers = _time_robust_parts() if flavor == "robust" else {}
    reset_peak()
    started = time.perf_counter()
    mnnkit.fast_mnn(adata, "batch", use_rep="X_pca", neighbors=neighbors, flavor=flavor)
    seconds = time.perf_counter() - started
    peak = peak_mb()
    np.save(out, adata.obsm["X_mnn"])
    steps = adata.uns["X_mnn"]["steps"]
    np.savez(out + ".pairs.npz", **{name: step["pairs"] for name, step in steps.items()})
    step_seconds = [round(float(s["seconds"]), 1) for s in steps.values()]
    return {"seconds": seconds, "peak_mb": peak, "step_seconds": step_seconds, "parts": timers}


#: the merge loop's robust-only functions that ``_time_robust_parts`` times (where ``_engine`` has them),
#: with the position of the argument whose length it counts (the cells or pairs they work on)
ROBUST_PARTS = {"trimmed_members": 1, "centre_averages": 2}


def _time_robust_parts() -> dict:
    """Accumulate, into the returned dict, the seconds, calls and cells of the robust flavour's own work.

    Wraps ``nearest_within`` of both searches (each paired cell's nearest cells on its own side; cells:
    the distinct paired cells of a side) and the merge loop's ``ROBUST_PARTS`` that it has (the trimmed
    members of those neighbourhoods, then the centres' means and vectors, before and after the step's
    centring; cells: the paired cells, the pairs). A ``perf_counter`` pair per call: a few per merge step.
    """
    from mnnkit.correction.fast import _engine, _search

    totals: dict = {}

    def timed(name, func, counted):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                entry = totals.setdefault(name, {"seconds": 0.0, "calls": 0, "cells": 0})
                entry["seconds"] += time.perf_counter() - started
                entry["calls"] += 1
                entry["cells"] += len(args[counted]) if len(args) > counted else 0

        return wrapper

    for cls in (_search.GraphSearch, _search.ExactSearch):
        cls.nearest_within = timed("nearest_within", cls.nearest_within, 3)  # (self, data, parts, cells, ...)
    for name, counted in ROBUST_PARTS.items():
        if hasattr(_engine, name):
            setattr(_engine, name, timed(name, getattr(_engine, name), counted))
    return totals


def _search_recall_per_step(x, codes, flavor: str = "batchelor") -> dict:
    """Untimed: at every merge step of the approximate run, its pairs against exact pairs on the same data."""
    import numpy as np

    import mnnkit
    from mnnkit.correction.fast import _search

    graph_pairs = _search.GraphSearch.mnn_pairs
    per_step = []

    def checked(self, left, right, left_parts, right_parts, k_left, k_right):
        found = graph_pairs(self, left, right, left_parts, right_parts, k_left, k_right)
        truth = _search.ExactSearch.mnn_pairs(self, left, right, left_parts, right_parts, k_left, k_right)
        common = len(set(map(tuple, truth)) & set(map(tuple, found)))
        per_step.append((common / max(1, len(truth)), common / max(1, len(found))))
        return found

    _search.GraphSearch.mnn_pairs = checked
    mnnkit.fast_mnn(_adata(x, codes), "batch", use_rep="X_pca", neighbors="pynndescent", flavor=flavor)
    recall, precision = np.array(per_step).T
    return {"search": f"per-step search recall min {recall.min():.3f}, precision min {precision.min():.3f}"}


# --------------------------------------------------------------------------------------- driver
def _run(method: str, path: str, out: str, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, path, out]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    return run_worker(cmd, timeout, env)


def _quality(approx_out: str, exact_out: str) -> str:
    import numpy as np

    from mnnkit.neighbors import knn

    a, e = np.load(approx_out + ".pairs.npz"), np.load(exact_out + ".pairs.npz")
    recall = []
    for step in e.files:
        truth = set(map(tuple, e[step]))
        recall.append(len(truth & set(map(tuple, a[step]))) / max(1, len(truth)))
    first = knn(np.load(approx_out), np.load(approx_out), 15, exclude_self=True, method="pynndescent").indices
    second = knn(np.load(exact_out), np.load(exact_out), 15, exclude_self=True, method="pynndescent").indices
    overlap = float(np.mean((first[:, :, None] == second[:, None, :]).any(-1)))
    return f"pair recall min {min(recall):.3f} mean {np.mean(recall):.3f}, kNN(15) overlap {overlap:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 300_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["floor-1", "floor-2", "fast", "scranpy"])
    parser.add_argument("--exact-max", type=int, default=100_000, help="run the exact path up to this size")
    parser.add_argument("--scranpy-max", type=int, default=100_000, help="run scranpy up to this size (slow)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per method and size")
    parser.add_argument(
        "--flavor",
        nargs="+",
        choices=list(METHOD_OF),
        default=["batchelor"],
        help="fast_mnn flavour(s) that the method 'fast' stands for, run side by side (default: batchelor)",
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return 0

    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            x, codes = make_embedding(size)
            path = os.path.join(tmp, f"{size}.npz")
            np.savez(path, x=x, codes=codes)
            del x, codes
            methods = _expand_methods(args.methods, args.flavor)
            if size <= args.exact_max:
                methods += [f"{m}-{check}" for m in methods if m in FLAVOR_OF for check in ("exact", "search")]
            results = {}
            for method in methods:
                if method == "scranpy" and size > args.scranpy_max:
                    results[method] = {"error": f"not run above {args.scranpy_max} cells (--scranpy-max)"}
                    continue
                if method == "scranpy":
                    try:
                        import scranpy  # noqa: F401
                    except ImportError:
                        results[method] = {"error": "scranpy not installed (pip install scranpy)"}
                        continue
                out = os.path.join(tmp, f"{size}-{method}.npy")
                results[method] = _run(method, path, out, args.timeout)
                results[method]["out"] = out
                done = results[method].get("seconds", results[method].get("error"))
                print(f"  {size} {method}: {done}", file=sys.stderr)
            for m in FLAVOR_OF:
                if "seconds" not in results.get(m, {}):
                    continue
                if "seconds" in results.get(f"{m}-exact", {}):
                    results[m]["quality"] = _quality(results[m]["out"], results[f"{m}-exact"]["out"])
                if "search" in results.get(f"{m}-search", {}):
                    search = results.pop(f"{m}-search")["search"]
                    results[m]["quality"] = results[m].get("quality", "") + "; " + search
            rows.append((size, results))

    print(f"{'cells':>9} | {'method':<10} | {'time s':>8} | {'peak MB':>8} | {'x floor':>7} | notes")
    print("-" * 100)
    for size, results in rows:
        floors = [r["seconds"] for m, r in results.items() if m.startswith("floor") and "seconds" in r]
        floor = min(floors) if floors else None
        for method, res in results.items():
            if "error" in res:
                print(f"{size:>9} | {method:<10} | {'-':>8} | {'-':>8} | {'-':>7} | {res['error']}")
                continue
            ratio = f"{res['seconds'] / floor:.2f}" if floor and not method.startswith("floor") else "-"
            notes = [res["quality"]] if res.get("quality") else []
            baseline = results.get(method.replace("robust", "fast"), {}) if method.startswith("robust") else {}
            if "seconds" in baseline:
                notes.append(
                    f"x batchelor: time {res['seconds'] / baseline['seconds']:.2f}, "
                    f"peak {res['peak_mb'] / baseline['peak_mb']:.2f}"
                )
            notes += [
                f"{name} {t['seconds']:.1f} s ({t['calls']} calls, {t.get('cells', 0)} cells)"
                for name, t in res.get("parts", {}).items()
            ]
            if "step_seconds" in res:
                notes.append(f"steps {res['step_seconds']}")
            notes = "; ".join(notes)
            print(f"{size:>9} | {method:<10} | {res['seconds']:>8.1f} | {res['peak_mb']:>8.0f} | {ratio:>7} | {notes}")
    if len(args.flavor) > 1:
        _print_flavours(rows)
    return 0


def _expand_methods(methods: list[str], flavors: list[str]) -> list[str]:
    """``methods`` with ``fast`` standing for the mnnkit method of each flavour in ``flavors`` (in place)."""
    out = []
    for method in methods:
        for m in [METHOD_OF[f] for f in flavors] if method == "fast" else [method]:
            if m not in out:
                out.append(m)
    return out


WIDTHS = (9, 11, 8, 5, 9, 9, 5)


def _print_flavours(rows: list) -> None:
    """The robust flavour against batchelor's, per size: time, peak memory and their ratios."""
    print()
    head = ["cells", "batchelor s", "robust s", "ratio", "batch. MB", "robust MB", "ratio"]
    print(" | ".join(f"{h:>{w}}" for h, w in zip(head, WIDTHS, strict=True)) + " | robust's own work s")
    print("-" * 100)
    for size, results in rows:
        base, rob = results.get("fast", {}), results.get("robust", {})
        if "seconds" not in base or "seconds" not in rob:
            print(f"{size:>9} | {base.get('error', rob.get('error', 'not run'))}")
            continue
        own = sum(t["seconds"] for t in rob.get("parts", {}).values())
        cells = [
            f"{size}",
            f"{base['seconds']:.1f}",
            f"{rob['seconds']:.1f}",
            f"{rob['seconds'] / base['seconds']:.2f}",
            f"{base['peak_mb']:.0f}",
            f"{rob['peak_mb']:.0f}",
            f"{rob['peak_mb'] / base['peak_mb']:.2f}",
        ]
        print(" | ".join(f"{c:>{w}}" for c, w in zip(cells, WIDTHS, strict=True)) + f" | {own:.1f}")


if __name__ == "__main__":
    sys.exit(main())
