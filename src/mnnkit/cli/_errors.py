"""Errors the command line reports as one line, with their exit codes."""

from __future__ import annotations

#: Exit status of a successful run.
EXIT_OK = 0
#: Exit status when the command could not be carried out on the given files (missing or unreadable input,
#: a column that is not there, an output that already exists, parameters the data reject, ...).
EXIT_DATA = 1
#: Exit status of a malformed command line (unknown option, bad value, conflicting options); argparse's own.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (SIGINT): 128 + the signal number, as shells report it; SIGTERM gives 143 and
#: SIGHUP 129 (see :mod:`mnnkit.cli._signals`).
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit status:
  0    success
  1    data or file error: missing or unreadable input, missing column, no shared genes, existing
       output without --force (also one created by another process during the run), data larger
       than --max-memory, parameters the data reject
  2    usage error: unknown option, bad or conflicting values
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM, 129 by SIGHUP; no partial output is left behind
Errors are one line on stderr; --debug adds the traceback."""


class CliError(Exception):
    """An error shown to the user as one line; ``code`` is the exit status."""

    code = EXIT_DATA


class DataError(CliError):
    """The files or the data do not allow the command (exit status 1)."""

    code = EXIT_DATA


class UsageError(CliError):
    """The command line is malformed or self-contradictory (exit status 2)."""

    code = EXIT_USAGE
