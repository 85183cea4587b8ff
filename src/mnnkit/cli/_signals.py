"""Interrupts: SIGINT, SIGTERM and SIGHUP stop a command cleanly, with exit status 128 + the signal number.

While a command runs (:func:`signals_as_interrupts`), each of the three signals raises :class:`Interrupted`,
which unwinds the command (temporary files are removed on the way) and becomes exit status 130 (SIGINT),
143 (SIGTERM) or 129 (SIGHUP). While a file is written (:func:`deferred_signals`) the handlers only record
the signal: an exception raised inside h5py or matplotlib can be swallowed there ("Exception ignored ..."),
which let an interrupted write finish and the run exit 0. The write finishes, then the recorded signal is
raised and the finished temporary file is deleted instead of published.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

#: The signals a command turns into :class:`Interrupted` (SIGHUP does not exist on Windows).
HANDLED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A command stopped by a signal; ``status`` is the exit status (128 + the signal number)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def status(self) -> int:
        return 128 + self.signum


class _State:
    deferring = 0
    pending: list[int] = []  # noqa: RUF012 (one process-wide list, by design)


def _handler(signum: int, frame: object) -> None:
    if _State.deferring:
        if not _State.pending:
            # os.write, not print: a handler may run in the middle of a print to the same stream
            os.write(2, b"mnnkit: interrupt received; stopping once the file being written is closed\n")
        _State.pending.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Install the handlers for the duration of a command (only in the main thread, where Python runs them)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _handler) for signum in HANDLED}
    _State.pending.clear()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Record the handled signals instead of raising them inside the block; raise the first one after it.

    Yields the list of signals received so far (empty: none), so that the block can skip work it should not
    start once interrupted. A signal received in the block wins over an exception the block raised.
    """
    _State.deferring += 1
    try:
        yield _State.pending
    except BaseException as err:
        _State.deferring -= 1
        if _State.pending and not _State.deferring:
            raise Interrupted(_take_pending()) from err
        raise
    _State.deferring -= 1
    if _State.pending and not _State.deferring:
        raise Interrupted(_take_pending())


def _take_pending() -> int:
    signum = _State.pending[0]
    _State.pending.clear()  # one interrupt per command; a second signal while unwinding is not queued
    return signum
