"""Classic MNN correction: mnnkit (exact and approximate) against mnnpy, side by side in one run.

Usage::

    python benchmarks/bench_mnn.py                          # 3x3000x2000 and 2x10000x2000
    python benchmarks/bench_mnn.py --sizes 2x1000x500       # a quick smoke run
    python benchmarks/bench_mnn.py --mnnpy-python /path/to/venv/bin/python

Every method runs in its own subprocess on the same synthetic data (``benchmarks/synthetic.py``,
written once to a temporary file), with the same parameters (batchelor's defaults: k=20, sigma=0.1,
cosine normalisation, var.adj on). Each subprocess first corrects a tiny data set so that numba
compilation is not timed, then times the correction call alone. Peak memory is the subprocess's
maximum resident set size (``ru_maxrss``), which includes the Python interpreter, the libraries and
the input data.

mnnpy (0.1.9.5, via ``scanpy.external.pp.mnn_correct``) only installs in its own virtual environment
with old numpy/numba/scanpy (see ``../shared/PEERS.md``). Give its interpreter with ``--mnnpy-python``
or ``MNNPY_PYTHON``; without one, the table says mnnpy was not run and why. mnnpy calls
``cKDTree.query(n_jobs=...)``, a keyword SciPy >= 1.9 renamed ``workers``: its worker below wraps
``scipy.spatial.cKDTree`` to map it before importing mnnpy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks._process import run_worker  # noqa: E402


# --------------------------------------------------------------------------------------- workers
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _load(path: str):
    import numpy as np

    data = np.load(path)
    return data["x"], data["batch"]


def _worker_mnnkit(path: str, out: str, approximate: bool) -> dict:
    import anndata as ad
    import numpy as np
    import pandas as pd

    import mnnkit

    def make(x, batch):
        names = pd.Categorical([f"b{b}" for b in batch])
        obs = pd.DataFrame({"batch": names}, index=[f"c{i}" for i in range(len(batch))])
        return ad.AnnData(x, obs=obs)

    rng = np.random.default_rng(0)
    tiny = make(rng.random((60, 20), dtype=np.float32), np.repeat([0, 1], 30))
    mnnkit.correct(tiny, "batch", approximate=approximate)  # compile the kernels: not timed
    x, batch = _load(path)
    adata = make(x, batch)
    started, cpu = time.perf_counter(), _cpu_seconds()
    mnnkit.correct(adata, "batch", approximate=approximate)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    np.save(out, adata.layers["mnn"])
    steps = adata.uns["mnn"]["steps"]
    pairs = [int(s["n_pairs"]) for s in steps.values()]
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _peak_rss_mb(), "pairs": pairs}


def _worker_mnnpy(path: str, out: str) -> dict:
    import numpy as np
    import scipy.spatial

    original = scipy.spatial.cKDTree

    class _KDTree(original):  # map mnnpy's n_jobs= to SciPy's workers=
        def query(self, *args, n_jobs=None, **kwargs):
            if n_jobs is not None:
                kwargs["workers"] = n_jobs
            return super().query(*args, **kwargs)

    scipy.spatial.cKDTree = _KDTree
    import anndata as ad
    import scanpy as sc

    def split(x, batch):
        return [ad.AnnData(x[batch == b]) for b in np.unique(batch)]

    rng = np.random.default_rng(0)
    tiny = rng.random((60, 20)).astype(np.float32)
    sc.external.pp.mnn_correct(*split(tiny, np.repeat([0, 1], 30)), k=20, sigma=0.1, var_adj=True)  # compile
    x, batch = _load(path)
    started, cpu = time.perf_counter(), _cpu_seconds()
    corrected = sc.external.pp.mnn_correct(*split(x, batch), k=20, sigma=0.1, var_adj=True, n_jobs=2)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    np.save(out, np.asarray(corrected[0].X))
    # mnnpy's second return value mixes counters and per-step pair tables: count the tables' rows
    pairs = [int(len(m)) for m in corrected[1] if hasattr(m, "__len__")]
    return {"seconds": seconds, "cpu": cpu, "peak_mb": _peak_rss_mb(), "pairs": pairs}


# --------------------------------------------------------------------------------------- driver
def _run(python: str, method: str, path: str, out: str, timeout: float) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", method, path, out]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")} if method != "mnnpy" else dict(os.environ)
    return run_worker(cmd, timeout, env)


def _mnnpy_python(given: str | None) -> tuple[str | None, str]:
    candidates = [given, os.environ.get("MNNPY_PYTHON"), str(HERE.parent / ".venv-mnnpy" / "bin" / "python")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            check = subprocess.run([candidate, "-c", "import mnnpy"], capture_output=True, text=True)
            if check.returncode == 0:
                return candidate, ""
            return None, f"mnnpy does not import in {candidate}"
    return None, "no mnnpy environment (see ../shared/PEERS.md; pass --mnnpy-python)"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["3x3000x2000", "2x10000x2000"], help="BATCHESxCELLSxGENES")
    parser.add_argument("--mnnpy-python", default=None, help="interpreter of a venv where mnnpy imports")
    parser.add_argument("--mnnpy-max-cells", type=int, default=9000, help="skip mnnpy above this many cells")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per method and size")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        method, path, out = args.worker
        if method == "mnnpy":
            result = _worker_mnnpy(path, out)
        else:
            result = _worker_mnnkit(path, out, approximate=method == "mnnkit-approximate")
        print(json.dumps(result))
        return 0

    import numpy as np

    sys.path.insert(0, str(HERE.parent))
    from benchmarks.synthetic import make_batches

    mnnpy_python, mnnpy_reason = _mnnpy_python(args.mnnpy_python)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            n_batches, n_cells, n_genes = (int(v) for v in size.lower().split("x"))
            adata = make_batches(n_batches, n_cells, n_genes, seed=0)
            path = os.path.join(tmp, f"{size}.npz")
            np.savez(path, x=adata.X, batch=adata.obs["batch"].cat.codes.to_numpy())
            results = {}
            for method in ("mnnkit-exact", "mnnkit-approximate", "mnnpy"):
                out = os.path.join(tmp, f"{size}-{method}.npy")
                if method == "mnnpy":
                    if mnnpy_python is None:
                        results[method] = {"error": mnnpy_reason}
                        continue
                    if n_batches * n_cells > args.mnnpy_max_cells:
                        reason = f"not run above {args.mnnpy_max_cells} cells (--mnnpy-max-cells)"
                        results[method] = {"error": reason}
                        continue
                    results[method] = _run(mnnpy_python, method, path, out, args.timeout)
                else:
                    results[method] = _run(sys.executable, method, path, out, args.timeout)
                if "error" not in results[method]:
                    results[method]["out"] = out
                done = results[method].get("seconds", results[method].get("error"))
                print(f"  {size} {method}: {done}", file=sys.stderr)
            exact = np.load(results["mnnkit-exact"]["out"]) if "out" in results["mnnkit-exact"] else None
            for method, res in results.items():
                if "out" in res and exact is not None and method != "mnnkit-exact":
                    res["max_diff"] = float(np.abs(np.load(res["out"]).astype(np.float64) - exact).max())
            rows.append((size, results))

    header = (
        f"{'data':>14} | {'method':<20} | {'time s':>8} | {'CPU s':>8} | {'speed-up (wall, CPU)':>21} | "
        f"{'peak MB':>8} | {'pairs/step':<14} | max |diff| vs exact"
    )
    print(header)
    print("-" * len(header))
    for size, results in rows:
        base = results["mnnkit-exact"].get("seconds")
        base_cpu = results["mnnkit-exact"].get("cpu")
        for method, res in results.items():
            if "error" in res:
                print(
                    f"{size:>14} | {method:<20} | {'-':>8} | {'-':>8} | {'-':>21} | {'-':>8} | {'-':<14} | "
                    f"{res['error']}"
                )
                continue
            ratio = f"{res['seconds'] / base:.1f}x, {res['cpu'] / base_cpu:.1f}x" if base else "-"
            diff = f"{res['max_diff']:.2e}" if "max_diff" in res else "-"
            pairs = ",".join(map(str, res["pairs"]))
            print(
                f"{size:>14} | {method:<20} | {res['seconds']:8.2f} | {res['cpu']:8.2f} | {ratio:>21} | "
                f"{res['peak_mb']:8.0f} | "
                f"{pairs:<14} | {diff}"
            )
    print(
        "\n'speed-up' = this method's wall / CPU time over mnnkit exact's (for mnnpy: mnnkit's speed-up over it).\n"
        "CPU s = user+system time of all threads and child processes: less sensitive to other load than wall time."
    )
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end of the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
