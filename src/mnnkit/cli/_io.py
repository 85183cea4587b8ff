"""Inputs of the command line: checks, reading with one-line errors, joining files into batches.

An input file is never opened for writing (outputs: :mod:`mnnkit.cli._publish`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mnnkit.cli._errors import DataError, UsageError

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger("mnnkit")


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


def read_gene_list(path: str) -> list[str]:
    """The gene names of a ``--subset-genes`` file: one per line, blank lines and ``#`` comments skipped."""
    file = Path(path)
    if not file.exists() or file.is_dir():  # a FIFO or /dev/fd/N (process substitution) is fine
        msg = f"--subset-genes file not found: {file}" if not file.exists() else f"--subset-genes {file} is a directory"
        raise DataError(msg)
    try:
        names = [line.strip() for line in file.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read --subset-genes file {file}: {err}"
        raise DataError(msg) from err
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        msg = f"--subset-genes file {file} lists no gene names"
        raise DataError(msg)
    return names


def read_h5ad(path: str | os.PathLike) -> AnnData:
    """Read a whole .h5ad file into memory, turning every failure into a one-line :class:`DataError`."""
    import anndata as ad

    path = check_input(path)
    try:
        return ad.read_h5ad(path)
    except MemoryError:
        raise
    except Exception as err:  # anndata raises many types (IORegistryError, KeyError, ...): all mean a bad file
        raise unreadable(path, err) from err


_READING = re.compile(r"reading key '(?P<key>.*)' of .* from (?P<parent>/\S*)")
_ENCODING = re.compile(r"encoding_type='(?P<type>[^']*)', encoding_version='(?P<version>[^']*)'")


def unreadable(path: Path, err: BaseException) -> DataError:
    """The one-line error for a file that h5py or anndata could not read, naming the element where known."""
    detail = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
    element = None
    for note in getattr(err, "__notes__", ()):  # anndata notes the element it was reading; the innermost first
        found = _READING.search(str(note))
        if found:
            element = f"{found.group('parent').rstrip('/')}/{found.group('key')}"
            break
    if element is None:
        return DataError(f"cannot read {path}: truncated or not a valid .h5ad file ({detail})")
    spec = _ENCODING.search(str(err))
    if type(err).__name__ == "IORegistryError" and spec:
        what = (
            f"has an unknown encoding ({spec.group('type')!r}, version {spec.group('version')}), perhaps written by "
            "a newer anndata or another tool"
        )
    else:
        what = f"cannot be read ({detail})"
    return DataError(f"cannot read {path}: not a valid .h5ad file: element {element} {what}")


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
