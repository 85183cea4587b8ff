"""The memory check made before a command reads its inputs: declared sizes against what the machine has.

An .h5ad file can declare far more data than it stores (a compressed or never-written dataset reads as
zeros): a 2.6 MB file declaring a 3 GB matrix took minutes and 9 GB before this check. The sizes come from
the file's metadata (h5py, nothing is read); the estimate is a lower bound, so a run it refuses could not
have fitted, and the limit is the memory available now (``MemAvailable``, capped by a cgroup limit) unless
``--max-memory`` sets it.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mnnkit.cli._errors import DataError

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int | str | None:
    """The argparse type of ``--max-memory``: ``500M``, ``16G``, ``1.5T``, bytes, ``auto`` or ``off`` (None)."""
    raw = text.strip()
    if raw.lower() in ("auto", "off"):
        return None if raw.lower() == "off" else "auto"
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGT]?)(?:I?B)?", raw.upper())
    if found is None or float(found.group(1)) <= 0:
        msg = f"expected a size such as 500M, 16G or off, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(float(found.group(1)) * _UNITS[found.group(2)])


def format_size(n_bytes: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n_bytes) < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} B" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError  # pragma: no cover


@dataclass
class Declared:
    """What one .h5ad file declares: in-memory bytes in all, the cell and gene counts, the largest matrix."""

    path: Path
    n_bytes: int
    n_obs: int
    n_vars: int
    largest: str  # "X: dense float64, 200000 x 500000 (745.1 GiB)"


def _matrix(node) -> tuple[int, str]:
    """In-memory bytes and description of a dense dataset or a sparse group, from metadata only."""
    import h5py
    import numpy as np

    if isinstance(node, h5py.Dataset):
        if node.dtype.kind in "OSUV":  # strings: their stored size is the best lower bound known
            return int(node.id.get_storage_size()), ""
        n_bytes = int(np.prod(node.shape, dtype=np.float64) * node.dtype.itemsize)
        shape = " x ".join(map(str, node.shape))
        return n_bytes, f"dense {node.dtype}, {shape}"
    encoding = str(node.attrs.get("encoding-type", ""))
    if encoding in ("csr_matrix", "csc_matrix") and {"data", "indices", "indptr"} <= set(node.keys()):
        n_bytes = sum(int(node[k].size) * node[k].dtype.itemsize for k in ("data", "indices", "indptr"))
        shape = " x ".join(str(int(n)) for n in node.attrs.get("shape", ()))
        return n_bytes, f"{encoding[:3]} {node['data'].dtype}, {shape}, {node['data'].size} stored values"
    total = 0
    for child in node.values():  # data frames, dictionaries, awkward arrays: the sum of their parts
        total += _matrix(child)[0]
    return total, ""


def declared(path: Path) -> Declared:
    """Read the declared shapes and dtypes of every element of an .h5ad file (no data is read)."""
    import h5py

    from mnnkit.cli._io import unreadable

    total, largest, largest_text = 0, -1, ""
    try:
        with h5py.File(path, "r") as f:
            for name, node in f.items():
                children = node.items() if name in ("layers", "obsm", "obsp", "varm", "varp") else [(None, node)]
                if name == "raw":
                    children = [(f"raw/{key}", child) for key, child in node.items()]
                for key, child in children:
                    n_bytes, text = _matrix(child)
                    total += n_bytes
                    label = name if key is None else key if name == "raw" else f"{name}[{key!r}]"
                    if text and n_bytes > largest:
                        largest, largest_text = n_bytes, f"{label}: {text} ({format_size(n_bytes)})"
            n_obs = _length(f, "obs")
            n_vars = _length(f, "var")
    except MemoryError:
        raise
    except Exception as err:  # h5py raises OSError, KeyError, RuntimeError ... for damaged files
        raise unreadable(path, err) from err
    return Declared(path=path, n_bytes=total, n_obs=n_obs, n_vars=n_vars, largest=largest_text)


def _length(f, name: str) -> int:
    if name not in f:
        return 0
    group = f[name]
    index = group.attrs.get("_index", "_index")
    return int(group[index].shape[0]) if index in group else 0


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None when the system does not say."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    # a container's limit (cgroup v2, then v1) is smaller than what the host reports
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = int(Path(limit_file).read_text().strip())
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):  # "max": no limit
            continue
        available = min(available, max(limit - usage, 0))
        break
    return available


def check_memory(
    files: Sequence[Declared], *, output_bytes: int = 0, limit: int | None, limit_given: bool = False
) -> int:
    """Refuse (:class:`DataError`) a run whose inputs and output need more than ``limit`` bytes; return the need.

    ``limit`` None skips the check (``--max-memory off``, or a system that does not report its memory).
    """
    need = sum(f.n_bytes for f in files) + output_bytes
    if limit is None or need <= limit:
        return need
    biggest = max(files, key=lambda f: f.n_bytes)
    where = f"{biggest.path} declares {biggest.largest}" if biggest.largest else f"{biggest.path} declares its data"
    have = f"--max-memory is {format_size(limit)}" if limit_given else f"{format_size(limit)} is available"
    msg = (
        f"{where}; the run needs at least {format_size(need)} of memory and {have}; pass --max-memory SIZE "
        "(e.g. 64G) to set the limit, or --max-memory off to skip this check"
    )
    raise DataError(msg)


def check_before_reading(paths: Sequence[Path], max_memory: int | None | str, *, output_per_value: int = 0) -> None:
    """The check the commands run before reading ``paths``.

    ``max_memory`` is ``--max-memory``: a size, None (``off``) or ``"auto"`` (the memory available now).
    ``output_per_value`` counts the bytes the command adds per cell and gene (4: a float32 layer).
    """
    files = [declared(path) for path in paths]
    n_obs = sum(f.n_obs for f in files)
    n_vars = min((f.n_vars for f in files), default=0)
    limit = available_memory() if max_memory == "auto" else max_memory
    check_memory(files, output_bytes=output_per_value * n_obs * n_vars, limit=limit, limit_given=max_memory != "auto")
