"""Time mnnkit.neighbors / mnnkit.metrics against the reference implementations.

Run: ``python benchmarks/bench_metrics.py [n_cells]`` (default 20000). Prints one line per comparison with
wall times and the largest absolute difference of the results. Uses the machine's BLAS threads.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from sklearn.datasets import make_blobs


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main(n_cells: int = 20000) -> None:
    from sklearn.metrics import silhouette_samples as sk_silhouette
    from sklearn.neighbors import NearestNeighbors

    from mnnkit.metrics import lisi, silhouette_samples
    from mnnkit.neighbors import knn

    x, labels = make_blobs(n_samples=n_cells, n_features=30, centers=8, cluster_std=4.0, random_state=0)
    batch = np.random.default_rng(0).integers(0, 3, n_cells)
    knn(x[:100], x[:100], 5)  # compile the kernels outside the timings
    lisi(x[:200], batch[:200])

    ours, t_ours = _timed(knn, x, x, 90, exclude_self=True)
    (dist, idx), t_ref = _timed(NearestNeighbors(n_neighbors=90).fit(x).kneighbors)
    same = np.mean(ours.indices == idx)
    print(
        f"knn exact k=90: mnnkit {t_ours:.2f}s, sklearn {t_ref:.2f}s, index agreement {same:.6f}, "
        f"max |dist diff| {np.abs(ours.distances - dist).max():.2e}"
    )

    approx, t_app = _timed(knn, x, x, 90, method="pynndescent", exclude_self=True)
    recall = np.mean([np.isin(a, b).mean() for a, b in zip(approx.indices, ours.indices, strict=True)])
    print(f"knn pynndescent k=90: {t_app:.2f}s (incl. compile), recall {recall:.4f}")

    try:
        from harmonypy import compute_lisi
    except ImportError:
        print("harmonypy not installed: LISI comparison skipped")
    else:
        mine, t_mine = _timed(lisi, ours, batch)
        ref, t_h = _timed(compute_lisi, x, pd.DataFrame({"b": batch}), ["b"])
        print(
            f"lisi (given neighbours): mnnkit {t_mine:.2f}s, harmonypy {t_h:.2f}s (incl. its kNN), "
            f"max |diff| {np.abs(mine - ref[:, 0]).max():.2e}"
        )

    sub = min(n_cells, 10000)
    mine, t_mine = _timed(silhouette_samples, x[:sub], labels[:sub])
    ref, t_sk = _timed(sk_silhouette, x[:sub], labels[:sub])
    print(f"silhouette n={sub}: mnnkit {t_mine:.2f}s, sklearn {t_sk:.2f}s, max |diff| {np.abs(mine - ref).max():.2e}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
