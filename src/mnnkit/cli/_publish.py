"""Outputs of the command line: checked before any work, written beside their place, published without clobbering.

The rules (the README's "Command line" section states them for users):

- An output is written to a temporary file in its own directory, named ``.NAME.mnnkit-tmp-HOST-PID-RANDOM``
  (HOST: 8 hex digits of the machine's name, PID: the writing process), and published only once complete.
- Without ``--force`` it is published with :func:`os.link`, which fails if the path exists: a file that
  appeared at the path during the run (another run, another tool) is kept and the run exits with status 1.
  The check at the start only spares the work; the link is the guarantee.
- With ``--force`` it replaces a regular file or a symbolic link (the link itself, never its target), with an
  atomic :func:`os.replace`. FIFOs, devices, sockets and directories are never replaced.
- A signal during the write lets the write finish, deletes the temporary file and stops (see
  :mod:`mnnkit.cli._signals`). A process killed outright (SIGKILL, power loss) cannot clean up: the next run
  writing the same output deletes such leftovers, only those matching the pattern above whose process no
  longer runs on this machine and which the current user owns.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mnnkit.cli._errors import DataError
from mnnkit.cli._signals import deferred_signals

if TYPE_CHECKING:
    from anndata import AnnData

#: Marks a temporary output file of the command line: ``.NAME`` + TMP_TAG + ``HOST-PID-RANDOM``.
TMP_TAG = ".mnnkit-tmp-"
#: Characters of the output's name kept in its temporary file's name (file names are limited to 255 bytes).
_NAME_CHARS = 180
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_SUFFIX = re.compile(r"(?P<pid>[0-9]+)-[0-9a-f]{8}")
# errors of os.link on file systems without hard links (FAT, some network and FUSE file systems)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}

#: Outputs published by the current command (its interruption message says which were written).
PUBLISHED: list[Path] = []


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def _existing(path: Path) -> os.stat_result | None:
    """``lstat`` of ``path`` (the link itself for a symbolic link), or None when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_replaceable(path: Path, st: os.stat_result | None = None) -> None:
    """Raise :class:`DataError` unless ``path`` is a regular file or a symbolic link (what ``--force`` replaces)."""
    st = os.lstat(path) if st is None else st
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        msg = (
            f"output {path} is a {_kind(st.st_mode)}, not a regular file; mnnkit replaces only regular files and "
            "symbolic links, even with --force"
        )
        raise DataError(msg)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, *, inputs: Sequence[Path] = (), force: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written as a new output.

    Raises :class:`DataError` when the directory is missing or not writable, when ``path`` is one of the
    ``inputs`` (whatever ``force`` says), when it is a directory, when it exists and ``force`` is False, or when
    it is anything but a regular file or a symbolic link. :func:`publish_file` checks again at the end.
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        msg = f"output directory {directory} does not exist (create it first)"
        raise DataError(msg)
    if not os.access(directory, os.W_OK | os.X_OK):
        msg = f"output directory {directory} is not writable"
        raise DataError(msg)
    for source in inputs:
        if _same_file(path, Path(source)) or path.resolve() == Path(source).resolve():
            msg = f"output {path} is also an input file; mnnkit never overwrites its input, choose another name"
            raise DataError(msg)
    st = _existing(path)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            msg = f"output {path} is a directory"
            raise DataError(msg)
        if not force:
            msg = f"output {path} already exists; pass --force to replace it"
            raise DataError(msg)
        check_replaceable(path, st)
    return path


def _temporary(path: Path) -> Path:
    """Create an empty temporary file beside ``path`` (mode 0666 less the umask, as a new file would get)."""
    prefix = f".{path.name[:_NAME_CHARS]}{TMP_TAG}{_HOST}-{os.getpid()}-"
    while True:
        tmp = path.parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def remove_leftovers(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of ``path`` left by runs that were killed; return what was deleted.

    Only files named by this module for this output on this machine, whose process is no longer running,
    that are regular files owned by the current user. Anything else is left alone.
    """
    path = Path(path)
    prefix = f".{path.name[:_NAME_CHARS]}{TMP_TAG}{_HOST}-"
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        found = _SUFFIX.fullmatch(entry.name[len(prefix) :])
        if found is None or _running(int(found.group("pid"))):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _occupied(path: Path) -> DataError:
    msg = (
        f"output {path} was created by another process during this run; it was kept and this run's result "
        "discarded (pass --force to replace it)"
    )
    return DataError(msg)


def _publish(tmp: Path, path: Path, *, force: bool) -> None:
    """Move the finished ``tmp`` to ``path``: never onto an existing path without ``force``, see the module."""
    for _ in range(3):  # a path that appears or vanishes between the look and the move: look again
        st = _existing(path)
        if st is not None:
            if not force:
                raise _occupied(path)
            check_replaceable(path, st)
            os.replace(tmp, path)  # atomic; replaces a symbolic link itself
            return
        try:
            os.link(tmp, path)  # fails if anything is at path, however new: the no-clobber guarantee
            return
        except FileExistsError:
            continue
        except OSError as err:
            if err.errno not in _NO_HARD_LINKS:
                raise
        # no hard links here: claim the name with an exclusive create, then move the file onto the claim
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        os.replace(tmp, path)
        return
    raise _occupied(path)


def publish_file(write: Callable[[Path], None], path: str | os.PathLike, *, force: bool = False) -> None:
    """Call ``write(tmp)`` on a new temporary file beside ``path``, then publish it as ``path``.

    Signals received during the write and the publication are deferred (the write completes); if one came, the
    file is not published. The temporary file is deleted in every case.
    """
    path = Path(path)
    tmp = _temporary(path)
    try:
        with deferred_signals() as interrupted:
            write(tmp)
            if not interrupted:
                _publish(tmp, path, force=force)
                PUBLISHED.append(path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_h5ad(adata: AnnData, path: str | os.PathLike, *, force: bool = False, compression: str | None = None) -> None:
    """Write ``adata`` to ``path`` through :func:`publish_file`; ``compression`` is anndata's."""
    publish_file(lambda tmp: adata.write_h5ad(tmp, compression=compression), path, force=force)
