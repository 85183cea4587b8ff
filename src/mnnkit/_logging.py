"""The one logging policy of mnnkit, routed to where a scanpy user looks for it.

Every module logs to ``logging.getLogger("mnnkit")``; this module routes those records.

Where a record goes
-------------------
- **scanpy is imported** (the usual case in a scanpy session): to scanpy's logger, so mnnkit's
  messages follow ``sc.settings.verbosity`` (``"info"`` shows them, ``"error"`` hides them) and
  ``sc.settings.logfile``, formatted as scanpy's own.
- **always**, in addition: to the handlers of Python's root logger, filtered by its level, as a record
  of any library without handlers of its own would be (``logging.basicConfig(level="INFO")`` shows
  mnnkit's info messages). With no logging configured and no scanpy, warnings reach stderr through
  Python's last-resort handler, as usual; with scanpy imported, scanpy's verbosity decides alone.

mnnkit never imports scanpy to log (importing it costs about a second): without scanpy the standard
``logging`` configuration alone decides. Set the level of the ``"mnnkit"`` logger to silence mnnkit
whatever the other settings say.

Messages name batches by their names, and a function that takes long logs its start and, at the
end, ``finished (H:MM:SS)`` as scanpy does (:func:`finished`).
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

__all__ = ["LOGGER_NAME", "finished", "install"]

#: The logger every mnnkit module writes to.
LOGGER_NAME = "mnnkit"


def finished(started: float) -> str:
    """The closing message of a step that began at ``time.perf_counter() == started``, as scanpy words it."""
    elapsed = timedelta(seconds=int(time.perf_counter() - started))
    return f"    finished ({elapsed})"


class _Route(logging.Handler):
    """Pass each record to scanpy's logger (if scanpy is imported) and to the root logger's handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        scanpy = sys.modules.get("scanpy")
        scanpy_root = getattr(getattr(scanpy, "settings", None), "_root_logger", None)
        if scanpy_root is not None and scanpy_root.isEnabledFor(record.levelno):
            # scanpy's formatter reads these two attributes of its own records
            scanpy_root.handle(logging.makeLogRecord({**record.__dict__, "time_passed": None, "deep": None}))
        root = logging.getLogger()
        if root.handlers:
            if root.isEnabledFor(record.levelno):
                root.handle(record)
        elif scanpy_root is None and logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            # no logging configured and no scanpy: warnings reach stderr as they would without this route
            logging.lastResort.handle(record)


def install() -> logging.Logger:
    """Set up the ``"mnnkit"`` logger once (called on ``import mnnkit``); return it.

    The logger passes every record to :class:`_Route` and none up the hierarchy (the route forwards to
    the root logger itself, after its level check). A level the user set on it is kept.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _Route) for h in logger.handlers):
        logger.addHandler(_Route())
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.DEBUG)
    return logger
