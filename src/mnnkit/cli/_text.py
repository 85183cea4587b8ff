"""Text that reaches the terminal: user data escaped and bounded.

Batch names, column names, file names and error messages come from files the user may not have written. Printed
raw, an escape sequence in a batch name can retitle the terminal, hide text or fake output; a 1 MB label
floods it. Everything the commands print goes through :func:`emit` (every line escaped by :func:`printable`),
and the text summaries shorten each label (:func:`label`) and each long list (:func:`name_list`). The JSON
output (``--json``) keeps values exact: :func:`json.dumps` escapes control characters itself.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

#: Labels (batch, column, gene names) longer than this many characters are shortened in text output.
MAX_LABEL = 60
#: Entries shown from a long list before "... and N more".
MAX_NAMES = 8
#: Characters one list may take on a line of text output: entries past the first that would go beyond it are
#: counted in "... and N more" instead of shown.
MAX_LIST_WIDTH = 160
#: Characters of an error message shown (the rest is cut, saying how much).
MAX_MESSAGE = 2000

# C0 and C1 controls and DEL (terminal escape sequences start with ESC or a C1 control), and the invisible
# format characters that reorder or hide text (bidirectional overrides and isolates, zero-width characters,
# line and paragraph separators, the byte-order mark)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: Any) -> str:
    r"""``str(text)`` with control and invisible format characters written as ``\x1b`` / ``\u202e`` escapes."""
    return _UNSAFE.sub(_escape, str(text))


def shorten(text: Any, limit: int = MAX_LABEL) -> str:
    """``str(text)``, cut to ``limit`` characters with ``...`` when longer (not escaped)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 10] + "..."


def label(value: Any, limit: int = MAX_LABEL) -> str:
    """One name for text output: shortened, then escaped."""
    return printable(shorten(value, limit))


def bounded_list(
    entries: Iterable[str],
    *,
    total: int | None = None,
    sep: str = ", ",
    limit: int = MAX_NAMES,
    width: int = MAX_LIST_WIDTH,
) -> str:
    """Text entries (already through :func:`label`) joined by ``sep``, summarised when long.

    At most ``limit`` entries are shown, and after the first no more than fit in ``width`` characters; the
    rest are counted: ``a, b, c, ... and 97 more``. ``total`` is the length of the whole list when
    ``entries`` holds only its first ones (default: ``len(entries)``).
    """
    entries = list(entries)
    total = len(entries) if total is None else total
    shown: list[str] = []
    used = 0
    for entry in entries[:limit]:
        extra = len(entry) + (len(sep) if shown else 0)
        if shown and used + extra > width:
            break
        shown.append(entry)
        used += extra
    if total > len(shown):
        shown.append(f"... and {total - len(shown)} more")
    return sep.join(shown)


def name_list(names: Iterable[Any], *, sep: str = ", ", limit: int = MAX_NAMES, width: int = MAX_LIST_WIDTH) -> str:
    """Names (each through :func:`label`) as :func:`bounded_list` shows them: the first few, then ``... and N more``."""
    names = list(names)
    return bounded_list([label(n) for n in names[:limit]], total=len(names), sep=sep, limit=limit, width=width)


def value_text(value: Any) -> str:
    """A parameter value for text output, summarised when long.

    A list or array as its length and first values, a mapping as its size and first items, a scalar as it is
    (shortened).
    """
    import numpy as np

    if isinstance(value, Mapping):
        items = [f"{label(k)}: {label(v)}" for k, v in list(value.items())[:5]]
        return f"{len(value)} entries ({bounded_list(items, total=len(value), limit=5, width=MAX_LIST_WIDTH // 2)})"
    if isinstance(value, np.ndarray | list | tuple) and np.ndim(value) > 0:
        values = np.ravel(np.asarray(value, dtype=object))
        return f"{values.size} values ({name_list(values, limit=5, width=MAX_LIST_WIDTH // 2)})"
    return label(value, MAX_LABEL * 2)


def one_line(text: Any, limit: int = MAX_MESSAGE) -> str:
    """A message on one line (whitespace runs collapsed), escaped, and cut after ``limit`` characters."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return printable(text)


def emit(text: str, *, file: IO[str] | None = None) -> None:
    """Print ``text`` with every line escaped (:func:`printable`); the line breaks themselves stay."""
    print("\n".join(printable(line) for line in str(text).split("\n")), file=file or sys.stdout, flush=True)
