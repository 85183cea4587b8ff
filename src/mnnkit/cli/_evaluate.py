"""``mnnkit evaluate``: integration metrics of a correction, before and after."""

from __future__ import annotations

import argparse
import time
from typing import Any

from mnnkit.cli._errors import DataError, UsageError
from mnnkit.cli._io import check_input, read_h5ad
from mnnkit.cli._memory import check_before_reading
from mnnkit.cli._options import (
    add_memory_option,
    check_plot_dir,
    clean_leftovers,
    int_at_least,
    obs_column_check,
    positive_float,
)
from mnnkit.cli._plots import make_plots
from mnnkit.cli._summary import dumps, format_metrics
from mnnkit.cli._text import emit

#: File names written under ``--plot DIR``.
PLOT_FILES = {"umap": "umap.png", "mnn_pairs": "mnn_pairs.png", "metrics": "metrics.png"}
#: The metric settings: option ``dest`` -> (parameter of :func:`mnnkit.metrics.evaluate`, its default). The
#: defaults are shown in ``--help``; ``tests/test_cli_options.py`` checks them against the signature.
SETTINGS: dict[str, tuple[str, Any]] = {
    "n_neighbors": ("n_neighbors", 15),
    "kbet_neighbors": ("kbet_neighbors", 50),
    "perplexity": ("perplexity", 30.0),
    "n_pcs": ("n_pcs", 50),
    "neighbors": ("neighbors_method", "exact"),
    "seed": ("rng", 0),
}

_DESCRIPTION = """\
Integration metrics of a corrected .h5ad file, printed as a table (or --json):
  batch mixing:   iLISI (raw and scaled), kBET-style acceptance rate, batch ASW (with --label-key)
  biology kept:   cLISI (raw and scaled), label silhouette, ARI and NMI (KMeans), kNN graph connectivity
                  per label (all need --label-key)
By default the correction recorded by 'mnnkit correct' (or mnnkit.correct) is scored next to the
uncorrected data: the correction's input on the same genes, cosine-normalised like its output. Gene-level
values go through the same PCA (--n-pcs) first. The file is only read."""

_EXAMPLES = """\
examples:
  mnnkit evaluate corrected.h5ad --label-key cell_type
  mnnkit evaluate corrected.h5ad --label-key cell_type --json --plot plots/
  mnnkit evaluate harmony.h5ad --batch-key batch --rep X_pca_harmony   # any .obsm key, layer or X
"""


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``commands``."""
    p = commands.add_parser(
        "evaluate",
        help="integration metrics of a correction (before/after)",
        description=_DESCRIPTION,
        **{**kwargs, "epilog": _EXAMPLES + "\n" + kwargs.get("epilog", "")},
    )
    p.set_defaults(run=run)
    p.add_argument("file", metavar="FILE.h5ad", help="corrected file (read only)")
    p.add_argument("--batch-key", metavar="COLUMN", help=".obs column of batches (default: the correction's)")
    p.add_argument("--label-key", metavar="COLUMN", help=".obs column of cell types (enables the biology metrics)")
    p.add_argument(
        "--rep", metavar="REP", help="what to score: an .obsm key, a layer or X (default: the recorded correction)"
    )
    p.add_argument("--key", metavar="KEY", help="which recorded correction (uns key), if the file holds several")
    p.add_argument("--no-baseline", action="store_true", help="score the corrected values only (no 'uncorrected')")
    g = p.add_argument_group("metric settings (defaults are mnnkit.metrics.evaluate's)")
    _setting(g, "--n-neighbors", type=int_at_least(1), metavar="N", help="kNN graph for connectivity")
    kbet_help = "neighbourhood of the global kBET test; kNN graph of the per-label kBET"
    _setting(g, "--kbet-neighbors", type=int_at_least(1), metavar="N", help=kbet_help)
    _setting(g, "--perplexity", type=positive_float, help="LISI perplexity")
    _setting(g, "--n-pcs", type=int_at_least(1), metavar="N", help="PCA components for gene-level values")
    _setting(g, "--neighbors", choices=["exact", "pynndescent"], help="neighbour search")
    _setting(g, "--seed", type=int_at_least(0), metavar="N", help="seed of PCA, KMeans, searches")
    g = p.add_argument_group("plots")
    g.add_argument("--plot", metavar="DIR", help=f"write {', '.join(PLOT_FILES.values())} to DIR")
    g.add_argument(
        "--force", action="store_true", help="replace existing plot files (regular files or symbolic links only)"
    )
    add_memory_option(p)
    return p


def _setting(group: Any, flag: str, *, help: str, **kwargs: Any) -> None:
    """A metric-setting option whose default is :func:`mnnkit.metrics.evaluate`'s (see :data:`SETTINGS`)."""
    default = SETTINGS[flag.removeprefix("--").replace("-", "_")][1]
    shown = f"{default:g}" if isinstance(default, float) else default
    group.add_argument(flag, default=default, help=f"{help} (default: {shown})", **kwargs)


def _choose_correction(adata: Any, args: argparse.Namespace, corrections: list[str]) -> str | None:
    """The recorded correction to score (``None``: score ``--rep`` as it is)."""
    if args.key is not None:
        if args.key not in corrections:
            listing = ", ".join(corrections) or "none"
            msg = f"--key {args.key!r}: no mnnkit correction recorded under uns[{args.key!r}]; recorded: {listing}"
            raise DataError(msg)
        return args.key
    if args.rep is not None:
        for key in corrections:
            if args.rep in (key, f"X_{key}"):
                return key
        return None
    if len(corrections) == 1:
        return corrections[0]
    if corrections:
        msg = f"{args.file} holds several corrections ({', '.join(corrections)}); choose one with --key"
        raise UsageError(msg)
    msg = (
        f"no mnnkit correction is recorded in {args.file}; pass --rep: an .obsm key "
        f"({', '.join(adata.obsm.keys()) or 'none'}), a layer ({', '.join(adata.layers.keys()) or 'none'}) or X"
    )
    raise DataError(msg)


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit evaluate``; return the exit status."""
    from anndata import AnnData

    from mnnkit.metrics import evaluate
    from mnnkit.pl import compare_metrics, correction_data, correction_record, find_corrections

    started = time.perf_counter()
    if args.plot and args.no_baseline:
        msg = "--plot compares uncorrected and corrected values; drop --no-baseline"
        raise UsageError(msg)
    plot_dir = check_plot_dir(args.plot, list(PLOT_FILES.values()), force=args.force) if args.plot else None
    if plot_dir is not None:
        clean_leftovers(args, [plot_dir / name for name in PLOT_FILES.values()])
    check_before_reading([check_input(args.file)], args.max_memory)
    adata = read_h5ad(args.file)
    key = _choose_correction(adata, args, find_corrections(adata))
    if key is None and plot_dir is not None:
        msg = f"--plot needs a recorded mnnkit correction; --rep {args.rep!r} is not one"
        raise UsageError(msg)
    record = correction_record(adata, key) if key is not None else {}
    batch_key = args.batch_key or str(dict(record.get("params", {})).get("batch_key", "batch"))
    obs_column_check(adata, batch_key, "--batch-key", args.file)
    if args.label_key is not None:
        obs_column_check(adata, args.label_key, "--label-key", args.file)
    settings = {name: getattr(args, dest) for dest, (name, _) in SETTINGS.items()}
    common = {"batch_key": batch_key, "label_key": args.label_key, **settings}

    baseline = None
    if key is None:
        table = evaluate(adata, rep=args.rep, **common)
        rep_where = table.attrs["source"]
        values = table
    else:
        data = correction_data(adata, key)
        rep_where = data.corrected_where
        if args.no_baseline:
            obs = adata.obs[[c for c in dict.fromkeys([batch_key, args.label_key]) if c is not None]]
            scored = (
                AnnData(X=data.corrected, obs=obs.copy())
                if data.gene_level
                else AnnData(obs=obs.copy(), obsm={"corrected": data.corrected})
            )
            table = evaluate(scored, rep="X" if data.gene_level else "corrected", **common)
            values = table
        else:
            table = compare_metrics(adata, key_added=key, data=data, **common)
            baseline = data.uncorrected_where
            values = table.rename(columns={"corrected": "value"})
    evaluated = time.perf_counter()

    plots = []
    if plot_dir is not None:
        plots = make_plots(
            adata,
            key=key,
            label_key=args.label_key,
            directory=plot_dir,
            which=list(PLOT_FILES),
            table=table,
            force=args.force,
        )
    finished = time.perf_counter()

    attrs = table.attrs.get("corrected", table.attrs)
    metrics = {}
    for name, row in values.iterrows():
        entry = {"value": float(row["value"])}
        if baseline is not None:
            entry["uncorrected"] = float(row["uncorrected"])
        entry["higher_is_better"] = bool(row["higher_is_better"])
        entry["description"] = str(row["description"])
        metrics[str(name)] = entry
    summary = {
        "command": "evaluate",
        "file": str(args.file),
        "key_added": key,
        "rep": rep_where,
        "baseline": baseline,
        "batch_key": batch_key,
        "label_key": args.label_key,
        "n_obs": attrs.get("n_obs", adata.n_obs),
        "n_batches": attrs.get("n_batches"),
        "n_labels": attrs.get("n_labels"),
        "metrics": metrics,
        "settings": settings,
        "plots": plots,
        "seconds": {"evaluate": evaluated - started, "plots": finished - evaluated, "total": finished - started},
    }
    emit(dumps(summary) if args.json else format_metrics(summary))
    return 0
