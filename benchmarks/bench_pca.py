"""PCA of a sparse matrix: ``mnnkit.pca`` against ``scanpy.pp.pca`` side by side in one run.

Usage::

    python benchmarks/bench_pca.py                                   # 100000 cells x 20000 genes, 5% dense
    python benchmarks/bench_pca.py --cells 5000 --genes 2000         # a quick smoke run

The matrix (CSR, float32 values, int32 indices) is generated once, chunk by chunk, into a temporary
directory: 20 cell groups, each with its own gene means, so the leading components carry signal;
each gene is stored in a cell with probability ``density``, holding ``log1p`` of a Poisson count.
Each method then runs in its own subprocess, which loads the arrays (no copy), builds the AnnData,
runs the method once on a tiny matrix (Numba compilation is not timed) and times one call with
``n_comps`` components. Memory: the subprocess's peak resident set size (``ru_maxrss``), and
that peak minus the resident size just before the timed call (the method's own working memory).

scanpy's default for sparse input is ARPACK (via scikit-learn, implicit centring, float32 operator);
mnnkit uses its randomized subspace iteration (default ``n_iter``). The accuracy columns compare each
method's explained variances with the most accurate of the two runs (per component, the larger
variance is the better approximation: both are Rayleigh-Ritz values, which never exceed the truth).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))
from benchmarks._process import cpu_seconds, peak_mb, reset_peak, rss_mb  # noqa: E402


# --------------------------------------------------------------------------------------- data
def make_data(folder: Path, n_cells: int, n_genes: int, density: float, seed: int = 0) -> None:
    """Write ``data.npy``, ``indices.npy``, ``indptr.npy`` (int32) of a structured random CSR matrix.

    Stored positions: each gene is present in a cell with probability ``density`` (geometric gaps,
    so indices come out sorted); values: ``log1p(1 + Poisson(mean of the cell's group for that gene))``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    n_groups = 20
    base = rng.gamma(0.6, 2.0, size=n_genes)
    group_means = base * rng.lognormal(0.0, 1.5, size=(n_groups, n_genes))
    groups = rng.integers(0, n_groups, size=n_cells)
    width = int(density * n_genes * 1.25 + 50)
    chunk = max(1, 4_000_000 // width)
    data, indices, counts = [], [], []
    for r0 in range(0, n_cells, chunk):
        r1 = min(n_cells, r0 + chunk)
        pos = np.cumsum(rng.geometric(density, size=(r1 - r0, width)), axis=1) - 1
        valid = pos < n_genes
        counts.append(valid.sum(axis=1))
        rows = np.broadcast_to(groups[r0:r1, None], pos.shape)[valid]
        cols = pos[valid]
        indices.append(cols.astype(np.int32))
        data.append(np.log1p(1.0 + rng.poisson(group_means[rows, cols])).astype(np.float32))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    if indptr[-1] >= 2**31:
        msg = "too many stored entries for int32 indices"
        raise ValueError(msg)
    np.save(folder / "data.npy", np.concatenate(data))
    del data
    np.save(folder / "indices.npy", np.concatenate(indices))
    del indices
    np.save(folder / "indptr.npy", indptr.astype(np.int32))
    (folder / "shape.json").write_text(json.dumps([n_cells, n_genes]))


def _load_adata(folder: Path):
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    shape = tuple(json.loads((folder / "shape.json").read_text()))
    X = sp.csr_matrix(
        (np.load(folder / "data.npy"), np.load(folder / "indices.npy"), np.load(folder / "indptr.npy")),
        shape=shape,
        copy=False,
    )
    X.has_sorted_indices = True
    return ad.AnnData(X)


# --------------------------------------------------------------------------------------- workers
def _worker(method: str, folder: Path, n_comps: int, out: Path) -> dict:
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    if method == "mnnkit":
        import mnnkit

        def run(a):
            mnnkit.pca(a, n_comps=n_comps)

    else:
        import scanpy as sc

        def run(a):
            sc.pp.pca(a, n_comps=n_comps)

    tiny = ad.AnnData(sp.random(300, 200, density=0.1, format="csr", dtype=np.float32, random_state=0))
    run(tiny)  # compile / import everything: not timed
    adata = _load_adata(folder)
    reset = reset_peak()  # so the peak below is the method's own, not the data loading's
    before = rss_mb()
    cpu = cpu_seconds()
    started = time.perf_counter()
    run(adata)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    np.save(out / f"{method}_variance.npy", np.asarray(adata.uns["pca"]["variance"], dtype=np.float64))
    np.save(out / f"{method}_loadings.npy", np.asarray(adata.varm["PCs"], dtype=np.float64))
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": peak_mb(),
        "extra_mb": peak_mb() - before,
        "rss_before_mb": before,
        "peak_reset": reset,
        "variance_ratio_sum": float(np.sum(adata.uns["pca"]["variance_ratio"])),
    }


def _run_worker(method: str, folder: Path, n_comps: int, out: Path) -> dict:
    cmd = [sys.executable, str(HERE), "--worker", method, "--folder", str(folder), "--n-comps", str(n_comps)]
    cmd += ["--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--n-comps", type=int, default=50)
    parser.add_argument("--methods", default="mnnkit,scanpy")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(_worker(args.worker, Path(args.folder), args.n_comps, Path(args.out))))
        return

    import numpy as np

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_pca_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        make_data(folder, args.cells, args.genes, args.density)
        nnz = int(np.load(folder / "indptr.npy", mmap_mode="r")[-1])
        print(
            f"# data: {args.cells} cells x {args.genes} genes, {nnz} stored entries "
            f"({nnz / args.cells / args.genes:.1%}), CSR float32 ({(8 * nnz + 4 * args.cells) / 2**20:.0f} MiB); "
            f"generated in {time.perf_counter() - t0:.0f} s; n_comps={args.n_comps}"
        )
        results = {m: _run_worker(m, folder, args.n_comps, folder) for m in args.methods.split(",")}
        variances = {m: np.load(folder / f"{m}_variance.npy") for m, r in results.items() if "error" not in r}
        loadings = {m: np.load(folder / f"{m}_loadings.npy") for m, r in results.items() if "error" not in r}

    best = np.max(np.vstack(list(variances.values())), axis=0) if variances else None
    ref = results.get("scanpy", {})
    header = (
        f"{'method':<8} {'time (s)':>9} {'x scanpy':>9} {'CPU (s)':>8} {'peak RSS (MiB)':>15} {'extra (MiB)':>12} "
        f"{'x scanpy':>9} {'sum var ratio':>14} {'max rel. var err':>17} {'top-10 err':>11}"
    )
    print(header)
    print("-" * len(header))
    for m, r in results.items():
        if "error" in r:
            print(f"{m:<8} failed: {r['error']}")
            continue
        err = np.abs(variances[m] / best - 1)
        t_ratio = r["seconds"] / ref["seconds"] if "seconds" in ref else float("nan")
        m_ratio = r["extra_mb"] / ref["extra_mb"] if ref.get("extra_mb") else float("nan")
        print(
            f"{m:<8} {r['seconds']:>9.1f} {t_ratio:>9.2f} {r['cpu_seconds']:>8.1f} {r['peak_mb']:>15.0f} "
            f"{r['extra_mb']:>12.0f} {m_ratio:>9.2f} {r['variance_ratio_sum']:>14.5f} "
            f"{err.max():>17.1e} {err[:10].max():>11.1e}"
        )
    print(f"# load average before the run: {load[0]:.1f} (machine has {os.cpu_count()} CPUs)")
    if len(loadings) == 2:
        a, b = (loadings[m] for m in loadings)
        for k in (10, args.n_comps):
            cos = np.linalg.svd(a[:, :k].T @ b[:, :k], compute_uv=False)
            print(
                f"# largest principal angle between the two top-{k} loading subspaces: sin = "
                f"{np.sqrt(max(0.0, 1 - cos.min() ** 2)):.1e}"
            )


if __name__ == "__main__":
    main()
