"""``mnnkit info``: what an .h5ad file holds, read without loading its matrices."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from mnnkit.cli._io import check_input, unreadable
from mnnkit.cli._summary import correction_steps, dumps, step_lines
from mnnkit.cli._text import MAX_LABEL, bounded_list, emit, label, name_list, value_text

_DESCRIPTION = """\
Show what an .h5ad file holds: shape, .X, the .obs columns with their number of categories, .var
columns, layers, obsm/obsp/varm entries, .uns keys, and every mnnkit correction recorded in it with its
parameters, merge steps and the command line that made it. Matrices are not loaded. Long lists show their
first entries and how many more there are; --json lists everything."""


def add_parser(commands: Any, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the ``info`` subcommand to ``commands``."""
    p = commands.add_parser(
        "info", help="what an .h5ad file holds, and its recorded corrections", description=_DESCRIPTION, **kwargs
    )
    p.set_defaults(run=run)
    p.add_argument("file", metavar="FILE.h5ad", help="file to describe (read only)")
    return p


def _element(node: Any) -> dict[str, Any]:
    """Shape, storage and dtype of a stored matrix (dense dataset or sparse group) without reading it."""
    import h5py

    if isinstance(node, h5py.Dataset):
        return {"storage": "dense", "shape": list(node.shape), "dtype": str(node.dtype)}
    encoding = str(node.attrs.get("encoding-type", "group"))
    if encoding in ("csr_matrix", "csc_matrix"):
        return {
            "storage": encoding.replace("_matrix", ""),
            "shape": [int(n) for n in node.attrs["shape"]],
            "dtype": str(node["data"].dtype),
            "nnz": int(node["data"].shape[0]),
        }
    return {"storage": encoding}


def _frame_columns(frame: Any) -> dict[str, dict[str, Any]]:
    import pandas as pd

    columns = {}
    for name in frame.columns:
        values = frame[name]
        entry: dict[str, Any] = {"dtype": str(values.dtype)}
        if isinstance(values.dtype, pd.CategoricalDtype):
            entry["n_categories"] = len(values.cat.categories)
            entry["categories"] = [str(c) for c in values.cat.categories[:8]]
        elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            entry["n_unique"] = int(values.nunique())
        elif values.dtype == bool:
            entry["n_true"] = int(values.sum())
        columns[str(name)] = entry
    return columns


def _group(f: Any, name: str) -> dict[str, dict[str, Any]]:
    if name not in f:
        return {}
    return {str(key): _element(f[name][key]) for key in f[name]}


#: ``method`` of the records that the per-gene functions write (no merge steps): linear corrections, normalisation.
_PER_GENE_METHODS = ("rescale_batches", "regress_batches", "multi_batch_norm")


def _is_record(node: Any) -> bool:
    """Whether an ``.uns`` group holds an mnnkit record: an MNN correction, or a per-gene method's record."""
    keys = set(node.keys())
    if {"method", "params", "steps"} <= keys:
        return True
    if not {"method", "params", "batches"} <= keys:
        return False
    method = node["method"][()]
    return (method.decode() if isinstance(method, bytes) else str(method)) in _PER_GENE_METHODS


def _correction(record: Any) -> dict[str, Any]:
    cli = record.get("cli", {})
    return {
        "method": str(record.get("method", "?")),
        "batches": [str(b) for b in np.atleast_1d(np.asarray(record.get("batches", []), dtype=object))],
        "merge_order": [str(b) for b in np.atleast_1d(np.asarray(record.get("merge_order", []), dtype=object))],
        "params": dict(record.get("params", {})),
        "steps": correction_steps(record),
        "cli": {k: v for k, v in dict(cli).items() if k in ("command", "version", "inputs")} if cli else {},
    }


def inspect_file(path: Path) -> dict[str, Any]:
    """A plain-dict description of an .h5ad file (matrices are described, not read)."""
    import h5py
    from anndata.io import read_elem

    try:
        with h5py.File(path, "r") as f:
            obs, var = read_elem(f["obs"]), read_elem(f["var"])
            info: dict[str, Any] = {
                "file": str(path),
                "size_bytes": path.stat().st_size,
                "n_obs": int(obs.shape[0]),
                "n_vars": int(var.shape[0]),
                "X": _element(f["X"]) if "X" in f else None,
                "obs": _frame_columns(obs),
                "var": _frame_columns(var),
                "layers": _group(f, "layers"),
                "obsm": _group(f, "obsm"),
                "obsp": _group(f, "obsp"),
                "varm": _group(f, "varm"),
                "uns": sorted(f["uns"].keys()) if "uns" in f else [],
                "corrections": {},
            }
            for key in info["uns"]:
                node = f["uns"][key]
                if isinstance(node, h5py.Group) and _is_record(node):
                    info["corrections"][key] = _correction(read_elem(node))
    except MemoryError:
        raise
    except Exception as err:  # h5py and anndata raise many types; all mean a file that is not a valid .h5ad
        raise unreadable(path, err) from err
    return info


#: Characters of the categories shown for one categorical column (its first five at most).
_CATEGORY_WIDTH = 80
#: Characters of a recorded command line shown (``--json`` gives it whole).
_COMMAND_WIDTH = MAX_LABEL * 5


def _matrix_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "none"
    if "shape" not in entry:
        return entry["storage"]
    shape = " x ".join(map(str, entry["shape"]))
    return f"{entry['storage']} {entry['dtype']}, {shape}"


def _column_text(name: str, entry: dict[str, Any]) -> str:
    name = label(name)
    if "n_categories" in entry:
        shown = bounded_list(
            [label(c) for c in entry["categories"][:5]], total=entry["n_categories"], limit=5, width=_CATEGORY_WIDTH
        )
        return f"{name} ({entry['n_categories']} categories: {shown})"
    if "n_unique" in entry:
        return f"{name} ({entry['n_unique']} distinct strings)"
    if "n_true" in entry:
        return f"{name} (boolean, {entry['n_true']} True)"
    return f"{name} ({entry['dtype']})"


def _listing(entries: list[str]) -> str:
    return bounded_list(entries, sep="; ") or "none"


def format_info(info: dict[str, Any]) -> str:
    """The text description of :func:`inspect_file`'s result (names shortened, long lists summarised)."""
    lines = [f"{info['file']}: {info['n_obs']} cells x {info['n_vars']} genes ({info['size_bytes'] / 2**20:.1f} MiB)"]
    lines.append(f"  X: {_matrix_text(info['X'])}")
    for frame in ("obs", "var"):
        cols = info[frame]
        lines.append(f"  {frame} ({len(cols)} columns): {_listing([_column_text(n, e) for n, e in cols.items()])}")
    for group in ("layers", "obsm", "obsp", "varm"):
        entries = [f"{label(n)} ({_matrix_text(e)})" for n, e in info[group].items()]
        lines.append(f"  {group}: {_listing(entries)}")
    lines.append(f"  uns ({len(info['uns'])} keys): {name_list(info['uns']) or 'none'}")
    if not info["corrections"]:
        lines.append("  mnnkit corrections: none recorded")
    for key, corr in info["corrections"].items():
        kind = "normalisation" if corr["method"] == "multi_batch_norm" else "correction"
        order = corr["merge_order"]
        lines.append(
            f"  mnnkit {kind} uns['{label(key)}']: {corr['method']} method, {len(corr['batches'])} batches"
            + (f", merge order {name_list(order, sep=' <- ')}" if order else "")
        )
        params = ", ".join(f"{label(k)}={value_text(v)}" for k, v in corr["params"].items())
        lines.append(f"    params: {params}")
        lines.extend(step_lines(corr["steps"], indent="    "))
        if corr["cli"].get("command"):
            command = label(corr["cli"]["command"], _COMMAND_WIDTH)
            lines.append(f"    made by: {command} (mnnkit {label(corr['cli'].get('version', '?'))})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit info``; return the exit status."""
    path = check_input(args.file)
    info = inspect_file(path)
    emit(dumps(info) if args.json else format_info(info))
    return 0
