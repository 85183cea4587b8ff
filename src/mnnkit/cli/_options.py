"""Option parsing and checks shared by the commands: argparse value types, column and plot-directory checks.

The argparse types turn a bad value into a usage error (exit status 2) with a message naming the option.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from mnnkit.cli._errors import DataError
from mnnkit.cli._memory import parse_size
from mnnkit.cli._publish import check_replaceable, remove_leftovers
from mnnkit.cli._summary import list_columns
from mnnkit.cli._text import emit


def int_at_least(minimum: int):
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


def n_jobs(text: str) -> int:
    """An ``n_jobs`` value: a non-zero integer (negative counts back from the cores, as in joblib)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must be a non-zero integer (negative: all cores but that many - 1)")
    return value


def float_above(minimum: float, *, inclusive: bool, what: str):
    """An argparse type: a finite number ``> minimum`` (``>= minimum`` when ``inclusive``), named ``what``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be a {what} number, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_float = float_above(0.0, inclusive=False, what="positive")
non_negative_float = float_above(0.0, inclusive=True, what="non-negative")


def log_base(text: str) -> float:
    """The base of a logarithm: a positive number other than 1 (``e`` for the natural log)."""
    if text.strip().lower() == "e":
        import math

        return math.e
    value = positive_float(text)
    if value == 1:
        raise argparse.ArgumentTypeError("must be a positive number other than 1 (or e), got 1")
    return value


def fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {text}")
    return value


def k_value(text: str) -> int | tuple[int, int]:
    parts = text.split(",")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected K or K_LEFT,K_RIGHT, got {text!r}")
    values = tuple(int_at_least(1)(part.strip()) for part in parts)
    return values[0] if len(values) == 1 else values


def names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _tree(text: str) -> list:
    """A tree of names written with brackets, ``[[A,B],[C,D]]`` (names unquoted, no brackets or commas in them)."""
    tokens = [t.strip() for t in re.split(r"([\[\],])", text) if t.strip()]
    position = 0

    def node() -> list:
        nonlocal position
        if position >= len(tokens) or tokens[position] != "[":
            raise ValueError
        position += 1
        children: list = []
        while True:
            if position < len(tokens) and tokens[position] == "[":
                children.append(node())
            elif position < len(tokens) and tokens[position] not in "[],":
                children.append(tokens[position])
                position += 1
            else:
                raise ValueError
            if position < len(tokens) and tokens[position] == ",":
                position += 1
            elif position < len(tokens) and tokens[position] == "]":
                position += 1
                return children
            else:
                raise ValueError

    try:
        tree = node()
        if position != len(tokens):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a bracketed tree of names such as [[A,B],[C,D]], got {text!r}"
        ) from None
    return tree


def merge_order(text: str) -> str | list:
    """``auto``, batch names ``A,B,C``, or a tree ``[[A,B],[C,D]]`` (each inner list merged first)."""
    if text.strip() == "auto":
        return "auto"
    return _tree(text) if text.strip().startswith("[") else names(text)


def batch_weights(text: str) -> dict[str, float] | list:
    """``A=1,B=3`` (a weight per batch) or a tree ``[[A,B],C]`` (each node's children share its weight)."""
    if text.strip().startswith("["):
        return _tree(text)
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT,... or a tree such as [[A,B],C], got {text!r}")
        weights[name.strip()] = positive_float(value.strip())
    return weights


def flag(name: str) -> str:
    """The command-line option of an API parameter name (``use_rep`` -> ``--use-rep``)."""
    return "--" + name.replace("_", "-")


def check_plot_dir(directory: str, files: list[str], *, force: bool) -> Path:
    """Check, before any work, that the plots can be written; refuse to replace plots without ``--force``.

    The directory itself is created only when the plots are made.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        msg = f"--plot {path} exists and is not a directory"
        raise DataError(msg)
    existing = [path / name for name in files if os.path.lexists(path / name)]  # a dangling link counts
    if existing and not force:
        msg = f"plot file(s) already exist: {', '.join(map(str, existing))}; pass --force to replace them"
        raise DataError(msg)
    for file in existing:
        check_replaceable(file)  # a regular file or a symbolic link, even with --force
    ancestor = path.absolute()
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        msg = f"cannot write plots into {path}: {ancestor} is not a writable directory"
        raise DataError(msg)
    return path


def obs_column_check(adata: Any, column: str, option: str, source: str) -> None:
    """Raise :class:`DataError` naming ``option`` and listing the columns when ``column`` is missing."""
    if column not in adata.obs.columns:
        msg = f"{source} has no .obs column {column!r} ({option}); columns: {list_columns(adata.obs)}"
        raise DataError(msg)


def add_memory_option(group: Any) -> None:
    """``--max-memory`` (see :mod:`mnnkit.cli._memory`), on a parser or an argument group."""
    group.add_argument(
        "--max-memory",
        type=parse_size,
        default="auto",
        metavar="SIZE",
        help="refuse to start when the inputs (and the output) declare more data than SIZE, e.g. 16G "
        "(default: auto, the memory available now; off: no check)",
    )


def note(args: argparse.Namespace, text: str) -> None:
    """A progress note on stderr, unless ``--quiet``."""
    if not args.quiet:
        emit(f"mnnkit: {text}", file=sys.stderr)


def clean_leftovers(args: argparse.Namespace, outputs: list[Path]) -> None:
    """Delete the temporary files that killed runs left for ``outputs``, and say so (see ``_publish``)."""
    removed = [path for output in outputs for path in remove_leftovers(output)]
    if removed:
        what = (
            "temporary files left by interrupted runs"
            if len(removed) > 1
            else "temporary file left by an interrupted run"
        )
        note(args, f"removed {len(removed)} {what}: {', '.join(map(str, removed))}")
