"""``mnnkit data``: where the example data shipped with mnnkit are, for trying the commands."""

from __future__ import annotations

import argparse
from typing import Any

from mnnkit.cli._errors import UsageError
from mnnkit.cli._summary import dumps
from mnnkit.cli._text import emit

#: name -> (file, description)
SHIPPED = {
    "pancreas": (
        "cider_pancreas_human_mouse.h5ad",
        "350 cells x 12474 genes, raw counts; obs: batch (human/mouse), cell_type (5); use --normalize",
    ),
    "simulated": (
        "canek_simbatches.h5ad",
        "1579 cells x 500 genes, log-like values; obs: batch (B1/B2), cell_type (4)",
    ),
}


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand to ``commands``."""
    p = commands.add_parser(
        "data",
        help="paths of the example .h5ad files shipped with mnnkit",
        description="Print the paths of the example data shipped with mnnkit (read them, never write them). "
        "With a NAME, print only that path, for use as $(mnnkit data pancreas).",
        **kwargs,
    )
    p.set_defaults(run=run)
    p.add_argument("name", nargs="?", choices=sorted(SHIPPED), help="one data set")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit data``; return the exit status."""
    from mnnkit.datasets import data_path

    if args.name is not None and args.json:
        msg = "--json lists all data sets; drop NAME"
        raise UsageError(msg)
    if args.name is not None:
        emit(str(data_path(SHIPPED[args.name][0])))
        return 0
    listing = {name: {"path": str(data_path(file)), "description": text} for name, (file, text) in SHIPPED.items()}
    if args.json:
        emit(dumps(listing))
    else:
        for name, entry in listing.items():
            emit(f"{name}: {entry['path']}\n  {entry['description']}")
    return 0
