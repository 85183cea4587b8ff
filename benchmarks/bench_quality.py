"""Integration quality of mnnkit's corrections against peers, scored with scib-metrics (issue 15).

Run: ``python benchmarks/bench_quality.py [--quick] [--methods NAME ...] [--datasets NAME ...] [--json PATH]``
(``--list`` prints the method and data set names). Needs the benchmark extras of the test environment:
scib-metrics, harmonypy, scanorama, scranpy (a missing one makes its rows errors, not a crash).

Data sets
    The labelled shared data sets in ``../shared/data`` (``--data-dir``): cider_pancreas (350 cells, human vs
    mouse), canek_simbatches (1579 cells, three cell types in one batch only), kang_pbmc (2000 cells,
    ctrl vs stim, approximate marker-based labels) and harmony_cell_lines (3 batches; a seeded subsample of
    2000 of its 9478 cells; it holds only 20 PCs, so the methods that need genes are skipped there). And
    the synthetic sets of :func:`benchmarks.synthetic.quality_scenarios`, one per failure mode of
    batchelor's MNN: batch sizes 1:5 and 1:10, batch-unique cell types, 3 batches (also run in every merge
    order) and 10 batches. Their batch effect is a per-batch linear map of the latent biology, a gene-wise
    scale and shift, and count noise: removing batch means does not align the cell types.

Preprocessing, identical for every method
    Counts: ``normalize_total`` + ``log1p``. Then at most 2000 highly variable genes (``batch_key='batch'``;
    canek's 500 genes are all kept) and one PCA (50 components, arpack, seed 0) per data set, in
    ``obsm['X_pca']``. Embedding methods correct that PCA; gene methods (mnnkit classic, ComBat) correct
    the same HVG matrix, and their output gets a PCA with the same settings (outside the timing).

Methods (``REGISTRY``; a new entry is one line)
    ``mnnkit fast``: ``mnnkit.fast_mnn(adata, 'batch', use_rep='X_pca')`` (``obsm['X_mnn']``).
    ``mnnkit classic``: ``mnnkit.correct`` on the HVG matrix (``layers['mnn']``), then PCA.
    With a ``flavor`` parameter in the installed mnnkit these get ``flavor='batchelor'``, and the entries
    ``mnnkit fast robust`` / ``mnnkit classic robust`` pass ``flavor='robust'``; without it the robust
    entries are skipped with a note. Extra, not run by default: ``mnnkit fast auto`` and
    ``mnnkit classic auto`` (``merge_order='auto'``), ``mnnkit fast dual-softmax`` (the robust flavour
    with ``pairing='dual_softmax'``), and ``label-aware shift``: not a method but a reference that reads the
    labels, moving each batch by the mean difference of its shared types' centres from the largest batch's
    (what aligning the shared types by one shift per batch gives, e.g. for ``uniq own``).
    Peers: harmony (``harmonypy.run_harmony`` on the PCA, seed 0), scanorama (``scanorama.assemble`` on each
    batch's PCs, as ``scanpy.external.pp.scanorama_integrate`` does; not ``scanorama.integrate`` on genes),
    scranpy MNN (``scranpy.correct_mnn`` on the PCs, dims x cells, its default merge policy), ComBat
    (``sc.pp.combat`` on the HVG matrix, then PCA) and uncorrected (the PCA itself).

Scores
    scib-metrics' ``Benchmarker`` (through ``mnnkit.metrics.benchmark``, exact neighbours) with its default
    bio-conservation (isolated labels, KMeans NMI/ARI, silhouette label, cLISI) and batch-correction (BRAS,
    iLISI, kBET, graph connectivity, PCR comparison against the uncorrected PCA) metrics,
    **raw scores, min_max_scale=False**: a method's Total does not depend on which other methods ran.
    Total = 0.6 Bio + 0.4 Batch, each the plain mean of its metrics, as the Benchmarker computes them.
    One substitution for speed: kBET is ``mnnkit.metrics.kbet_per_label`` (scib-metrics' ``kbet_per_label``
    computation, tested equal on the same neighbours; here exact neighbours in its diffusion maps where
    scib-metrics uses pynndescent), on the same 50-neighbour lists (``n_neighbors=49`` plus the cell itself).
    scib-metrics' own kBET took 10-80 s per embedding here (JAX recompiles for every label size); on
    kang_pbmc the two agreed within 0.0025.
    Diagnostics of the issue: ``uniq own`` = the share of own-batch cells among the 15 nearest neighbours
    (exact, self excluded) of cells whose type exists in one batch only (target >= 0.95); for 3-batch sets
    marked for it, Total in each of the 6 merge orders and their spread (max - min; target <= 0.01):
    mnnkit's batchelor-flavour entries get ``merge_order``; the others, the robust flavour included (its
    default order is chosen from the batch sizes), get the cells and batch categories in that order (the
    embedding is put back in the original order before scoring).

Time is the correction call only (``time.perf_counter``), after one untimed warm-up run of every method on
a tiny data set (numba compilation), with the libraries' default threads. Each method's failure becomes a
row with its error. Scoring runs with one BLAS thread: on this 2-core machine, shared with other jobs,
OpenBLAS' spinning threads made ARPACK in kBET's diffusion maps 50x slower (4.9 s -> 0.09 s for 800 cells).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import itertools
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.synthetic import make_latent_batches, quality_scenarios  # noqa: E402

BATCH = "batch"
LABEL = "cell_type"
N_HVG = 2000
N_PCS = 50
SEED = 0
UNIQUE_K = 15
KBET_NEIGHBOURS = 49  # scib-metrics' 50-neighbour list includes the cell itself
SUBSAMPLE = 2000
DEFAULT_DATA_DIR = HERE.parent.parent / "shared" / "data"
PEERS = ("harmony", "scanorama", "scranpy mnn", "combat")

# ---------------------------------------------------------------------------------------------------- data


@dataclass
class DataSet:
    name: str
    adata: ad.AnnData  # X: log-normalised HVG matrix (or no genes); obsm['X_pca']; obs batch, cell_type
    note: str
    permute: bool = False  # also score every merge order of its (3) batches
    unique_types: list[str] = field(default_factory=list)

    @property
    def has_genes(self) -> bool:
        return self.adata.n_vars > 0


def _pca(x, n_comps: int) -> np.ndarray:
    import scanpy as sc

    n_comps = min(n_comps, min(x.shape) - 1)
    return np.asarray(sc.pp.pca(x, n_comps=n_comps, svd_solver="arpack", random_state=SEED), dtype=np.float64)


def _prepare(name: str, adata: ad.AnnData, *, counts: bool, note: str, permute: bool = False) -> DataSet:
    """Normalise (counts only), HVG, one PCA: the input every method gets."""
    import scanpy as sc

    adata = ad.AnnData(adata.X, obs=adata.obs[[BATCH, LABEL]].copy(), var=pd.DataFrame(index=adata.var_names))
    adata.obs[BATCH] = adata.obs[BATCH].astype(str).astype("category")
    adata.obs[LABEL] = adata.obs[LABEL].astype(str).astype("category")
    adata.X = adata.X.astype(np.float32)
    if counts:
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
    if adata.n_vars > N_HVG:
        sc.pp.highly_variable_genes(adata, n_top_genes=N_HVG, batch_key=BATCH)
        adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
        adata.var = pd.DataFrame(index=adata.var_names)
    adata.obsm["X_pca"] = _pca(adata.X, N_PCS)
    return _finish(name, adata, note, permute)


def _finish(name: str, adata: ad.AnnData, note: str, permute: bool) -> DataSet:
    per_type = adata.obs.groupby(LABEL, observed=True)[BATCH].nunique()
    unique = sorted(per_type.index[per_type == 1].astype(str))
    return DataSet(name, adata, note, permute=permute, unique_types=unique)


def _shared(data_dir: Path, filename: str) -> ad.AnnData:
    path = data_dir / filename
    if not path.is_file():
        msg = f"shared data file {path} not found (see --data-dir)"
        raise FileNotFoundError(msg)
    return ad.read_h5ad(path)


def _cider(data_dir: Path, quick: bool) -> DataSet:
    adata = _shared(data_dir, "cider_pancreas_human_mouse.h5ad")
    return _prepare("cider_pancreas", adata, counts=True, note="real, human vs mouse, 5 shared types")


def _canek(data_dir: Path, quick: bool) -> DataSet:
    adata = _shared(data_dir, "canek_simbatches.h5ad")
    note = "simulated log-expression, 3 batch-unique types"
    return _prepare("canek_simbatches", adata, counts=False, note=note)


def _kang(data_dir: Path, quick: bool) -> DataSet:
    adata = _shared(data_dir, "kang_pbmc_ifnb_harmony.h5ad")
    adata.obs[LABEL] = adata.obs["cell_type_approx"]
    return _prepare("kang_pbmc", adata, counts=True, note="real, ctrl vs IFN-b, approximate marker labels")


def _cell_lines(data_dir: Path, quick: bool) -> DataSet:
    full = _shared(data_dir, "harmony_cell_lines_pcs.h5ad")
    keep = np.sort(np.random.default_rng(SEED).choice(full.n_obs, size=min(SUBSAMPLE, full.n_obs), replace=False))
    obs = full.obs.iloc[keep][[BATCH, LABEL]].copy()
    for key in (BATCH, LABEL):
        obs[key] = obs[key].astype(str).astype("category")
    adata = ad.AnnData(np.zeros((keep.size, 0), dtype=np.float32), obs=obs)
    adata.obsm["X_pca"] = np.asarray(full.obsm["X_pca"][keep], dtype=np.float64)
    note = f"real, 3 batches, embedding only (given 20 PCs), {keep.size} of {full.n_obs} cells (seed {SEED})"
    return _finish("harmony_cell_lines", adata, note, permute=False)


SHARED_SETS: dict[str, Callable[[Path, bool], DataSet]] = {
    "cider_pancreas": _cider,
    "canek_simbatches": _canek,
    "kang_pbmc": _kang,
    "harmony_cell_lines": _cell_lines,
}
SYNTHETIC_NOTES = {
    "syn_1to5": "synthetic, batch sizes 1:5",
    "syn_1to10": "synthetic, batch sizes 1:10",
    "syn_unique": "synthetic, 3 batch-unique types",
    "syn_3batches": "synthetic, 3 batches, all 6 merge orders",
    "syn_10batches": "synthetic, 10 batches",
}
QUICK_SETS = ("cider_pancreas", "syn_1to5", "syn_unique", "syn_3batches")


def load_datasets(names: list[str], data_dir: Path, quick: bool) -> list[DataSet]:
    out = []
    synthetic = {}
    if any(name in SYNTHETIC_NOTES for name in names):
        synthetic = quality_scenarios(quick=quick)
    for name in names:
        if name in SHARED_SETS:
            out.append(SHARED_SETS[name](data_dir, quick))
        elif name in synthetic:
            note = SYNTHETIC_NOTES[name]
            out.append(_prepare(name, synthetic[name], counts=True, note=note, permute=name == "syn_3batches"))
        else:
            msg = f"data set {name!r} is not available{' with --quick' if quick else ''}."
            raise ValueError(msg)
    return out


# ------------------------------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """``fn(adata) -> embedding`` (cells x dims) or, with ``needs_genes``, a corrected cells x genes matrix.

    ``adata`` is a fresh AnnData per call: X = the HVG matrix, obs ``batch`` and ``cell_type``,
    obsm ``X_pca``. With ``takes_merge_order`` the permutation runs call ``fn(adata, merge_order=[...])``.
    """

    fn: Callable[..., np.ndarray]
    needs_genes: bool = False
    takes_merge_order: bool = False


def _mnnkit_fast(adata: ad.AnnData, **kwargs) -> np.ndarray:
    import mnnkit

    mnnkit.fast_mnn(adata, BATCH, use_rep="X_pca", **kwargs)
    return np.asarray(adata.obsm["X_mnn"])


def _mnnkit_classic(adata: ad.AnnData, **kwargs) -> np.ndarray:
    import mnnkit

    mnnkit.correct(adata, BATCH, **kwargs)
    return adata.layers["mnn"]


def _harmony(adata: ad.AnnData) -> np.ndarray:
    import harmonypy

    pcs = np.asarray(adata.obsm["X_pca"])
    out = np.asarray(harmonypy.run_harmony(pcs, adata.obs, [BATCH], random_state=SEED, verbose=False).Z_corr)
    return out if out.shape == pcs.shape else out.T


def _scanorama(adata: ad.AnnData) -> np.ndarray:
    import scanorama

    pcs = np.asarray(adata.obsm["X_pca"])
    batch = adata.obs[BATCH].to_numpy()
    names = list(adata.obs[BATCH].cat.categories)
    rows = [np.flatnonzero(batch == name) for name in names]
    parts = scanorama.assemble([pcs[r].copy() for r in rows], ds_names=names, verbose=0)
    out = np.empty_like(pcs)
    for r, part in zip(rows, parts, strict=True):
        out[r] = part
    return out


def _scranpy(adata: ad.AnnData) -> np.ndarray:
    import scranpy

    pcs = np.asarray(adata.obsm["X_pca"], dtype=np.float64)
    return np.asarray(scranpy.correct_mnn(np.ascontiguousarray(pcs.T), adata.obs[BATCH].to_numpy())["corrected"]).T


def _combat(adata: ad.AnnData) -> np.ndarray:
    import scanpy as sc

    adata.X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    return sc.pp.combat(adata, key=BATCH, inplace=False)


def _uncorrected(adata: ad.AnnData) -> np.ndarray:
    return np.asarray(adata.obsm["X_pca"])


def _label_aware_shift(adata: ad.AnnData) -> np.ndarray:
    """A reference, not a method: it reads the labels. Each batch moves by one vector onto the largest batch.

    The vector is the mean, over the labels the batch shares with the largest batch, of the difference
    of their centres in the PCA (a batch that shares none stays put). It shows what aligning the shared
    types with one shift per batch does to the ``uniq own`` diagnostic.
    """
    pcs = np.array(adata.obsm["X_pca"], dtype=np.float64)
    batch, label = adata.obs[BATCH].astype(str).to_numpy(), adata.obs[LABEL].astype(str).to_numpy()
    names, sizes = np.unique(batch, return_counts=True)
    reference = names[np.argmax(sizes)]

    def centres(name: str) -> dict[str, np.ndarray]:
        rows = batch == name
        return {t: pcs[rows & (label == t)].mean(axis=0) for t in np.unique(label[rows])}

    ref_centres = centres(reference)
    for name in names[names != reference]:
        own = centres(name)
        shared = [t for t in own if t in ref_centres]
        if shared:
            pcs[batch == name] -= np.mean([own[t] - ref_centres[t] for t in shared], axis=0)
    return pcs


def _accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` has a parameter ``name`` of its own (not only ``**kwargs``)."""
    return name in inspect.signature(fn).parameters


def build_registry() -> tuple[dict[str, Method], list[str], list[str]]:
    """All methods, the default selection, and notes on entries that were skipped."""
    import mnnkit

    notes: list[str] = []
    registry: dict[str, Method] = {}
    fronts = {"fast": (mnnkit.fast_mnn, _mnnkit_fast, False), "classic": (mnnkit.correct, _mnnkit_classic, True)}
    for front, (public, wrapper, genes) in fronts.items():
        has_flavor = _accepts(public, "flavor")
        for flavor in ("batchelor", "robust"):
            name = f"mnnkit {front}" + ("" if flavor == "batchelor" else f" {flavor}")
            if not has_flavor and flavor != "batchelor":
                notes.append(f"{name!r} skipped: the installed mnnkit.{public.__name__} has no 'flavor' parameter")
                continue
            kwargs = {"flavor": flavor} if has_flavor else {}
            # the robust flavour picks its own order (largest batch first): like the peers, it gets the
            # cells and batch categories in each order, so the spread measures what a user meets
            by_order = flavor == "batchelor"
            registry[name] = Method(_bind(wrapper, **kwargs), needs_genes=genes, takes_merge_order=by_order)
    registry["harmony"] = Method(_harmony)
    registry["scanorama"] = Method(_scanorama)
    registry["scranpy mnn"] = Method(_scranpy)
    registry["combat"] = Method(_combat, needs_genes=True)
    registry["uncorrected"] = Method(_uncorrected)
    default = list(registry)
    # extras (select them with --methods): the order chosen by mnnkit, so permutations reorder the cells
    registry["mnnkit fast auto"] = Method(_bind(_mnnkit_fast, merge_order="auto"))
    registry["mnnkit classic auto"] = Method(_bind(_mnnkit_classic, merge_order="auto"), needs_genes=True)
    registry["label-aware shift"] = Method(_label_aware_shift)
    if _accepts(mnnkit.fast_mnn, "pairing"):
        registry["mnnkit fast dual-softmax"] = Method(_bind(_mnnkit_fast, flavor="robust", pairing="dual_softmax"))
    return registry, default, notes


def _bind(fn: Callable[..., np.ndarray], **fixed) -> Callable[..., np.ndarray]:
    def call(adata: ad.AnnData, **kwargs) -> np.ndarray:
        return fn(adata, **fixed, **kwargs)

    return call


# ------------------------------------------------------------------------------------------------- running


def _fresh(ds: DataSet, order: list[str] | None = None) -> tuple[ad.AnnData, np.ndarray]:
    """A private AnnData for one method call; with ``order`` the cells and batch categories in that order."""
    src = ds.adata
    idx = np.arange(src.n_obs)
    obs = src.obs[[BATCH, LABEL]].copy()
    if order is not None:
        batch = obs[BATCH].to_numpy()
        idx = np.concatenate([np.flatnonzero(batch == name) for name in order])
        obs = obs.iloc[idx].copy()
        obs[BATCH] = pd.Categorical(obs[BATCH].astype(str), categories=order)
    x = src.X[idx] if order is not None else src.X.copy()
    adata = ad.AnnData(x, obs=obs, var=src.var.copy(), obsm={"X_pca": np.array(src.obsm["X_pca"][idx])})
    return adata, idx


def run_method(method: Method, ds: DataSet, order: list[str] | None = None) -> tuple[np.ndarray, float]:
    """The embedding (cells in the data set's order) and the seconds of the correction call."""
    if method.needs_genes and not ds.has_genes:
        msg = "needs genes; this data set has only an embedding"
        raise ValueError(msg)
    direct = order is not None and method.takes_merge_order
    adata, idx = _fresh(ds, None if direct else order)
    kwargs = {"merge_order": list(order)} if direct else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        out = method.fn(adata, **kwargs)
        seconds = time.perf_counter() - start
    out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
    if out.ndim != 2 or out.shape[0] != ds.adata.n_obs:
        msg = f"returned shape {out.shape}, expected ({ds.adata.n_obs}, ...)"
        raise ValueError(msg)
    restored = np.empty_like(out, dtype=np.float64)
    restored[idx] = out
    if method.needs_genes:
        restored = _pca(restored, N_PCS)
    if not np.isfinite(restored).all():
        msg = "returned non-finite values"
        raise ValueError(msg)
    return restored, seconds


def _unique_own_share(nn, ds: DataSet) -> float:
    if not ds.unique_types:
        return math.nan
    batch = ds.adata.obs[BATCH].to_numpy()
    cells = np.flatnonzero(ds.adata.obs[LABEL].astype(str).isin(ds.unique_types).to_numpy())
    neighbours = nn.indices[cells, :UNIQUE_K]
    return float((batch[neighbours] == batch[cells, None]).mean())


def score(ds: DataSet, embeddings: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """scib-metrics scores (raw), kBET, and the batch-unique diagnostic of each embedding."""
    from scib_metrics.benchmark import BatchCorrection
    from threadpoolctl import threadpool_limits

    from mnnkit.metrics import benchmark, kbet_per_label
    from mnnkit.neighbors import knn

    # the Benchmarker calls gc.collect() before each metric; with the libraries' objects frozen out of the
    # collector's view each call takes milliseconds, not 0.27 s (100 s of 165 s on syn_3batches)
    gc.collect()
    gc.freeze()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return _score(ds, embeddings, benchmark, kbet_per_label, knn, BatchCorrection)
    finally:
        gc.unfreeze()


def _score(ds, embeddings, benchmark, kbet_per_label, knn, BatchCorrection) -> dict[str, dict[str, float]]:

    keys = {name: f"emb{i}" for i, name in enumerate(embeddings)}
    holder = ad.AnnData(
        np.zeros((ds.adata.n_obs, 1), dtype=np.float32),
        obs=ds.adata.obs[[BATCH, LABEL]].copy(),
        obsm={"X_pca": np.asarray(ds.adata.obsm["X_pca"]), **{keys[n]: e for n, e in embeddings.items()}},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = benchmark(
            holder,
            batch_key=BATCH,
            label_key=LABEL,
            embedding_obsm_keys=list(keys.values()),
            pre_integrated_embedding_obsm_key="X_pca",
            batch_correction_metrics=BatchCorrection(kbet_per_label=False),
            neighbors_method="exact",
            min_max_scale=False,
        )
    kinds = table.loc["Metric Type"]
    bio = [c for c in table.columns if kinds[c] == "Bio conservation"]
    batch_cols = [c for c in table.columns if kinds[c] == "Batch correction"]
    batch = ds.adata.obs[BATCH].to_numpy()
    labels = ds.adata.obs[LABEL].to_numpy()
    out = {}
    for name, key in keys.items():
        row = {c: float(table.loc[key, c]) for c in [*bio, *batch_cols]}
        nn = knn(embeddings[name], embeddings[name], 89, exclude_self=True)
        row["KBET"] = float(kbet_per_label(nn, batch, labels, n_neighbors=KBET_NEIGHBOURS))
        row["Bio"] = float(np.nanmean([row[c] for c in bio]))
        row["Batch"] = float(np.nanmean([row[c] for c in [*batch_cols, "KBET"]]))
        row["Total"] = 0.6 * row["Bio"] + 0.4 * row["Batch"]
        row["uniq own"] = _unique_own_share(nn, ds)
        out[name] = row
    return out


def run_dataset(ds: DataSet, registry: dict[str, Method], methods: list[str]) -> dict:
    orders = [list(p) for p in itertools.permutations(ds.adata.obs[BATCH].cat.categories)] if ds.permute else []
    results: dict = {"note": ds.note, "n_cells": ds.adata.n_obs, "unique_types": ds.unique_types, "methods": {}}
    embeddings, perm_embeddings = {}, {}
    for name in methods:
        entry: dict = {}
        try:
            embeddings[name], entry["time_s"] = run_method(registry[name], ds)
        except Exception as error:  # a method's failure is a row, not a crash
            entry["error"] = f"{type(error).__name__}: {error}"[:160]
        results["methods"][name] = entry
        if ds.permute and "error" not in entry and name != "uncorrected":
            for i, order in enumerate(orders[1:], start=1):
                try:
                    perm_embeddings[(name, i)], _ = run_method(registry[name], ds, order)
                except Exception as error:
                    entry.setdefault("perm_errors", []).append(f"{order}: {type(error).__name__}: {error}"[:160])
    if embeddings:
        scores = score(ds, embeddings)
        for name, row in scores.items():
            results["methods"][name].update(row)
    if perm_embeddings:
        perm_scores = score(ds, {f"{n}|{i}": e for (n, i), e in perm_embeddings.items()})
        results["orders"] = [">".join(order) for order in orders]
        for name, entry in results["methods"].items():
            if "Total" not in entry or name == "uncorrected":
                continue
            totals = [entry["Total"]] + [
                perm_scores.get(f"{name}|{i}", {}).get("Total", math.nan) for i in range(1, len(orders))
            ]
            entry["perm_total"] = totals
            entry["perm_spread"] = float(np.nanmax(totals) - np.nanmin(totals))
    return results


# ------------------------------------------------------------------------------------------------ printing

COLUMNS = [("Total", "Total"), ("Bio", "Bio"), ("Batch", "Batch"), ("iLISI", "iLISI"), ("kBET", "KBET")]


def _fmt(value, width: int = 7, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(width)
    return f"{value:{width}.{digits}f}"


def print_dataset(name: str, res: dict) -> None:
    unique = bool(res["unique_types"])
    print(f"\n== {name}: {res['note']}; {res['n_cells']} cells")
    if unique:
        print(f"   batch-unique types: {', '.join(res['unique_types'])} (uniq own: target >= 0.95)")
    head = f"{'method':<22}" + "".join(f"{label:>8}" for label, _ in COLUMNS)
    head += f"{'uniq own':>9}" if unique else ""
    print(head + f"{'time s':>9}")
    for method, entry in res["methods"].items():
        line = f"{method:<22}"
        if "Total" not in entry:
            print(line + f" ERROR {entry.get('error', 'not scored')}")
            continue
        line += "".join(" " + _fmt(entry[key]) for _, key in COLUMNS)
        line += "  " + _fmt(entry["uniq own"]) if unique else ""
        print(line + "  " + _fmt(entry["time_s"], 7, 2))
    if "orders" in res:
        orders = ", ".join(f"{i + 1} = {order}" for i, order in enumerate(res["orders"]))
        print(f"   scIB Total in each merge order (target spread <= 0.01): {orders}")
        print(f"{'method':<22}" + "".join(f"{i + 1:>7}" for i in range(len(res["orders"]))) + f"{'spread':>9}")
        for method, entry in res["methods"].items():
            if "perm_total" in entry:
                totals = "".join(_fmt(t, 7) for t in entry["perm_total"])
                print(f"{method:<22}{totals}  {_fmt(entry['perm_spread'])}")
            for err in entry.get("perm_errors", []):
                print(f"{method:<22} ERROR {err}")


def summary(all_results: dict, methods: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Per method: mean scores, mean rank by Total (1 = best), largest gap below the best peer, and the mean
    Total over the data sets that every method scored (``common Total``); and the names of those data sets.
    """
    common = [d for d, res in all_results.items() if all("Total" in res["methods"][m] for m in methods)]
    keys = ["Total", "Bio", "Batch", "iLISI", "KBET", "time_s"]
    rows = {m: {k: [] for k in [*keys, "rank", "gap", "common"]} for m in methods}
    for name, res in all_results.items():
        totals = {m: e["Total"] for m, e in res["methods"].items() if "Total" in e}
        ranks = pd.Series(totals).rank(ascending=False, method="min")
        peers = [totals[p] for p in PEERS if p in totals]
        for method, entry in res["methods"].items():
            if "Total" not in entry:
                continue
            for key in keys:
                rows[method][key].append(entry[key])
            rows[method]["rank"].append(ranks[method])
            if peers:
                rows[method]["gap"].append(max(peers) - entry["Total"])
            if name in common:
                rows[method]["common"].append(entry["Total"])
    table = {}
    for method, values in rows.items():
        table[method] = {k: float(np.mean(values[k])) if values[k] else math.nan for k in [*keys, "rank"]}
        table[method]["common Total"] = float(np.mean(values["common"])) if values["common"] else math.nan
        table[method]["max gap"] = float(max(values["gap"])) if values["gap"] else math.nan
        table[method]["n"] = len(values["Total"])
    return pd.DataFrame(table).T, common


def print_summary(table: pd.DataFrame, n_sets: int, common: list[str]) -> None:
    print(f"\n== mean over the data sets each method ran on (n of {n_sets}); rank by Total per data set, 1 = best;")
    print(f"   common = mean Total over the {len(common)} data sets every method scored ({', '.join(common)});")
    print("   max gap = largest (best peer's Total - this Total) over the data sets (target for mnnkit <= 0.03)")
    head = ["Total", "Bio", "Batch", "iLISI", "kBET", "rank", "common", "max gap", "time s"]
    print(f"{'method':<22}" + "".join(f"{c:>8}" for c in head) + f"{'n':>4}")
    for method, row in table.sort_values("Total", ascending=False).iterrows():
        cells = [row[k] for k in ["Total", "Bio", "Batch", "iLISI", "KBET", "rank", "common Total", "max gap"]]
        line = f"{method:<22}" + "".join(" " + _fmt(v) for v in cells)
        print(line + " " + _fmt(row["time_s"], 7, 2) + f"{int(row['n']):>4}")


# ---------------------------------------------------------------------------------------------------- main


def warm_up(registry: dict[str, Method], methods: list[str]) -> None:
    tiny = make_latent_batches([60, 60, 60], n_genes=200, seed=1)
    ds = _prepare("warm-up", tiny, counts=True, note="")
    for name in methods:
        try:
            run_method(registry[name], ds)
            if registry[name].takes_merge_order:
                run_method(registry[name], ds, ["batch2", "batch0", "batch1"])
        except Exception:  # reported when it fails on a real data set
            pass


def main(argv: list[str] | None = None) -> int:
    registry, default_methods, notes = build_registry()
    all_sets = [*SHARED_SETS, *SYNTHETIC_NOTES]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"small smoke run: {', '.join(QUICK_SETS)}")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help=f"default: {', '.join(default_methods)}")
    parser.add_argument("--datasets", nargs="+", metavar="NAME", help=f"default: {', '.join(all_sets)}")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the shared data sets")
    parser.add_argument("--json", type=Path, metavar="PATH", help="save every number as JSON")
    parser.add_argument("--list", action="store_true", help="print the method and data set names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("methods:", ", ".join(registry), "\ndata sets:", ", ".join(all_sets))
        return 0
    methods = args.methods or default_methods
    unknown = [m for m in methods if m not in registry]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; available: {', '.join(registry)}")
    names = args.datasets or list(QUICK_SETS if args.quick else all_sets)
    unknown = [d for d in names if d not in all_sets]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; available: {', '.join(all_sets)}")

    import scanpy as sc

    sc.settings.verbosity = 0
    start = time.perf_counter()
    for note in notes:
        print(f"note: {note}")
    print(
        "scores: scib-metrics Benchmarker, RAW (min_max_scale=False); Total = 0.6 Bio + 0.4 Batch; "
        "kBET by mnnkit.metrics.kbet_per_label (see the module docstring)"
    )
    warm_up(registry, methods)
    all_results = {}
    for ds in load_datasets(names, args.data_dir, args.quick):
        t0 = time.perf_counter()
        all_results[ds.name] = run_dataset(ds, registry, methods)
        all_results[ds.name]["wall_s"] = time.perf_counter() - t0
        print_dataset(ds.name, all_results[ds.name])
        sys.stdout.flush()
    table, common = summary(all_results, methods)
    print_summary(table, len(all_results), common)
    elapsed = time.perf_counter() - start
    print(f"\ntotal wall time {elapsed:.0f} s")
    if args.json:
        payload = {
            "datasets": all_results,
            "summary": table.to_dict(orient="index"),
            "notes": notes,
            "quick": args.quick,
            "wall_s": elapsed,
        }
        args.json.write_text(json.dumps(payload, indent=1, default=float))
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
