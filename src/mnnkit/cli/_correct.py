"""``mnnkit correct``: batch-correct one .h5ad file (batch column) or several (one batch per file)."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from typing import Any

from mnnkit.cli._correct_options import (
    LINEAR_METHODS,
    NORMALIZED_LAYER,
    PLOT_FILES,
    add_options_parser,
    check_usage,
    correct_kwargs,
)
from mnnkit.cli._errors import DataError
from mnnkit.cli._io import batch_names_for, check_input, join_files, read_gene_list, read_h5ad
from mnnkit.cli._memory import check_before_reading
from mnnkit.cli._options import check_plot_dir, clean_leftovers, note, obs_column_check
from mnnkit.cli._plots import make_plots
from mnnkit.cli._publish import check_output, write_h5ad
from mnnkit.cli._summary import batch_counts, correction_steps, dumps, format_correct
from mnnkit.cli._text import emit


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``correct`` subcommand to ``commands`` (an argparse subparsers object)."""
    parser = add_options_parser(commands, **kwargs)
    parser.set_defaults(run=run)
    return parser


def _looks_like_counts(matrix: Any) -> bool:
    import numpy as np
    from scipy import sparse

    values = matrix.data if sparse.issparse(matrix) else np.asarray(matrix).ravel()
    sample = values[:: max(1, values.size // 100_000)]
    return bool(sample.size == 0 or (np.all(sample >= 0) and np.all(sample == np.round(sample))))


def _normalize(adata: Any, layer: str | None) -> str:
    """normalize_total + log1p of ``layer`` (or ``.X``) into ``layers['lognorm']``; return that name."""
    import scanpy as sc

    if NORMALIZED_LAYER in adata.layers:
        msg = (
            f"--normalize writes layers[{NORMALIZED_LAYER!r}], which the input already has; drop --normalize "
            f"and pass --layer {NORMALIZED_LAYER} to correct it"
        )
        raise DataError(msg)
    if layer is not None and layer not in adata.layers:
        msg = f"--layer {layer!r} is not in the input; layers: {', '.join(adata.layers.keys()) or '(none)'}"
        raise DataError(msg)
    source = adata.X if layer is None else adata.layers[layer]
    if not _looks_like_counts(source):
        where = ".X" if layer is None else f"layers[{layer!r}]"
        emit(
            f"mnnkit: warning: --normalize: {where} has non-integer values and may already be normalised",
            file=sys.stderr,
        )
    adata.layers[NORMALIZED_LAYER] = source.copy()
    sc.pp.normalize_total(adata, layer=NORMALIZED_LAYER)
    adata.layers[NORMALIZED_LAYER] = sc.pp.log1p(adata.layers[NORMALIZED_LAYER], copy=True)
    return NORMALIZED_LAYER


def _keys(adata: Any) -> set[str]:
    keys = {f"layers[{k!r}]" for k in adata.layers}
    keys |= {f"obsm[{k!r}]" for k in adata.obsm}
    keys |= {f"uns[{k!r}]" for k in adata.uns}
    keys |= {f"var[{k!r}]" for k in adata.var.columns}
    return keys


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit correct``; return the exit status."""
    started = time.perf_counter()
    check_usage(args)
    kwargs = correct_kwargs(args)
    inputs = [check_input(path) for path in args.inputs]
    output = check_output(args.output, inputs=inputs, force=args.force)
    plot_dir = check_plot_dir(args.plot, list(PLOT_FILES.values()), force=args.force) if args.plot else None
    clean_leftovers(args, [output] + ([plot_dir / name for name in PLOT_FILES.values()] if plot_dir else []))
    method = kwargs.get("method", "classic")
    gene_level = method in ("classic", *LINEAR_METHODS) or kwargs.get("reconstruct") == "layer"
    check_before_reading(inputs, args.max_memory, output_per_value=4 if gene_level else 0)  # a float32 layer
    if args.subset_genes is not None:
        kwargs["subset"] = read_gene_list(args.subset_genes)

    note(args, f"reading {', '.join(map(str, inputs))}")
    joined = None
    if len(inputs) == 1:
        adata = read_h5ad(inputs[0])
        source = str(inputs[0])
    else:
        names = batch_names_for(inputs, args.batch_names)
        joined = join_files(inputs, names, batch_key=args.batch_key)
        adata = joined.adata
        source = "the joined inputs"
        note(args, f"joined {len(inputs)} files on {joined.n_shared} shared genes; dropped per file: "
              + ", ".join(f"{n} {d}" for n, d in joined.genes_dropped.items()))  # fmt: skip
        if joined.replaced_column:
            note(args, f"obs[{args.batch_key!r}] of {', '.join(joined.replaced_column)} replaced by the file's batch")
        if joined.renamed_cells:
            note(args, "cell names repeat across files: each got the suffix -<batch name>")
    obs_column_check(adata, args.batch_key, "--batch-key", source)
    if args.plot and args.label_key is not None:
        obs_column_check(adata, args.label_key, "--label-key", source)
    read_done = time.perf_counter()

    before = _keys(adata)
    layer = kwargs.get("layer")
    if args.normalize:
        note(args, f"normalising (normalize_total + log1p) into layers[{NORMALIZED_LAYER!r}]")
        layer = kwargs["layer"] = _normalize(adata, layer)
    if args.n_top_genes is not None:
        import scanpy as sc

        if args.n_top_genes > adata.n_vars:
            msg = f"--n-top-genes {args.n_top_genes} exceeds the {adata.n_vars} genes of the input"
            raise DataError(msg)
        sc.pp.highly_variable_genes(adata, n_top_genes=args.n_top_genes, flavor="seurat", layer=layer)
        kwargs["subset"] = "highly_variable"
    if method == "rescale" and args.normalize and "log_base" not in kwargs:
        kwargs["log_base"] = math.e  # --normalize wrote log1p values: natural log
    prepared = time.perf_counter()

    key = _run_method(adata, args, kwargs)
    corrected = time.perf_counter()
    record = adata.uns[key]
    subset = kwargs.get("subset")
    record["cli"] = {
        "command": shlex.join(["mnnkit", *args.argv]),
        "version": _version(),
        "inputs": [str(p) for p in inputs],
        "normalize": bool(args.normalize),
        "normalized_layer": NORMALIZED_LAYER if args.normalize else "",
        "n_top_genes": int(args.n_top_genes or 0),
        "subset": subset if isinstance(subset, str) else "",
        "subset_genes": list(subset) if isinstance(subset, list) else [],
    }
    results = {f"uns[{key!r}]"} | ({f"layers[{key!r}]"} if key in adata.layers else set())
    written = sorted((_keys(adata) - before) | results)
    note(args, f"writing {output}")
    write_h5ad(adata, output, force=args.force, compression=args.compression)
    wrote = time.perf_counter()

    plots = []
    if plot_dir is not None:
        note(args, f"plotting into {plot_dir}")
        plots = make_plots(
            adata, key=key, label_key=args.label_key, directory=plot_dir, which=list(PLOT_FILES), force=args.force
        )
    finished = time.perf_counter() if plot_dir is not None else wrote  # the parts add up to the total

    summary = _summary(args, adata, record, inputs=inputs, output=output, joined=joined, key=key, layer=layer)
    summary["method"] = method if method in LINEAR_METHODS else summary["method"]
    summary["written"] = written
    summary["plots"] = plots
    summary["seconds"] = {
        "read": read_done - started,
        "prepare": prepared - read_done,
        "correct": corrected - prepared,
        "write": wrote - corrected,
        **({"plots": finished - wrote} if plot_dir is not None else {}),
        "total": finished - started,
    }
    emit(dumps(summary) if args.json else format_correct(summary))
    return 0


#: Where ``--method cluster`` writes by default (:func:`mnnkit.cluster_mnn`'s ``key_added``).
CLUSTER_KEY_ADDED = "X_cluster_mnn"


def _run_method(adata: Any, args: argparse.Namespace, kwargs: dict[str, Any]) -> str:
    """Run the correction ``kwargs["method"]`` names; return the key its outputs were written under."""
    method = kwargs.get("method", "classic")
    if method in LINEAR_METHODS:
        import mnnkit

        function = getattr(mnnkit, LINEAR_METHODS[method])
        options = {name: value for name, value in kwargs.items() if name != "method"}
        function(adata, batch_key=args.batch_key, **options)
        return kwargs.get("key_added") or LINEAR_METHODS[method]

    if method == "cluster":
        from mnnkit import cluster_mnn

        options = {name: value for name, value in kwargs.items() if name != "method"}
        options.setdefault("clusters", None)
        cluster_mnn(adata, batch_key=args.batch_key, **options, progress=not args.quiet)
        return kwargs.get("key_added") or CLUSTER_KEY_ADDED

    from mnnkit.correction import DEFAULT_KEY_ADDED, correct

    correct(adata, batch_key=args.batch_key, **kwargs, progress=not args.quiet)
    return kwargs.get("key_added") or DEFAULT_KEY_ADDED[method]


def _version() -> str:
    from mnnkit import __version__

    return __version__


def _summary(args, adata, record, *, inputs, output, joined, key, layer) -> dict[str, Any]:
    import numpy as np

    # from the category codes: a column of long labels is never copied into fixed-width strings
    counts = batch_counts(adata.obs[args.batch_key])
    names = [str(b) for b in np.ravel(np.asarray(record["batches"], dtype=object))] if "batches" in record else counts
    params = dict(record.get("params", {}))
    subset = record["cli"]["subset"] or None
    if args.subset_genes is not None:
        subset = f"{len(record['cli']['subset_genes'])} genes from {args.subset_genes}"
    summary: dict[str, Any] = {
        "command": "correct",
        "mnnkit_version": _version(),
        "output": str(output),
        "inputs": [str(p) for p in inputs],
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "batch_key": args.batch_key,
        "batches": {name: counts.get(name, 0) for name in names},
        "method": str(record.get("method", "classic")),
        "key_added": key,
        "layer": layer if layer is not None else "X",
        "normalized": bool(args.normalize),
        "n_top_genes": args.n_top_genes,
        "subset": subset,
        "n_subset_genes": params.get("n_subset_genes"),
        "merge_order": [str(b) for b in np.atleast_1d(np.asarray(record.get("merge_order", []), dtype=object))],
        "steps": correction_steps(record),
        "params": params,
    }
    if joined is not None:
        summary["n_shared_genes"] = joined.n_shared
        summary["genes_dropped"] = joined.genes_dropped
    return summary
