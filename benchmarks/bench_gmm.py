"""Gaussian mixture EM: ``mnnkit.GaussianMixture`` against scikit-learn side by side in one run.

Usage::

    python benchmarks/bench_gmm.py                                 # 100000 points x 50 dims, 10 components
    python benchmarks/bench_gmm.py --n 5000 --dims 10              # a quick smoke run

The data (a mixture of ``components`` Gaussians with overlapping clusters: close centres,
covariances sharing a common factor) are generated once and saved to a temporary file. Each
estimator runs in its own subprocess with the same parameters (``covariance_type``,
``random_state=0``, default ``tol``/``max_iter``/k-means initialisation), so both start from the
same k-means labels and follow the same EM path: the table shows that they reach the same final
lower bound. Each subprocess first fits a tiny data set (Numba compilation and imports are not
timed), then times one ``fit`` (k-means initialisation included) and, separately, the
initialisation alone (``max_iter=0``) so the EM part can be compared on its own. scikit-learn is
run twice: as installed (multi-threaded BLAS) and with BLAS limited to one thread, which is faster
on a busy machine. CPU: user + system seconds of the process during the fit. Memory: peak resident
set size during the fit (``VmHWM``, reset just before the fit through ``/proc/self/clear_refs``)
and that peak minus the resident size before the fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))
from benchmarks._process import cpu_seconds, peak_mb, reset_peak, rss_mb  # noqa: E402


def make_data(path: Path, n: int, dims: int, components: int, seed: int = 0) -> None:
    """Overlapping Gaussian clusters: close centres, covariances = a common factor plus a perturbation."""
    import numpy as np

    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 1.0, size=(dims, dims)) / np.sqrt(dims)
    centres = rng.normal(0.0, 0.4, size=(components, dims))
    labels = rng.integers(0, components, size=n)
    X = np.empty((n, dims))
    for k in range(components):
        rows = labels == k
        A = common + 0.3 * rng.normal(0.0, 1.0, size=(dims, dims)) / np.sqrt(dims)
        X[rows] = centres[k] + rng.standard_normal((rows.sum(), dims)) @ A
    np.save(path, X)


def _worker(method: str, path: Path, components: int, covariance_type: str) -> dict:
    import numpy as np

    if method == "mnnkit":
        from mnnkit import GaussianMixture
    else:
        from sklearn.mixture import GaussianMixture
    if method == "sklearn-1blas":  # the same, with BLAS limited to one thread (less contention on busy machines)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")

    def model(**kw):
        return GaussianMixture(n_components=components, covariance_type=covariance_type, random_state=0, **kw)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model().fit(np.random.default_rng(1).standard_normal((max(500, 5 * components), 4)))  # compile, import
    X = np.load(path)
    reset_peak()  # so the peak below is the fit's own, not the data loading's
    before = rss_mb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = cpu_seconds()
        started = time.perf_counter()
        fitted = model().fit(X)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu
        peak = peak_mb()
        init_seconds = np.inf
        for _ in range(2):  # the initialisation alone (k-means + one E-step): best of two
            started = time.perf_counter()
            model(max_iter=0).fit(X)
            init_seconds = min(init_seconds, time.perf_counter() - started)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "init_seconds": init_seconds,
        "n_iter": int(fitted.n_iter_),
        "converged": bool(fitted.converged_),
        "lower_bound": float(fitted.lower_bound_),
        "peak_mb": peak,
        "extra_mb": peak - before,
        "means": fitted.means_.tolist(),
    }


def _run_worker(method: str, path: Path, components: int, covariance_type: str) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", method, "--path", str(path)]
    cmd += ["--components", str(components), "--covariance-type", covariance_type]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=50)
    parser.add_argument("--components", type=int, default=10)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_worker(args.worker, Path(args.path), args.components, args.covariance_type)))
        return

    import numpy as np

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_gmm_") as tmp:
        path = Path(tmp) / "x.npy"
        make_data(path, args.n, args.dims, args.components)
        print(
            f"# data: {args.n} points x {args.dims} dims, {args.components} components, "
            f"covariance_type={args.covariance_type!r}"
        )
        methods = ("mnnkit", "sklearn", "sklearn-1blas")
        results = {m: _run_worker(m, path, args.components, args.covariance_type) for m in methods}

    ref = results["sklearn"]
    header = (
        f"{'method':<13} {'fit (s)':>8} {'x sklearn':>10} {'EM (s)':>7} {'x sklearn':>10} {'s/iter':>7} "
        f"{'n_iter':>6} {'lower bound':>16} {'CPU (s)':>8} {'peak RSS (MiB)':>15} {'extra (MiB)':>12}"
    )
    print(header)
    print("-" * len(header))
    for m, r in results.items():
        if "error" in r:
            print(f"{m:<13} failed: {r['error']}")
            continue
        em = r["seconds"] - r["init_seconds"]
        ref_em = ref.get("seconds", np.nan) - ref.get("init_seconds", np.nan)
        print(
            f"{m:<13} {r['seconds']:>8.2f} {r['seconds'] / ref.get('seconds', np.nan):>10.2f} {em:>7.2f} "
            f"{em / ref_em:>10.2f} {em / max(r['n_iter'], 1):>7.3f} {r['n_iter']:>6d} {r['lower_bound']:>16.10f} "
            f"{r['cpu_seconds']:>8.1f} {r['peak_mb']:>15.0f} {r['extra_mb']:>12.0f}"
        )
    if "error" not in ref and "error" not in results["mnnkit"]:
        diff = abs(results["mnnkit"]["lower_bound"] - ref["lower_bound"])
        mdiff = np.abs(np.array(results["mnnkit"]["means"]) - np.array(ref["means"])).max()
        print(f"# mnnkit vs sklearn: |lower bound difference| = {diff:.2e}; max |means difference| = {mdiff:.2e}")
    ok = [m for m in ("sklearn", "sklearn-1blas") if "error" not in results[m]]
    if ok and "error" not in results["mnnkit"]:
        fastest = min(ok, key=lambda m: results[m]["seconds"])
        ratio = results[fastest]["seconds"] / results["mnnkit"]["seconds"]
        print(f"# mnnkit fit is {ratio:.1f}x faster than the faster scikit-learn run ({fastest})")
    print(f"# load average before the run: {load[0]:.1f} (machine has {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
