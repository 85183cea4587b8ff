"""``mnnkit correct``: batch-correct one .h5ad file (batch column) or several (one batch per file)."""

from __future__ import annotations

import argparse
import inspect
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from mnnkit.cli._errors import DataError, UsageError
from mnnkit.cli._io import (
    batch_names_for,
    check_input,
    check_output,
    join_files,
    read_h5ad,
    save_figure_atomic,
    write_h5ad_atomic,
)
from mnnkit.cli._summary import correction_steps, dumps, format_correct, list_columns

#: Defaults of :func:`mnnkit.correct`, shown in ``--help``. Options left out on the command line are not
#: passed at all, so the API's own defaults apply; ``tests/test_cli_options.py`` checks this table against
#: the signature.
API_DEFAULTS: dict[str, Any] = {
    "batch_key": "batch",
    "layer": None,
    "subset": None,
    "correct_all": False,
    "k": 20,
    "prop_k": None,
    "sigma": 0.1,
    "cos_norm_in": True,
    "cos_norm_out": True,
    "var_adj": True,
    "svd_dim": 0,
    "merge_order": None,
    "approximate": False,
    "neighbors": "exact",
    "kernel_neighbors": None,
    "var_adj_sample": None,
    "key_added": "mnn",
    "rng": 0,
}
#: Options forwarded to ``mnnkit.correct`` exactly when given (argparse ``dest`` = API parameter name).
FORWARDED = [name for name in API_DEFAULTS if name != "batch_key"] + ["method"]
#: Options of the fast (PCA-space) method only; forwarded when given with ``--method fast``.
FAST_ONLY = ["d", "ndist", "cos_norm", "use_rep", "min_batch_skip", "svd_solver", "reconstruct"]
#: Layer that ``--normalize`` writes the log-normalised values to.
NORMALIZED_LAYER = "lognorm"
#: File names written under ``--plot DIR``.
PLOT_FILES = {"umap": "umap.png", "mnn_pairs": "mnn_pairs.png"}

_DESCRIPTION = """\
Correct batch effects with mutual nearest neighbours and write a new .h5ad file.

One input: the batches are the values of the .obs column --batch-key. Several inputs: each file is one
batch (named after the file, or --batch-names), the files are joined on the genes they share (the number
dropped is reported) and merged in the order given. Input files are never modified.

The input must be log-normalised expression (in .X or --layer). For raw counts pass --normalize
(normalize_total + log1p into layers['lognorm']; .X is kept as it is) and usually --n-top-genes 2000
(highly variable genes, used for the MNN distances).

Output: the input data plus layers[KEY] (corrected values; NaN for genes outside --subset unless
--correct-all) and uns[KEY] (parameters, merge order, MNN pairs per step, and the command line), KEY being
--key-added (default mnn).

The first run after installing compiles mnnkit's numba kernels (about 10-20 s); later runs reuse them."""

_EXAMPLES = """\
examples:
  # the shipped pancreas data (raw counts, batches human/mouse):
  mnnkit correct pancreas.h5ad -o corrected.h5ad --normalize --n-top-genes 1000
  # log-normalised data, highly variable genes already marked:
  mnnkit correct data.h5ad -o out.h5ad --batch-key sample --subset highly_variable --merge-order auto
  # one batch per file:
  mnnkit correct a.h5ad b.h5ad c.h5ad -o out.h5ad --batch-names A,B,C
"""


def _fmt_default(name: str) -> str:
    value = API_DEFAULTS[name]
    return "default: " + ("none" if value is None else str(value))


# argparse types: a bad value is a usage error (exit status 2) with a message naming the option
def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {text}")
    return value


def _k_value(text: str) -> int | tuple[int, int]:
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected K or K_LEFT,K_RIGHT, got {text!r}")
    values = tuple(_int_at_least(1)(part.strip()) for part in parts)
    return values[0] if len(values) == 1 else values


def _names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _merge_order(text: str) -> str | list[str]:
    return "auto" if text.strip() == "auto" else _names(text)


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``correct`` subcommand to ``commands`` (an argparse subparsers object)."""
    p = commands.add_parser(
        "correct",
        help="correct batch effects (MNN) and write a new .h5ad file",
        description=_DESCRIPTION,
        **{**kwargs, "epilog": _EXAMPLES + "\n" + kwargs.get("epilog", "")},
    )
    p.set_defaults(run=run)
    p.add_argument("inputs", nargs="+", metavar="IN.h5ad", help="input file(s); several files = one batch each")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5ad", help="output file (must not exist)")
    p.add_argument("--force", action="store_true", help="replace an existing output (never an input)")
    p.add_argument(
        "--compression",
        choices=["gzip", "lzf"],
        help="compress the output's arrays (smaller file, slower write; default: none, as anndata)",
    )

    g = p.add_argument_group("batches and input data")
    g.add_argument("--batch-key", default="batch", metavar="COLUMN", help=".obs column of batches (default: batch)")
    g.add_argument(
        "--batch-names", type=_names, metavar="A,B,..", help="batch names of several inputs (default: file names)"
    )
    g.add_argument("--layer", default=argparse.SUPPRESS, metavar="LAYER", help="correct this layer instead of .X")
    g.add_argument(
        "--normalize", action="store_true", help="input is raw counts: normalize_total + log1p into layers['lognorm']"
    )
    g.add_argument(
        "--n-top-genes",
        type=_int_at_least(1),
        metavar="N",
        help="mark N highly variable genes (scanpy, flavor seurat) and use them as --subset",
    )
    g.add_argument(
        "--subset",
        default=argparse.SUPPRESS,
        metavar="COLUMN",
        help="boolean .var column of genes for distances, e.g. highly_variable (default: all genes)",
    )
    g.add_argument("--subset-genes", metavar="FILE", help="text file of gene names (one per line) for distances")
    g.add_argument(
        "--correct-all",
        action="store_true",
        default=argparse.SUPPRESS,
        help="correct all genes, not only the subset (default: subset only, others NaN)",
    )

    g = p.add_argument_group("correction (defaults are those of mnnkit.correct)")
    g.add_argument(
        "--method",
        choices=["classic", "fast"],
        default=argparse.SUPPRESS,
        help="classic MNN in gene space (default) or fast MNN in PCA space",
    )
    g.add_argument(
        "-k",
        "--k",
        type=_k_value,
        default=argparse.SUPPRESS,
        metavar="K",
        help=f"nearest neighbours per side, or K_LEFT,K_RIGHT ({_fmt_default('k')})",
    )
    g.add_argument(
        "--prop-k",
        type=_fraction,
        default=argparse.SUPPRESS,
        metavar="P",
        help="k per side = max(k, P x batch size) (default: off)",
    )
    g.add_argument(
        "--sigma",
        type=_positive_float,
        default=argparse.SUPPRESS,
        help=f"Gaussian kernel width ({_fmt_default('sigma')})",
    )
    g.add_argument(
        "--cos-norm-in",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="cosine-normalise the data for distances (default: on)",
    )
    g.add_argument(
        "--cos-norm-out",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="cosine-normalise the corrected output (default: on)",
    )
    g.add_argument(
        "--var-adj",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="variance adjustment of the corrections (default: on)",
    )
    g.add_argument(
        "--svd-dim",
        type=_int_at_least(0),
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"biological axes removed from the corrections ({_fmt_default('svd_dim')})",
    )
    g.add_argument(
        "--merge-order",
        type=_merge_order,
        default=argparse.SUPPRESS,
        metavar="auto|A,B,..",
        help="'auto' (most MNN pairs first) or batch names in order (default: batch order)",
    )
    g.add_argument(
        "--approximate",
        action="store_true",
        default=argparse.SUPPRESS,
        help="faster approximate var.adj (sampled, float32) for large data (default: exact)",
    )
    g.add_argument(
        "--neighbors",
        choices=["exact", "pynndescent"],
        default=argparse.SUPPRESS,
        help=f"neighbour search ({_fmt_default('neighbors')})",
    )
    g.add_argument(
        "--kernel-neighbors",
        type=_int_at_least(1),
        default=argparse.SUPPRESS,
        metavar="N",
        help="kernel over each cell's N nearest MNN cells only (default: all)",
    )
    g.add_argument(
        "--var-adj-sample",
        type=_int_at_least(2),
        default=argparse.SUPPRESS,
        metavar="N",
        help="cells per side for var.adj quantiles (default: all; 2000 with --approximate)",
    )
    g.add_argument(
        "--key-added",
        default=argparse.SUPPRESS,
        metavar="KEY",
        help=f"name of the output layer and .uns entry ({_fmt_default('key_added')})",
    )
    g.add_argument(
        "--seed",
        dest="rng",
        type=_int_at_least(0),
        default=argparse.SUPPRESS,
        metavar="N",
        help=f"seed of the approximate searches ({_fmt_default('rng')})",
    )

    g = p.add_argument_group("fast method only (--method fast; defaults are mnnkit.fast_mnn's)")
    g.add_argument("--d", type=_int_at_least(1), default=argparse.SUPPRESS, metavar="N", help="principal components")
    g.add_argument(
        "--ndist",
        type=_positive_float,
        default=argparse.SUPPRESS,
        metavar="X",
        help="tricube bandwidth, in distances to the ceil(k/2)-th nearest MNN cell",
    )
    g.add_argument(
        "--cos-norm",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="cosine-normalise before the PCA (default: on for genes, off with --use-rep)",
    )
    g.add_argument("--use-rep", default=argparse.SUPPRESS, metavar="OBSM", help="correct this .obsm embedding")
    g.add_argument(
        "--min-batch-skip",
        type=_non_negative_float,
        default=argparse.SUPPRESS,
        metavar="X",
        help="skip merge steps whose batch effect is below X",
    )
    g.add_argument("--svd-solver", choices=["randomized", "exact"], default=argparse.SUPPRESS, help="PCA solver")
    g.add_argument(
        "--reconstruct",
        choices=["factors", "layer"],
        default=argparse.SUPPRESS,
        help="gene-level output: rotation for all genes, or also layers[KEY]",
    )

    g = p.add_argument_group("plots")
    g.add_argument(
        "--plot",
        metavar="DIR",
        help=f"write {' and '.join(PLOT_FILES.values())} (before/after UMAPs, MNN pairs) to DIR",
    )
    g.add_argument("--label-key", metavar="COLUMN", help=".obs column of cell types to colour the UMAPs by")
    return p


def correct_function():
    """:func:`mnnkit.correct` (looked up at run time, so that tests can stand in for it)."""
    from mnnkit.mnn import correct

    return correct


def _accepts(func: Any, name: str) -> bool:
    """Whether ``func`` takes the keyword ``name`` (by name, or through ``**kwargs``)."""
    params = inspect.signature(func).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def correct_kwargs(args: argparse.Namespace, func: Any) -> dict[str, Any]:
    """The keyword arguments of ``mnnkit.correct`` that the command line sets (only those given)."""
    kwargs = {name: getattr(args, name) for name in FORWARDED if hasattr(args, name)}
    fast_given = [name for name in FAST_ONLY if hasattr(args, name)]
    method = kwargs.get("method")
    has_method = "method" in inspect.signature(func).parameters  # the fast method exists in this build
    if method is not None and not has_method:
        if method == "fast":
            msg = (
                "--method fast is not available in this mnnkit version (mnnkit.correct has no 'method' "
                "parameter); use --method classic"
            )
            raise UsageError(msg)
        del kwargs["method"]  # classic is the only method here
    if fast_given:
        if method != "fast":
            options = ", ".join(_flag(name) for name in fast_given)
            msg = f"{options} only appl{'y' if len(fast_given) > 1 else 'ies'} to --method fast"
            raise UsageError(msg)
        for name in fast_given:
            if not _accepts(func, name):
                msg = f"{_flag(name)} is not supported by mnnkit.correct in this version"
                raise UsageError(msg)
            kwargs[name] = getattr(args, name)
    return kwargs


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"mnnkit: {text}", file=sys.stderr, flush=True)


def _read_gene_list(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        msg = f"--subset-genes file not found: {file}"
        raise DataError(msg)
    try:
        names = [line.strip() for line in file.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read --subset-genes file {file}: {err}"
        raise DataError(msg) from err
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        msg = f"--subset-genes file {file} lists no gene names"
        raise DataError(msg)
    return names


def _check_plot_dir(directory: str, files: list[str], *, force: bool) -> Path:
    """Check, before any work, that the plots can be written; refuse to replace plots without ``--force``.

    The directory itself is created only when the plots are made.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        msg = f"--plot {path} exists and is not a directory"
        raise DataError(msg)
    existing = [str(path / name) for name in files if (path / name).exists()]
    if existing and not force:
        msg = f"plot file(s) already exist: {', '.join(existing)}; pass --force to replace them"
        raise DataError(msg)
    ancestor = path.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        msg = f"cannot write plots into {path}: {ancestor} is not a writable directory"
        raise DataError(msg)
    return path


def _check_usage(args: argparse.Namespace) -> None:
    if len(args.inputs) == 1 and args.batch_names is not None:
        msg = "--batch-names needs several input files (one batch each); with one file use --batch-key"
        raise UsageError(msg)
    if hasattr(args, "subset") and args.subset_genes is not None:
        msg = "give either --subset or --subset-genes, not both"
        raise UsageError(msg)
    if args.n_top_genes is not None and (
        args.subset_genes is not None or getattr(args, "subset", "highly_variable") != "highly_variable"
    ):
        msg = "--n-top-genes selects the genes (var['highly_variable']); drop --subset/--subset-genes"
        raise UsageError(msg)


def _obs_column_check(adata: Any, column: str, option: str, source: str) -> None:
    if column not in adata.obs.columns:
        msg = f"{source} has no .obs column {column!r} ({option}); columns: {list_columns(adata.obs)}"
        raise DataError(msg)


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
        print(
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
    _check_usage(args)
    func = correct_function()
    kwargs = correct_kwargs(args, func)
    inputs = [check_input(path) for path in args.inputs]
    output = check_output(args.output, inputs=inputs, force=args.force)
    plot_dir = _check_plot_dir(args.plot, list(PLOT_FILES.values()), force=args.force) if args.plot else None
    if args.subset_genes is not None:
        kwargs["subset"] = _read_gene_list(args.subset_genes)

    _note(args, f"reading {', '.join(map(str, inputs))}")
    joined = None
    if len(inputs) == 1:
        adata = read_h5ad(inputs[0])
        source = str(inputs[0])
    else:
        names = batch_names_for(inputs, args.batch_names)
        joined = join_files(inputs, names, batch_key=args.batch_key)
        adata = joined.adata
        source = "the joined inputs"
        _note(args, f"joined {len(inputs)} files on {joined.n_shared} shared genes; dropped per file: "
              + ", ".join(f"{n} {d}" for n, d in joined.genes_dropped.items()))  # fmt: skip
        if joined.replaced_column:
            _note(args, f"obs[{args.batch_key!r}] of {', '.join(joined.replaced_column)} replaced by the file's batch")
        if joined.renamed_cells:
            _note(args, "cell names repeat across files: each got the suffix -<batch name>")
    _obs_column_check(adata, args.batch_key, "--batch-key", source)
    if args.plot and args.label_key is not None:
        _obs_column_check(adata, args.label_key, "--label-key", source)
    read_done = time.perf_counter()

    before = _keys(adata)
    layer = kwargs.get("layer")
    if args.normalize:
        _note(args, f"normalising (normalize_total + log1p) into layers[{NORMALIZED_LAYER!r}]")
        layer = kwargs["layer"] = _normalize(adata, layer)
    if args.n_top_genes is not None:
        import scanpy as sc

        if args.n_top_genes > adata.n_vars:
            msg = f"--n-top-genes {args.n_top_genes} exceeds the {adata.n_vars} genes of the input"
            raise DataError(msg)
        sc.pp.highly_variable_genes(adata, n_top_genes=args.n_top_genes, flavor="seurat", layer=layer)
        kwargs["subset"] = "highly_variable"
    if _accepts(func, "progress"):
        kwargs["progress"] = not args.quiet
    prepared = time.perf_counter()

    func(adata, batch_key=args.batch_key, **kwargs)
    corrected = time.perf_counter()

    key = kwargs.get("key_added", API_DEFAULTS["key_added"])
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
    _note(args, f"writing {output}")
    write_h5ad_atomic(adata, output, compression=args.compression)
    wrote = time.perf_counter()

    plots = []
    if plot_dir is not None:
        _note(args, f"plotting into {plot_dir}")
        plots = make_plots(adata, key=key, label_key=args.label_key, directory=plot_dir, which=list(PLOT_FILES))
    finished = time.perf_counter() if plot_dir is not None else wrote  # the parts add up to the total

    summary = _summary(args, adata, record, inputs=inputs, output=output, joined=joined, key=key, layer=layer)
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
    print(dumps(summary) if args.json else format_correct(summary), flush=True)
    return 0


def _version() -> str:
    from mnnkit import __version__

    return __version__


def make_plots(
    adata: Any, *, key: str, label_key: str | None, directory: Path, which: list[str], table=None
) -> list[str]:
    """Write the named plots (``umap``, ``mnn_pairs``, ``metrics``) into ``directory``; return their paths."""
    from mnnkit.pl import metrics_comparison, mnn_pairs, umap_comparison
    from mnnkit.pl._data import correction_data
    from mnnkit.pl._plots import DPI

    data = correction_data(adata, key) if {"umap", "mnn_pairs"} & set(which) else None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create the plot directory {directory}: {err.strerror or err}"
        raise DataError(msg) from err
    paths = []
    for name in which:
        if name == "umap":
            fig = umap_comparison(adata, key_added=key, label_key=label_key, data=data)
        elif name == "mnn_pairs":
            fig = mnn_pairs(adata, key_added=key, data=data)
        else:
            fig = metrics_comparison(adata, key_added=key, label_key=label_key, table=table)
        path = directory / f"{name}.png"
        save_figure_atomic(lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=DPI), path)
        paths.append(str(path))
    return paths


def _summary(args, adata, record, *, inputs, output, joined, key, layer) -> dict[str, Any]:
    import numpy as np

    batches = adata.obs[args.batch_key]
    names = [str(b) for b in np.asarray(record.get("batches", np.unique(batches.astype(str))), dtype=object)]
    counts = batches.astype(str).value_counts()
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
        "batches": {name: int(counts.get(name, 0)) for name in names},
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
