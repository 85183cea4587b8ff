"""``mnnkit info``: what an .h5ad file holds, read without loading its matrices."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from mnnkit.cli._errors import DataError
from mnnkit.cli._io import check_input
from mnnkit.cli._summary import correction_steps, dumps

_DESCRIPTION = """\
Show what an .h5ad file holds: shape, .X, the .obs columns with their number of categories, .var
columns, layers, obsm/obsp/varm entries, .uns keys, and every mnnkit correction recorded in it with its
parameters, merge steps and the command line that made it. Matrices are not loaded."""


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
                if isinstance(node, h5py.Group) and {"method", "params", "steps"} <= set(node.keys()):
                    info["corrections"][key] = _correction(read_elem(node))
    except (OSError, KeyError, ValueError, TypeError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        msg = f"cannot read {path}: truncated or not a valid .h5ad file ({detail})"
        raise DataError(msg) from err
    return info


def _matrix_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "none"
    if "shape" not in entry:
        return entry["storage"]
    shape = " x ".join(map(str, entry["shape"]))
    return f"{entry['storage']} {entry['dtype']}, {shape}"


def _column_text(name: str, entry: dict[str, Any]) -> str:
    if "n_categories" in entry:
        shown = ", ".join(entry["categories"][:5]) + (", ..." if entry["n_categories"] > 5 else "")
        return f"{name} ({entry['n_categories']} categories: {shown})"
    if "n_unique" in entry:
        return f"{name} ({entry['n_unique']} distinct strings)"
    if "n_true" in entry:
        return f"{name} (boolean, {entry['n_true']} True)"
    return f"{name} ({entry['dtype']})"


def format_info(info: dict[str, Any]) -> str:
    """The text description of :func:`inspect_file`'s result."""
    lines = [f"{info['file']}: {info['n_obs']} cells x {info['n_vars']} genes ({info['size_bytes'] / 2**20:.1f} MiB)"]
    lines.append(f"  X: {_matrix_text(info['X'])}")
    for frame in ("obs", "var"):
        cols = info[frame]
        listing = "; ".join(_column_text(n, e) for n, e in cols.items()) or "none"
        lines.append(f"  {frame} ({len(cols)} columns): {listing}")
    for group in ("layers", "obsm", "obsp", "varm"):
        entries = info[group]
        listing = "; ".join(f"{n} ({_matrix_text(e)})" for n, e in entries.items()) or "none"
        lines.append(f"  {group}: {listing}")
    lines.append(f"  uns: {', '.join(info['uns']) or 'none'}")
    if not info["corrections"]:
        lines.append("  mnnkit corrections: none recorded")
    for key, corr in info["corrections"].items():
        lines.append(
            f"  mnnkit correction uns[{key!r}]: {corr['method']} method, {len(corr['batches'])} batches, "
            f"merge order {' <- '.join(corr['merge_order'])}"
        )
        params = ", ".join(f"{k}={v}" for k, v in corr["params"].items())
        lines.append(f"    params: {params}")
        for step in corr["steps"]:
            lines.append(
                f"    step {step['step']}: {'+'.join(step['left'])} <- {'+'.join(step['right'])}: "
                f"{step['n_pairs']:,} MNN pairs"
            )
        if corr["cli"].get("command"):
            lines.append(f"    made by: {corr['cli']['command']} (mnnkit {corr['cli'].get('version', '?')})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``mnnkit info``; return the exit status."""
    path = check_input(args.file)
    info = inspect_file(path)
    print(dumps(info) if args.json else format_info(info), flush=True)
    return 0
