"""The ``mnnkit`` command line: batch correction, metrics and file inspection on .h5ad files.

``mnnkit correct`` corrects one file (batches in an ``.obs`` column) or several (one batch per file) and
writes a new file; ``mnnkit normalize`` normalises raw counts across batches (batchelor's multiBatchNorm);
``mnnkit evaluate`` scores a correction; ``mnnkit info`` shows what a file holds. The entry point is
:func:`main` (``mnnkit`` on the path, or ``python -m mnnkit``). Heavy imports happen only inside the
commands, so ``mnnkit --help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from mnnkit.cli import _publish
from mnnkit.cli._errors import (
    EXIT_CODES_HELP,
    EXIT_DATA,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    DataError,
    UsageError,
)
from mnnkit.cli._signals import Interrupted, signals_as_interrupts
from mnnkit.cli._text import emit, one_line, printable

__all__ = ["EXIT_DATA", "EXIT_OK", "EXIT_USAGE", "CliError", "DataError", "UsageError", "build_parser", "main"]

PROG = "mnnkit"

_DESCRIPTION = """\
Mutual-nearest-neighbour (MNN) batch correction of .h5ad files (AnnData), batchelor's linear
corrections and normalisation across batches, with integration metrics and diagnostic plots. Input
files are never modified; outputs are written to a temporary file and published only when complete,
never over an existing file unless --force.
Run 'mnnkit COMMAND --help' for a command's options."""

_EPILOG = f"""\
getting started, on the example data shipped with mnnkit (raw counts, batches human/mouse):
  mnnkit data                                  # where the shipped example files are
  mnnkit correct "$(mnnkit data pancreas)" -o pancreas_mnn.h5ad --normalize --n-top-genes 1000
  mnnkit evaluate pancreas_mnn.h5ad --label-key cell_type --plot plots/
  mnnkit info pancreas_mnn.h5ad

{EXIT_CODES_HELP}"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (exit status 2) that points at ``--help``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes (``--json``, ``--quiet``, ``--debug``)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output and diagnostics")
    group.add_argument("--json", action="store_true", help="print a machine-readable JSON summary on stdout")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or notes on stderr (warnings and errors still)"
    )
    group.add_argument("--debug", action="store_true", help="show tracebacks, library warnings and debug logs")
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The ``mnnkit`` argument parser with its subcommands."""
    from mnnkit import __version__
    from mnnkit.cli import _correct, _data, _evaluate, _info, _normalize

    parser = _Parser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"mnnkit {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", parser_class=_Parser)
    parent = common_options()
    for module in (_correct, _normalize, _evaluate, _info, _data):
        module.add_parser(commands, parents=[parent], formatter_class=_Formatter, epilog=EXIT_CODES_HELP)
    parser.set_defaults(_commands=commands.choices)
    return parser


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None:
        return EXIT_OK
    return exc.code if isinstance(exc.code, int) else EXIT_USAGE


class _Escaping(logging.Formatter):
    """Log records as one escaped line (library messages name batches, which come from the user's files)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


@contextlib.contextmanager
def _diagnostics(*, debug: bool) -> Iterator[None]:
    """Route the library's logs and warnings to stderr as short lines for the duration of a command."""
    logger = logging.getLogger("mnnkit")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Escaping("mnnkit: %(levelname)s: %(message)s"))
    old_level, old_handlers = logger.level, logger.handlers[:]
    logger.handlers = [handler]  # the command's one line per record, instead of the library's usual routes
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)

    def show(message, category, filename, lineno, file=None, line=None):
        where = f" ({category.__name__} at {filename}:{lineno})" if debug else ""
        text = one_line(str(message))
        if category.__name__ == "InputDataWarning" and "looks like raw integer counts" in text:
            text += "; on the command line, pass --normalize"
        emit(f"mnnkit: warning: {text}{where}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        if not debug:
            for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
                warnings.simplefilter("ignore", category)
            with contextlib.suppress(ImportError):
                from anndata import ImplicitModificationWarning

                warnings.simplefilter("ignore", ImplicitModificationWarning)
        warnings.showwarning = show
        try:
            yield
        finally:
            logger.handlers = old_handlers
            logger.setLevel(old_level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnnkit`` command line on ``argv`` (default: ``sys.argv[1:]``) and return the exit status.

    Exit status: 0 success, 1 data or file error, 2 usage error, 128 + the signal number when interrupted
    (130 SIGINT, 143 SIGTERM, 129 SIGHUP). Errors are printed as one line on stderr; ``--debug`` adds the
    traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's own parser, so that the message names the command
            sub = args._commands.get(getattr(args, "command", None) or "", parser)
            sub.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exc:
        return _exit_status(exc)
    if args.command is None:
        parser.print_help(sys.stderr)
        print(f"{PROG}: error: a command is required (correct, normalize, evaluate, info or data)", file=sys.stderr)
        return EXIT_USAGE
    args.argv = argv
    prefix = f"{PROG} {args.command}"
    debug = bool(args.debug)
    _publish.PUBLISHED.clear()
    try:
        with signals_as_interrupts(), _diagnostics(debug=debug):
            return int(args.run(args))
    except BrokenPipeError:
        # the reader of stdout went away (``mnnkit info f.h5ad | head``): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_DATA
    except (Exception, KeyboardInterrupt) as err:
        status, message = _describe(err, prefix)
        if debug:
            emit("".join(traceback.format_exception(err)).rstrip("\n"), file=sys.stderr)
        emit(message, file=sys.stderr)
        return status


def _describe(err: BaseException, prefix: str) -> tuple[int, str]:
    """Exit status and the one-line message for an exception raised by a command."""
    if isinstance(err, CliError):
        return err.code, f"{prefix}: error: {one_line(str(err))}"
    if isinstance(err, KeyboardInterrupt):
        status = err.status if isinstance(err, Interrupted) else EXIT_INTERRUPTED
        written = ", ".join(map(str, _publish.PUBLISHED))
        outcome = f"only {written} was written" if written else "no output was written"
        return status, one_line(f"{prefix}: interrupted; {outcome} (inputs untouched)")
    if isinstance(err, MemoryError):
        return EXIT_DATA, f"{prefix}: error: out of memory"
    if isinstance(err, ValueError | TypeError | KeyError | OSError):
        # the library's validation errors name the parameter and what is available
        text = err.args[0] if isinstance(err, KeyError) and err.args else err
        return EXIT_DATA, f"{prefix}: error: {one_line(str(text))}"
    # anything else is a bug: say so in one line; the traceback is behind --debug
    return EXIT_DATA, f"{prefix}: unexpected error ({type(err).__name__}): {one_line(str(err))}; rerun with --debug"
