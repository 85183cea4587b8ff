"""Time mnnkit.neighbors / mnnkit.metrics against the reference implementations.

Run: ``python benchmarks/bench_metrics.py [n_cells]`` (default 20000). Prints one line per comparison with
wall times and the largest absolute difference of the results. Uses the machine's BLAS threads.

With scib-metrics installed (the test extra), also compares the metrics that share its names, on the same
neighbours (scib-metrics' lists with each cell first). scib-metrics runs in its default float32 JAX mode,
as its users run it, so differences of ~1e-6 there are float32 rounding; each side is warmed up (numba and
JAX compilation) on a small subset first.
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

    _compare_scib(x, labels, batch)


def _scib_form(nn, k):
    """scib-metrics' neighbour lists: each cell first (distance 0), then mnnkit's first ``k`` neighbours."""
    from scib_metrics.nearest_neighbors import NeighborsResults

    rows = np.arange(nn.n_obs)[:, None]
    distances = np.hstack([np.zeros(rows.shape), nn.distances[:, :k]])
    return NeighborsResults(indices=np.hstack([rows, nn.indices[:, :k]]), distances=distances)


def _compare_scib(x, labels, batch) -> None:
    try:
        import scib_metrics
        from scib_metrics.nearest_neighbors import NeighborsResults
    except ImportError:
        print("scib-metrics not installed: scIB comparisons skipped")
        return
    from mnnkit.metrics import clisi, graph_connectivity, ilisi, kbet_global_acceptance, kbet_per_label
    from mnnkit.neighbors import knn

    # a mixing problem with an answer between the bounds: batches shifted apart within each label
    shifted = x + 1.5 * np.eye(x.shape[1])[batch]
    small = knn(shifted[:1000], shifted[:1000], 50, exclude_self=True)  # compile both sides outside the timings
    kbet_per_label(small, batch[:1000], labels[:1000])
    scib_metrics.kbet_per_label(_scib_form(small, 50), batch[:1000], labels[:1000])
    scib_metrics.ilisi_knn(_scib_form(small, 50), batch[:1000], perplexity=16)
    nn = knn(shifted, shifted, 90, exclude_self=True)
    no_self = NeighborsResults(indices=nn.indices[:, :50], distances=nn.distances[:, :50])
    cases = {
        "ilisi (90 nn)": (
            lambda: ilisi(nn, batch),
            lambda: scib_metrics.ilisi_knn(_scib_form(nn, 90), batch, perplexity=30),
        ),
        "clisi (90 nn)": (
            lambda: clisi(nn, labels),
            lambda: scib_metrics.clisi_knn(_scib_form(nn, 90), labels, perplexity=30),
        ),
        "graph_connectivity (15 nn)": (
            lambda: graph_connectivity(nn, labels, n_neighbors=15),
            lambda: scib_metrics.graph_connectivity(_scib_form(nn, 15), labels),
        ),
        "kbet_global_acceptance (50 nn)": (
            lambda: kbet_global_acceptance(nn, batch, n_neighbors=50),
            lambda: scib_metrics.kbet(no_self, batch)[0],
        ),
        "kbet_per_label (50 nn)": (
            lambda: kbet_per_label(nn, batch, labels, n_neighbors=50),
            lambda: scib_metrics.kbet_per_label(_scib_form(nn, 50), batch, labels),
        ),
    }
    for name, (mine_fn, ref_fn) in cases.items():
        mine, t_mine = _timed(mine_fn)
        ref, t_ref = _timed(ref_fn)
        print(
            f"{name}: mnnkit {t_mine:.2f}s, scib-metrics {t_ref:.2f}s, values {mine:.6f} vs {ref:.6f}, "
            f"|diff| {abs(mine - ref):.1e}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
