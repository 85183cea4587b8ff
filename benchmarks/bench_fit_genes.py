"""Benchmark: per-gene negative-binomial fits with ``mnnkit.fit_genes`` on a sparse count matrix.

Default size is the target of the issue: 20,000 genes x 100,000 cells at 5% density
(~1e8 nonzeros). Rows of the printed table, all in one run:

- ``fit_genes`` on CSC and on CSR input (the CSR time includes the conversion to CSC),
  and the other distributions on CSC;
- the peer: statsmodels ``NegativeBinomial`` (intercept-only, Newton) fitted gene by gene on a
  random subsample of genes, extrapolated linearly to all genes (clearly labelled);
- ``mnnkit.stats.fit_nb`` called gene by gene on the same subsample (dense column, extrapolated),
  to separate the algorithm from the vectorisation over genes.

The synthetic matrix places nonzeros as an independent Bernoulli(density) process per gene and
draws nonzero values as 1 + NB(mu_g, alpha_g) with log-normal gene means and dispersions.

Usage::

    python benchmarks/bench_fit_genes.py                    # full size
    python benchmarks/bench_fit_genes.py --genes 500 --cells 5000 --peer-genes 3   # smoke run
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import numpy as np
from anndata import AnnData
from scipy import sparse

import mnnkit
from mnnkit.stats import fit_nb


def make_counts(n_genes: int, n_cells: int, density: float, seed: int) -> sparse.csc_array:
    rng = np.random.default_rng(seed)
    indptr = np.zeros(n_genes + 1, dtype=np.int64)
    rows, vals = [], []
    block = 256
    draws = int(density * n_cells * 1.2 + 10 * np.sqrt(density * n_cells) + 20)
    for start in range(0, n_genes, block):
        g = min(block, n_genes - start)
        pos = np.cumsum(rng.geometric(density, size=(g, draws)), axis=1) - 1
        keep = pos < n_cells
        assert not keep[:, -1].any(), "increase draws"
        mu = np.exp(rng.normal(0.0, 1.2, size=(g, 1)))
        alpha = np.exp(rng.normal(-1.0, 0.8, size=(g, 1)))
        v = 1 + rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu), size=(g, draws))
        rows.append(pos[keep].astype(np.int32))
        vals.append(v[keep].astype(np.float32))
        indptr[start + 1 : start + g + 1] = keep.sum(axis=1)
    np.cumsum(indptr, out=indptr)
    return sparse.csc_array((np.concatenate(vals), np.concatenate(rows), indptr), shape=(n_cells, n_genes))


def timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return time.perf_counter() - t0, out


def peer_statsmodels(columns: list[np.ndarray]) -> tuple[float, list[tuple[float, float]]]:
    import statsmodels.api as sm

    est = []
    t0 = time.perf_counter()
    for y in columns:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.NegativeBinomial(y, np.ones(y.size)).fit(disp=0, method="newton", maxiter=100)
        est.append((float(np.exp(res.params[0])), float(res.params[1])))
    return time.perf_counter() - t0, est


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--peer-genes", type=int, default=8, help="genes fitted by statsmodels (extrapolated)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t_gen, csc = timed(make_counts, args.genes, args.cells, args.density, args.seed)
    print(
        f"matrix: {args.cells} cells x {args.genes} genes, density {csc.nnz / (args.cells * args.genes):.4f}, "
        f"nnz {csc.nnz:,}, max count {int(csc.data.max())}, "
        f"float32 CSC ({(csc.data.nbytes + csc.indices.nbytes) / 2**20:.0f} MiB); generated in {t_gen:.1f} s"
    )
    # compile (or load from Numba's cache) on a tiny matrix first; reported separately
    tiny = AnnData(X=sparse.csc_array(np.array([[0, 1, 5], [2, 0, 7], [1, 3, 0]], dtype=np.float32)))
    t_compile = sum(
        timed(mnnkit.fit_genes, tiny, layer=None, distribution=d)[0] for d in ("poisson", "nb", "zip", "zinb")
    )

    rows = []
    adata = AnnData(X=csc)
    t, _ = timed(mnnkit.fit_genes, adata, layer=None, distribution="nb")
    rows.append(("mnnkit.fit_genes nb, CSC", "all", t))
    var = adata.var.copy()
    csr = csc.tocsr()
    adata_csr = AnnData(X=csr)
    t, _ = timed(mnnkit.fit_genes, adata_csr, layer=None, distribution="nb")
    rows.append(("mnnkit.fit_genes nb, CSR (incl. tocsc)", "all", t))
    same = np.array_equal(adata_csr.var["nb_dispersion"].to_numpy(), var["nb_dispersion"].to_numpy(), equal_nan=True)
    del adata_csr, csr
    for dist in ("poisson", "zip", "zinb"):
        t, _ = timed(mnnkit.fit_genes, adata, layer=None, distribution=dist)
        rows.append((f"mnnkit.fit_genes {dist}, CSC", "all", t))

    rng = np.random.default_rng(args.seed + 1)
    ok = np.flatnonzero(var["nb_status"].to_numpy() == "ok")
    pick = np.sort(rng.choice(ok, size=min(args.peer_genes, ok.size), replace=False))
    columns = [csc[:, [j]].toarray().ravel() for j in pick]
    t_sm, est = peer_statsmodels(columns)
    rows.append(("statsmodels NegativeBinomial per gene", f"{pick.size} (extrapolated)", t_sm / pick.size * args.genes))
    t0 = time.perf_counter()
    for y in columns:
        fit_nb(y)
    t_nb = time.perf_counter() - t0
    rows.append(
        ("mnnkit.stats.fit_nb per gene (dense column)", f"{pick.size} (extrapolated)", t_nb / pick.size * args.genes)
    )

    rel = max(
        max(abs(m - var["nb_mean"].iloc[j]) / m, abs(a - var["nb_dispersion"].iloc[j]) / a)
        for (m, a), j in zip(est, pick, strict=True)
    )
    ref = rows[0][2]
    print(f"\ncompile/cache load (4 models, tiny matrix): {t_compile:.2f} s")
    print(f"\n| method | genes timed | time for {args.genes} genes (s) | relative to fit_genes CSC |")
    print("|---|---|---|---|")
    for name, genes, t in rows:
        print(f"| {name} | {genes} | {t:.2f} | {t / ref:.1f}x |")
    status = var["nb_status"].value_counts().to_dict()
    print(f"\nNB status counts: {status}; CSR and CSC results identical: {same}")
    print(f"max relative difference fit_genes vs statsmodels (mu, alpha) on the subsample: {rel:.2e}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
