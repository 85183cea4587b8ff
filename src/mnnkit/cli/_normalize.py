"""``mnnkit normalize``: batchelor's multiBatchNorm on the raw counts of an .h5ad file, written to a new file."""

from __future__ import annotations

import argparse
import shlex
import time
from typing import Any

from mnnkit.cli._errors import UsageError
from mnnkit.cli._io import check_input, read_gene_list, read_h5ad
from mnnkit.cli._memory import check_before_reading
from mnnkit.cli._options import add_memory_option, clean_leftovers, non_negative_float, note, obs_column_check
from mnnkit.cli._publish import check_output, write_h5ad
from mnnkit.cli._summary import batch_counts, dumps, format_normalize
from mnnkit.cli._text import emit

#: Defaults of :func:`mnnkit.multi_batch_norm`, shown in ``--help``. Options left out on the command line are not
#: passed, so the API's own defaults apply; ``tests/test_cli_linear.py`` checks this table against the signature.
API_DEFAULTS: dict[str, Any] = {
    "batch_key": "batch",
    "layer": None,
    "subset": None,
    "normalize_all": False,
    "min_mean": 1.0,
    "pseudo_count": 1.0,
    "key_added": "multi_batch_norm",
}
#: Options forwarded to ``mnnkit.multi_batch_norm`` exactly when given (argparse ``dest`` = parameter name).
FORWARDED = [name for name in API_DEFAULTS if name != "batch_key"]

_DESCRIPTION = """\
Normalise raw counts across batches (batchelor's multiBatchNorm) and write a new .h5ad file.

Library size factors are computed per batch and then scaled so that every batch has the coverage of the
batch with the lowest coverage; the output is log2(counts / size factor + 1). Run it before a correction
when batches were sequenced to different depths (batchelor's advice), then correct the new layer:
mnnkit correct OUT.h5ad --layer multi_batch_norm ...

Output: the input data plus layers[KEY] (log2 normalised counts of all genes; a sparse input stays
sparse), obs[KEY_size_factor] and uns[KEY] (parameters, per-batch rescaling divisors, reference batch,
the command line), KEY being --key-added (default multi_batch_norm). With --subset and without
--normalize-all only the subset genes are returned, as batchelor does: obsm[KEY] (cells x subset genes,
names in uns[KEY]['genes']) instead of the layer. Input files are never modified."""

_EXAMPLES = """\
examples:
  # the shipped pancreas data (raw counts in .X, batches human/mouse):
  mnnkit normalize "$(mnnkit data pancreas)" -o normalized.h5ad
  # counts in a layer; size factors from highly variable genes, all genes normalised:
  mnnkit normalize data.h5ad -o out.h5ad --layer counts --subset highly_variable --normalize-all
"""


def _api_option(group: Any, *flags: str, **kwargs: Any) -> None:
    """An option of :func:`mnnkit.multi_batch_norm`, absent from the namespace when left out (API default)."""
    group.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)


def _positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


_positive_float.__name__ = "number"


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``normalize`` subcommand to ``commands`` (an argparse subparsers object)."""
    p = commands.add_parser(
        "normalize",
        help="normalise raw counts across batches (multiBatchNorm) and write a new .h5ad file",
        description=_DESCRIPTION,
        allow_abbrev=False,  # an abbreviation of one option must not silently become another (--key: --key-added)
        **{**kwargs, "epilog": _EXAMPLES + "\n" + kwargs.get("epilog", "")},
    )
    p.set_defaults(run=run)
    p.add_argument("input", metavar="IN.h5ad", help="input file (raw counts in .X or --layer)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5ad", help="output file (must not exist)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output: a regular file or a symbolic link (the link itself), never the input",
    )
    p.add_argument(
        "--compression", choices=["gzip", "lzf"], help="compress the output's arrays (default: none, as anndata)"
    )
    add_memory_option(p)

    g = p.add_argument_group("batches and input data")
    g.add_argument("--batch-key", default="batch", metavar="COLUMN", help=".obs column of batches (default: batch)")
    _api_option(g, "--layer", metavar="LAYER", help="layer of raw counts to read instead of .X")
    subset_help = "boolean .var column of the genes the size factors are computed from (default: all genes)"
    _api_option(g, "--subset", metavar="COLUMN", help=subset_help)
    g.add_argument("--subset-genes", metavar="FILE", help="text file of gene names (one per line) instead of --subset")

    g = p.add_argument_group("normalisation (defaults are those of mnnkit.multi_batch_norm)")
    all_help = "with a subset, normalise all genes into layers[KEY] (default: subset genes only, in obsm[KEY])"
    _api_option(g, "--normalize-all", action="store_true", help=all_help)
    min_mean_help = f"least average count of a gene used for the batch ratios (default: {API_DEFAULTS['min_mean']:g})"
    _api_option(g, "--min-mean", type=_positive_float, metavar="X", help=min_mean_help)
    pc_help = f"pseudo-count added before the log (default: {API_DEFAULTS['pseudo_count']:g}; 1 for sparse counts)"
    _api_option(g, "--pseudo-count", type=_positive_float, metavar="X", help=pc_help)
    key_help = f"key the outputs are written under (default: {API_DEFAULTS['key_added']})"
    _api_option(g, "--key-added", metavar="KEY", help=key_help)
    return p


def normalize_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`mnnkit.multi_batch_norm` that the command line sets (only those given)."""
    if hasattr(args, "subset") and args.subset_genes is not None:
        msg = "give either --subset or --subset-genes, not both"
        raise UsageError(msg)
    return {name: getattr(args, name) for name in FORWARDED if hasattr(args, name)}


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit normalize``; return the exit status."""
    started = time.perf_counter()
    kwargs = normalize_kwargs(args)
    source = check_input(args.input)
    output = check_output(args.output, inputs=[source], force=args.force)
    clean_leftovers(args, [output])
    check_before_reading([source], args.max_memory)  # the output is about the size of the input
    if args.subset_genes is not None:
        kwargs["subset"] = read_gene_list(args.subset_genes)

    note(args, f"reading {source}")
    adata = read_h5ad(source)
    obs_column_check(adata, args.batch_key, "--batch-key", str(source))
    read_done = time.perf_counter()

    from mnnkit import multi_batch_norm

    multi_batch_norm(adata, batch_key=args.batch_key, **kwargs)
    normalized = time.perf_counter()

    key = kwargs.get("key_added", API_DEFAULTS["key_added"])
    record = adata.uns[key]
    subset = kwargs.get("subset")
    record["cli"] = {
        "command": shlex.join(["mnnkit", *args.argv]),
        "version": _version(),
        "inputs": [str(source)],
        "subset": subset if isinstance(subset, str) else "",
        "subset_genes": list(subset) if isinstance(subset, list) else [],
    }
    where = str(record["output"])
    written = sorted([where, f"obs[{key + '_size_factor'!r}]", f"uns[{key!r}]"])
    note(args, f"writing {output}")
    write_h5ad(adata, output, force=args.force, compression=args.compression)
    wrote = time.perf_counter()

    summary = _summary(args, adata, record, source=source, output=output, key=key, where=where)
    summary["written"] = written
    summary["seconds"] = {
        "read": read_done - started,
        "normalize": normalized - read_done,
        "write": wrote - normalized,
        "total": wrote - started,
    }
    emit(dumps(summary) if args.json else format_normalize(summary))
    return 0


def _version() -> str:
    from mnnkit import __version__

    return __version__


def _summary(args, adata, record, *, source, output, key, where) -> dict[str, Any]:
    import numpy as np

    names = [str(b) for b in np.ravel(np.asarray(record["batches"], dtype=object))]
    counts = batch_counts(adata.obs[args.batch_key])
    params = dict(record["params"])
    codes = adata.obs[args.batch_key].astype(str).to_numpy()
    factors = adata.obs[f"{key}_size_factor"].to_numpy()
    size_factors = {}
    for name in names:
        values = factors[codes == name]
        size_factors[name] = {"min": values.min(), "median": float(np.median(values)), "max": values.max()}
    subset = record["cli"]["subset"] or None
    if args.subset_genes is not None:
        subset = f"{len(record['cli']['subset_genes'])} genes from {args.subset_genes}"
    return {
        "command": "normalize",
        "mnnkit_version": _version(),
        "output": str(output),
        "inputs": [str(source)],
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "batch_key": args.batch_key,
        "batches": {name: counts.get(name, 0) for name in names},
        "layer": params.get("layer", "X"),
        "subset": subset,
        "n_subset_genes": params.get("n_subset_genes"),
        "normalize_all": bool(params.get("normalize_all", False)),
        "key_added": key,
        "values": where,
        "reference_batch": str(record["reference_batch"]),
        "rescaling_divisor": dict(zip(names, np.asarray(record["rescaling_divisor"], dtype=float), strict=True)),
        "size_factors": size_factors,
        "params": params,
    }
