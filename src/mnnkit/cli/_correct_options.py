"""The options of ``mnnkit correct`` and how they map onto :func:`mnnkit.correct`'s parameters."""

from __future__ import annotations

import argparse
from typing import Any

from mnnkit.cli._errors import UsageError
from mnnkit.cli._options import (
    add_memory_option,
    batch_weights,
    flag,
    fraction,
    int_at_least,
    k_value,
    log_base,
    merge_order,
    n_jobs,
    names,
    non_negative_float,
    positive_float,
)

#: Defaults of :func:`mnnkit.correct`, shown in ``--help``. Options left out on the command line are not
#: passed at all, so the API's own defaults apply; ``tests/test_cli_options.py`` checks this table against
#: the signature.
API_DEFAULTS: dict[str, Any] = {
    "batch_key": "batch",
    "layer": None,
    "subset": None,
    "correct_all": True,
    "k": 20,
    "prop_k": None,
    "sigma": 0.1,
    "cos_norm_in": True,
    "cos_norm_out": True,
    "var_adj": True,
    "svd_dim": 0,
    "merge_order": None,
    "restrict": None,
    "approximate": False,
    "neighbors": "auto",
    "kernel_neighbors": None,
    "var_adj_sample": None,
    "flavor": "batchelor",
    "key_added": None,
    "rng": 0,
    "n_jobs": None,
}
#: Options forwarded to ``mnnkit.correct`` exactly when given (argparse ``dest`` = API parameter name).
FORWARDED = [name for name in API_DEFAULTS if name != "batch_key"] + ["method"]
#: Options of the fast (PCA-space) method only; forwarded when given with ``--method fast``.
FAST_ONLY = ["d", "ndist", "cos_norm", "use_rep", "min_batch_skip", "svd_solver", "reconstruct", "weights", "pairing"]
#: ``--method`` values that run batchelor's per-gene linear corrections instead of :func:`mnnkit.correct`:
#: :func:`mnnkit.rescale_batches` and :func:`mnnkit.regress_batches`.
LINEAR_METHODS = {"rescale": "rescale_batches", "regress": "regress_batches"}
#: Defaults of the parameters of :func:`mnnkit.rescale_batches` that :func:`mnnkit.correct` does not have
#: (``tests/test_cli_linear.py`` checks them against the signature).
RESCALE_DEFAULTS: dict[str, Any] = {"log_base": 2, "pseudo_count": 1}
#: Options forwarded to the linear methods when given (the others belong to the MNN methods).
LINEAR_FORWARDED = ["layer", "subset", "restrict", "key_added"]
#: ``--method cluster`` runs :func:`mnnkit.cluster_mnn` (batchelor's clusterMNN); the options it takes.
CLUSTER_FORWARDED = ["layer", "subset", "merge_order", "key_added", "rng", "n_jobs", "cos_norm", "min_batch_skip"]
#: Defaults of :func:`mnnkit.cluster_mnn`'s own parameters (``tests/test_cli_cluster.py`` checks the signature).
CLUSTER_DEFAULTS: dict[str, Any] = {"clusters": None, "n_clusters": 10}
#: Layer that ``--normalize`` writes the log-normalised values to.
NORMALIZED_LAYER = "lognorm"
#: File names written under ``--plot DIR``.
PLOT_FILES = {"umap": "umap.png", "mnn_pairs": "mnn_pairs.png"}

_DESCRIPTION = """\
Correct batch effects with mutual nearest neighbours (or, with --method rescale|regress, batchelor's
linear rescaleBatches/regressBatches) and write a new .h5ad file.

One input: the batches are the values of the .obs column --batch-key. Several inputs: each file is one
batch (named after the file, or --batch-names), the files are joined on the genes they share (the number
dropped is reported) and merged in the order given. Input files are never modified.

The input must be log-normalised expression (in .X or --layer). For raw counts pass --normalize
(normalize_total + log1p into layers['lognorm']; .X is kept as it is) and usually --n-top-genes 2000
(highly variable genes, used for the MNN distances).

Output: the input data plus layers[KEY] (corrected values of every gene; with --no-correct-all,
batchelor's default layout: the --subset genes only, NaN for the others) and uns[KEY] (parameters, merge
order, MNN pairs per step, and the command line), KEY being --key-added (default mnn; with --method fast,
obsm/varm/uns[KEY] with default X_mnn). --method rescale and regress write layers[KEY] (NaN for genes
outside --subset) and uns[KEY] (parameters, command line), with default keys rescale_batches and
regress_batches; they take --layer, --subset, --restrict, --key-added (and rescale --log-base,
--pseudo-count), not the MNN options. --method cluster (batchelor's clusterMNN) writes obsm/varm/uns[KEY]
(default X_cluster_mnn) from --clusters COLUMN, or a k-means per batch.

The first run after installing compiles mnnkit's numba kernels (about 10-20 s); later runs reuse them."""

_EXAMPLES = """\
examples:
  # the shipped pancreas data (raw counts, batches human/mouse):
  mnnkit correct pancreas.h5ad -o corrected.h5ad --normalize --n-top-genes 1000
  # log-normalised data, highly variable genes already marked:
  mnnkit correct data.h5ad -o out.h5ad --batch-key sample --subset highly_variable --merge-order auto
  # one batch per file:
  mnnkit correct a.h5ad b.h5ad c.h5ad -o out.h5ad --batch-names A,B,C
  # batchelor's linear baseline on multiBatchNorm output (mnnkit normalize), means from control cells:
  mnnkit correct normalized.h5ad -o out.h5ad --method rescale --layer multi_batch_norm --restrict control
"""


#: ``--x`` / ``--no-x`` pairs of the boolean parameters.
_ON_OFF = argparse.BooleanOptionalAction


def _api_option(group: Any, *flags: str, **kwargs: Any) -> None:
    """An option that maps onto a parameter of :func:`mnnkit.correct` (or ``fast_mnn``).

    Left out on the command line, it is absent from the parsed namespace (``argparse.SUPPRESS``), so
    :func:`correct_kwargs` does not pass it and the API's own default applies.
    """
    group.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)


def _fmt_default(name: str) -> str:
    value = API_DEFAULTS[name]
    return "default: " + ("none" if value is None else str(value))


def add_options_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``correct`` subcommand with its options to ``commands`` (an argparse subparsers object)."""
    p = commands.add_parser(
        "correct",
        help="correct batch effects (MNN) and write a new .h5ad file",
        description=_DESCRIPTION,
        **{**kwargs, "epilog": _EXAMPLES + "\n" + kwargs.get("epilog", "")},
    )
    p.add_argument("inputs", nargs="+", metavar="IN.h5ad", help="input file(s); several files = one batch each")
    p.add_argument("-o", "--output", required=True, metavar="OUT.h5ad", help="output file (must not exist)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing output or plot: a regular file or a symbolic link (the link itself), never an "
        "input, a FIFO, a device or a directory",
    )
    p.add_argument(
        "--compression",
        choices=["gzip", "lzf"],
        help="compress the output's arrays (smaller file, slower write; default: none, as anndata)",
    )

    add_memory_option(p)

    g = p.add_argument_group("batches and input data")
    g.add_argument("--batch-key", default="batch", metavar="COLUMN", help=".obs column of batches (default: batch)")
    g.add_argument(
        "--batch-names", type=names, metavar="A,B,..", help="batch names of several inputs (default: file names)"
    )
    _api_option(g, "--layer", metavar="LAYER", help="correct this layer instead of .X")
    g.add_argument(
        "--normalize", action="store_true", help="input is raw counts: normalize_total + log1p into layers['lognorm']"
    )
    g.add_argument(
        "--n-top-genes",
        type=int_at_least(1),
        metavar="N",
        help="mark N highly variable genes (scanpy, flavor seurat) and use them as --subset",
    )
    subset_help = "boolean .var column of genes for distances, e.g. highly_variable (default: all genes)"
    _api_option(g, "--subset", metavar="COLUMN", help=subset_help)
    g.add_argument("--subset-genes", metavar="FILE", help="text file of gene names (one per line) for distances")
    correct_all_help = (
        "correct every gene with the pairs found on the subset (default: on); --no-correct-all: batchelor's "
        "default layout, only the subset genes, the others NaN"
    )
    _api_option(g, "--correct-all", action=_ON_OFF, help=correct_all_help)

    g = p.add_argument_group("correction (defaults are those of mnnkit.correct)")
    method_help = (
        "classic MNN in gene space (default), fast MNN in PCA space, MNN between clusters (cluster, "
        "batchelor's clusterMNN), or batchelor's linear rescaleBatches (rescale) or regressBatches (regress)"
    )
    _api_option(g, "--method", choices=["classic", "fast", "cluster", *LINEAR_METHODS], help=method_help)
    k_help = f"nearest neighbours per side, or K_LEFT,K_RIGHT ({_fmt_default('k')})"
    _api_option(g, "-k", "--k", type=k_value, metavar="K", help=k_help)
    _api_option(g, "--prop-k", type=fraction, metavar="P", help="k per side = max(k, P x batch size) (default: off)")
    _api_option(g, "--sigma", type=positive_float, help=f"Gaussian kernel width ({_fmt_default('sigma')})")
    _api_option(g, "--cos-norm-in", action=_ON_OFF, help="cosine-normalise the data for distances (default: on)")
    _api_option(g, "--cos-norm-out", action=_ON_OFF, help="cosine-normalise the corrected output (default: on)")
    _api_option(g, "--var-adj", action=_ON_OFF, help="variance adjustment of the corrections (default: on)")
    svd_dim_help = f"biological axes removed from the corrections ({_fmt_default('svd_dim')})"
    _api_option(g, "--svd-dim", type=int_at_least(0), metavar="N", help=svd_dim_help)
    merge_order_help = (
        "'auto' (most MNN pairs first), batch names in order, or a tree such as [[A,B],[C,D]] (each inner list "
        "merged first; quote it in the shell) (default: batch order)"
    )
    _api_option(g, "--merge-order", type=merge_order, metavar="auto|A,B,..", help=merge_order_help)
    approximate_help = "faster approximate var.adj (sampled, float32) for large data (default: exact)"
    _api_option(g, "--approximate", action="store_true", help=approximate_help)
    neighbors_help = f"neighbour search ({_fmt_default('neighbors')})"
    _api_option(g, "--neighbors", choices=["auto", "exact", "partition", "pynndescent"], help=neighbors_help)
    kernel_help = "kernel over each cell's N nearest MNN cells only (default: all)"
    _api_option(g, "--kernel-neighbors", type=int_at_least(1), metavar="N", help=kernel_help)
    sample_help = "cells per side for var.adj quantiles (default: all; 2000 with --approximate)"
    _api_option(g, "--var-adj-sample", type=int_at_least(2), metavar="N", help=sample_help)
    flavor_help = (
        "batchelor: batchelor's answers (default); robust: largest batch as reference whatever the batch order, "
        "vectors between local centres of mass (see the guide, 'Choosing a flavour')"
    )
    _api_option(g, "--flavor", choices=["batchelor", "robust"], help=flavor_help)
    restrict_help = "boolean .obs column of the cells the corrections are computed from (default: all)"
    _api_option(g, "--restrict", metavar="COLUMN", help=restrict_help)
    key_help = (
        "key the outputs are written under (default: mnn; X_mnn with --method fast; rescale_batches, "
        "regress_batches with --method rescale, regress)"
    )
    _api_option(g, "--key-added", metavar="KEY", help=key_help)
    seed_help = f"seed of the approximate searches ({_fmt_default('rng')})"
    _api_option(g, "--seed", dest="rng", type=int_at_least(0), metavar="N", help=seed_help)
    jobs_help = "threads for numba and BLAS (default: as they are; -1 all cores)"
    _api_option(g, "--n-jobs", type=n_jobs, metavar="N", help=jobs_help)

    g = p.add_argument_group("fast method only (--method fast; defaults are mnnkit.fast_mnn's)")
    _api_option(g, "--d", type=int_at_least(1), metavar="N", help="principal components")
    ndist_help = "tricube bandwidth, in distances to the ceil(k/2)-th nearest MNN cell"
    _api_option(g, "--ndist", type=positive_float, metavar="X", help=ndist_help)
    cos_norm_help = "cosine-normalise before the PCA (default: on for genes, off with --use-rep)"
    _api_option(g, "--cos-norm", action=_ON_OFF, help=cos_norm_help)
    _api_option(g, "--use-rep", metavar="OBSM", help="correct this .obsm embedding")
    skip_help = "skip merge steps whose batch effect is below X"
    _api_option(g, "--min-batch-skip", type=non_negative_float, metavar="X", help=skip_help)
    _api_option(g, "--svd-solver", choices=["randomized", "exact"], help="PCA solver")
    reconstruct_help = "gene-level output: rotation for all genes, or also layers[KEY]"
    _api_option(g, "--reconstruct", choices=["factors", "layer"], help=reconstruct_help)
    pairing_help = "mutual (MNN pairs, default) or dual_softmax (weighted candidate pairs; needs --flavor robust)"
    _api_option(g, "--pairing", choices=["mutual", "dual_softmax"], help=pairing_help)
    weights_help = "batch weights in the PCA: A=1,B=3, or a tree such as [[A,B],C] (children share a node's weight)"
    _api_option(g, "--weights", type=batch_weights, metavar="A=W,..", help=weights_help)

    g = p.add_argument_group("cluster method only (--method cluster; defaults are mnnkit.cluster_mnn's)")
    clusters_help = ".obs column of each cell's cluster within its batch (default: a seeded k-means per batch)"
    _api_option(g, "--clusters", metavar="COLUMN", help=clusters_help)
    n_clusters_help = f"clusters per batch of that k-means (default: {CLUSTER_DEFAULTS['n_clusters']})"
    _api_option(g, "--n-clusters", type=int_at_least(1), metavar="N", help=n_clusters_help)

    g = p.add_argument_group("rescale method only (--method rescale; defaults are mnnkit.rescale_batches')")
    log_base_help = (
        f"base of the input's logarithm (default: {RESCALE_DEFAULTS['log_base']}, batchelor's; e with --normalize, "
        "whose log1p is natural)"
    )
    _api_option(g, "--log-base", type=log_base, metavar="B", help=log_base_help)
    pseudo_help = f"pseudo-count of the input's logarithm (default: {RESCALE_DEFAULTS['pseudo_count']})"
    _api_option(g, "--pseudo-count", type=positive_float, metavar="X", help=pseudo_help)

    g = p.add_argument_group("plots")
    g.add_argument(
        "--plot",
        metavar="DIR",
        help=f"write {' and '.join(PLOT_FILES.values())} (before/after UMAPs, MNN pairs) to DIR",
    )
    g.add_argument("--label-key", metavar="COLUMN", help=".obs column of cell types to colour the UMAPs by")
    return p


def _only(names: list[str], where: str) -> UsageError:
    options = ", ".join(flag(name) for name in names)
    return UsageError(f"{options} only appl{'y' if len(names) > 1 else 'ies'} to {where}")


def correct_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`mnnkit.correct` that the command line sets (only those given).

    With ``--method rescale|regress``: those of :func:`mnnkit.rescale_batches` or :func:`mnnkit.regress_batches`,
    plus ``method``. Raises :class:`UsageError` when an option of another method is given.
    """
    method = getattr(args, "method", "classic")
    rescale_given = [name for name in RESCALE_DEFAULTS if hasattr(args, name)]
    cluster_given = [name for name in CLUSTER_DEFAULTS if hasattr(args, name)]
    if method == "cluster":
        allowed = [*CLUSTER_FORWARDED, *CLUSTER_DEFAULTS, "method"]
        other = [
            name for name in [*FORWARDED, *FAST_ONLY, *RESCALE_DEFAULTS] if hasattr(args, name) and name not in allowed
        ]
        if other:
            raise _only(other, "--method classic, fast or rescale (not cluster)")
        return {name: getattr(args, name) for name in allowed if hasattr(args, name)}
    if cluster_given:
        raise _only(cluster_given, "--method cluster")
    if method in LINEAR_METHODS:
        mnn_given = [
            name
            for name in [*FORWARDED, *FAST_ONLY]
            if hasattr(args, name) and name not in [*LINEAR_FORWARDED, "method"]
        ]
        if mnn_given:
            raise _only(mnn_given, "--method classic or fast (MNN)")
        if rescale_given and method != "rescale":
            raise _only(rescale_given, "--method rescale")
        return {
            name: getattr(args, name) for name in [*LINEAR_FORWARDED, *rescale_given, "method"] if hasattr(args, name)
        }
    if rescale_given:
        raise _only(rescale_given, "--method rescale")
    kwargs = {name: getattr(args, name) for name in FORWARDED if hasattr(args, name)}
    fast_given = [name for name in FAST_ONLY if hasattr(args, name)]
    if fast_given and kwargs.get("method") != "fast":
        raise _only(fast_given, "--method fast")
    kwargs.update({name: getattr(args, name) for name in fast_given})
    return kwargs


def check_usage(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for options that contradict each other."""
    if len(args.inputs) == 1 and args.batch_names is not None:
        msg = "--batch-names needs several input files (one batch each); with one file use --batch-key"
        raise UsageError(msg)
    if hasattr(args, "subset") and args.subset_genes is not None:
        msg = "give either --subset or --subset-genes, not both"
        raise UsageError(msg)
    if getattr(args, "method", "classic") in (*LINEAR_METHODS, "cluster") and args.plot is not None:
        msg = f"--plot draws the MNN pairs and corrections of --method classic or fast, not --method {args.method}"
        raise UsageError(msg)
    if args.n_top_genes is not None and (
        args.subset_genes is not None or getattr(args, "subset", "highly_variable") != "highly_variable"
    ):
        msg = "--n-top-genes selects the genes (var['highly_variable']); drop --subset/--subset-genes"
        raise UsageError(msg)
