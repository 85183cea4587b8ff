"""File handling of the command line: safe reading, output checks, atomic writes, joining files into batches.

Rules: an input file is never opened for writing; an output is first written to a temporary file in its own
directory and moved into place with :func:`os.replace` only once complete, so an interrupted run leaves the
previous state (no output, or the old output) and no partial file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mnnkit.cli._errors import DataError, UsageError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger("mnnkit")

#: Prefix of the temporary file an output is written to before it is renamed (hidden, in the output's directory).
TMP_MARK = ".tmp-"


def check_input(path: str | os.PathLike) -> Path:
    """Check that ``path`` is an existing, readable HDF5 file; return it as a :class:`Path`."""
    import h5py

    path = Path(path)
    if not path.exists():
        msg = f"input file not found: {path}"
        raise DataError(msg)
    if path.is_dir():
        msg = f"input {path} is a directory, not an .h5ad file"
        raise DataError(msg)
    if not os.access(path, os.R_OK):
        msg = f"input file {path} is not readable (permission denied)"
        raise DataError(msg)
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        msg = f"cannot open input file {path}: {err.strerror or err}"
        raise DataError(msg) from err
    if not is_hdf5:
        msg = f"input file {path} is not an HDF5 (.h5ad) file"
        raise DataError(msg)
    return path


def read_h5ad(path: str | os.PathLike) -> AnnData:
    """Read a whole .h5ad file into memory, turning every failure into a one-line :class:`DataError`."""
    import anndata as ad

    path = check_input(path)
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError, ValueError, TypeError, IndexError, AttributeError, RuntimeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        msg = f"cannot read {path}: truncated or not a valid .h5ad file ({detail})"
        raise DataError(msg) from err


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, *, inputs: Sequence[Path] = (), force: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written as a new output.

    Raises :class:`DataError` when the directory is missing or not writable, when ``path`` is one of the
    ``inputs`` (whatever ``force`` says), when it is a directory, or when it exists and ``force`` is False.
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
    if path.is_dir():
        msg = f"output {path} is a directory"
        raise DataError(msg)
    if path.exists() and not force:
        msg = f"output {path} already exists; pass --force to replace it"
        raise DataError(msg)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block completes, else delete it.

    The temporary file lives in the same directory (so the final :func:`os.replace` is an atomic rename on
    one file system) and is named ``.<name>.tmp-<random>``. Any exception, including ``KeyboardInterrupt``,
    removes it and leaves ``path`` as it was.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_h5ad_atomic(adata: AnnData, path: str | os.PathLike, *, compression: str | None = None) -> None:
    """Write ``adata`` to ``path`` through a temporary file, so that ``path`` is either complete or untouched.

    ``compression`` is anndata's (``"gzip"``, ``"lzf"`` or ``None``).
    """
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression=compression)


def save_figure_atomic(save: Callable[[Path], None], path: str | os.PathLike) -> None:
    """Call ``save(tmp)`` (e.g. a figure's ``savefig``) and move the result onto ``path`` when complete."""
    with atomic_path(path) as tmp:
        save(tmp)


@dataclass
class Joined:
    """Several files joined into one AnnData, one batch per file."""

    adata: AnnData
    names: list[str]
    n_genes: list[int]
    n_shared: int
    renamed_cells: bool = False
    replaced_column: list[str] = field(default_factory=list)

    @property
    def genes_dropped(self) -> dict[str, int]:
        """Per batch, the number of its genes that are not shared by every file."""
        return {name: n - self.n_shared for name, n in zip(self.names, self.n_genes, strict=True)}


def batch_names_for(paths: Sequence[Path], given: Sequence[str] | None) -> list[str]:
    """Batch names of the files: ``given`` (checked) or the file names without ``.h5ad``."""
    if given is not None:
        if len(given) != len(paths):
            msg = f"--batch-names has {len(given)} names for {len(paths)} input files"
            raise UsageError(msg)
        names = [str(name).strip() for name in given]
        if any(not name for name in names):
            msg = "--batch-names contains an empty name"
            raise UsageError(msg)
    else:
        names = [p.name[: -len(".h5ad")] if p.name.endswith(".h5ad") else p.stem for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        how = "" if given is not None else " (from the file names; give distinct ones with --batch-names)"
        msg = f"batch names must be distinct, got {', '.join(map(repr, duplicates))} more than once{how}"
        raise UsageError(msg)
    return names


def join_files(paths: Sequence[Path], names: Sequence[str], *, batch_key: str, reader=read_h5ad) -> Joined:
    """Read each file as one batch and join them on the genes all files share.

    Cells keep their file order, files are stacked in the order given, and ``obs[batch_key]`` becomes a
    categorical of ``names`` in that order (the default merge order). Genes keep the first file's order.
    ``.var`` columns identical in every file are kept. Cell names that collide across files get the
    suffix ``-<batch>`` (on every cell). Raises :class:`DataError` when the files share no gene.
    """
    import anndata as ad
    import pandas as pd

    parts = {}
    replaced = []
    for path, name in zip(paths, names, strict=True):
        part = reader(path)
        if not part.var_names.is_unique:
            dup = part.var_names[part.var_names.duplicated()][0]
            msg = f"{path} has duplicate gene names (e.g. {dup!r}); make them unique before joining files"
            raise DataError(msg)
        if batch_key in part.obs.columns:
            replaced.append(str(path))
        parts[name] = part
    n_genes = [part.n_vars for part in parts.values()]
    shared = parts[names[0]].var_names
    for part in list(parts.values())[1:]:
        shared = shared[shared.isin(part.var_names)]
    if shared.size == 0:
        listing = ", ".join(f"{p} ({n} genes)" for p, n in zip(paths, n_genes, strict=True))
        msg = f"the input files have no genes in common: {listing}; check that they use the same gene identifiers"
        raise DataError(msg)
    all_names = pd.Index([c for part in parts.values() for c in part.obs_names])
    renamed = not all_names.is_unique
    for name, part in parts.items():
        if batch_key in part.obs.columns:
            del part.obs[batch_key]
        parts[name] = part[:, shared]
    joined = ad.concat(
        parts, join="inner", label=batch_key, merge="same", index_unique="-" if renamed else None, uns_merge=None
    )
    joined.obs[batch_key] = pd.Categorical(joined.obs[batch_key].astype(str), categories=list(names))
    return Joined(
        adata=joined,
        names=list(names),
        n_genes=n_genes,
        n_shared=int(shared.size),
        renamed_cells=renamed,
        replaced_column=replaced,
    )
