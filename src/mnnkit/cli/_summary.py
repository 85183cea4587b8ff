"""Summaries the commands print: plain values for ``--json`` and the one-screen text."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mnnkit.cli._text import MAX_LIST_WIDTH, MAX_NAMES, bounded_list, label, name_list

#: Merge steps listed in text output (the first ones and the last one; --json lists all).
MAX_STEPS = 12
#: Characters each side of a merge step may take in its line (batch names joined by "+").
_STEP_SIDE_WIDTH = 80
#: ``mnnkit correct --method`` values that run a per-gene linear correction (no merge steps, no MNN pairs).
LINEAR_METHODS = ("rescale", "regress")


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and mappings turned into plain JSON types (NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def dumps(summary: Mapping) -> str:
    """The JSON text of a summary (sorted keys stay in insertion order for readability)."""
    return json.dumps(jsonable(summary), indent=2, allow_nan=False)


def _names(values: Any) -> list[str]:
    return [str(v) for v in np.atleast_1d(np.asarray(values, dtype=object))]


def correction_steps(record: Mapping) -> list[dict]:
    """The merge steps of a correction record, in order, as plain dicts (without the pair arrays)."""
    steps = record.get("steps", {})
    out = []
    for name in sorted(steps, key=lambda s: int(str(s).rsplit("_", 1)[-1]) if str(s)[-1].isdigit() else 0):
        step = steps[name]
        out.append(
            {
                "step": len(out) + 1,
                "left": _names(step.get("left", [])),
                "right": _names(step.get("right", [])),
                "n_pairs": int(step.get("n_pairs", 0)),
                "seconds": float(step.get("seconds", float("nan"))),
            }
        )
    return out


def batch_counts(column: Any) -> dict[str, int]:
    """Cells per batch of an ``.obs`` column, keyed by the batch's name, counted from category codes.

    Long labels are neither copied nor converted (``astype(str)`` of a column makes a fixed-width array of
    cells x the longest label).
    """
    import pandas as pd

    values = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    codes = np.asarray(values.cat.codes)
    counts = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
    out: dict[str, int] = {}
    for name, n in zip(values.cat.categories, counts, strict=True):
        out[str(name)] = out.get(str(name), 0) + int(n)
    return out


def step_lines(steps: list[Mapping], *, indent: str, seconds: bool = False) -> list[str]:
    """One line per merge step (names bounded), at most :data:`MAX_STEPS` of them."""
    shown = steps if len(steps) <= MAX_STEPS else [*steps[: MAX_STEPS - 1], None, steps[-1]]
    lines = []
    for step in shown:
        if step is None:
            lines.append(f"{indent}... {len(steps) - MAX_STEPS} more steps (--json lists all)")
            continue
        time_text = ""
        if seconds and step["seconds"] is not None and math.isfinite(step["seconds"]):
            time_text = f" ({step['seconds']:.2f} s)"
        left = name_list(step["left"], sep="+", limit=4, width=_STEP_SIDE_WIDTH)
        right = name_list(step["right"], sep="+", limit=4, width=_STEP_SIDE_WIDTH)
        lines.append(f"{indent}step {step['step']}: {left} <- {right}: {step['n_pairs']:,} MNN pairs{time_text}")
    return lines


def format_correct(summary: Mapping) -> str:
    """The one-screen text summary of ``mnnkit correct`` (labels shortened, long lists cut)."""
    lines = [f"mnnkit correct: {summary['n_cells']} cells x {summary['n_genes']} genes, {summary['method']} method"]
    batches = list(summary["batches"].items())
    listing = bounded_list([f"{label(name)} ({n})" for name, n in batches[:MAX_NAMES]], total=len(batches))
    lines.append(f"  batches ({len(batches)}, column '{label(summary['batch_key'])}'): {listing}")
    inputs = summary["inputs"]
    lines.append(f"  input{'s' if len(inputs) > 1 else ''}: {name_list(inputs)}")
    if summary.get("genes_dropped"):
        dropped = list(summary["genes_dropped"].items())
        dropped = bounded_list([f"{label(name)} {n}" for name, n in dropped[:MAX_NAMES]], total=len(dropped))
        lines.append(f"  joined on {summary['n_genes']} shared genes; genes dropped per file: {dropped}")
    if summary.get("normalized"):
        lines.append(f"  normalised: normalize_total + log1p into layers[{summary['layer']!r}]")
    if summary.get("n_top_genes"):
        lines.append(f"  highly variable genes: {summary['n_top_genes']} (var['highly_variable'])")
    subset = label(summary.get("subset") or "all genes", 200)
    n_sub = summary.get("n_subset_genes")
    genes_are = "genes corrected" if summary.get("method") in LINEAR_METHODS else "genes for distances"
    lines.append(f"  {genes_are}: {subset}" + (f" ({n_sub})" if n_sub is not None else ""))
    order = summary.get("merge_order") or []
    if order:
        lines.append(f"  merge order: {name_list(order, sep=' <- ')}")
    lines.extend(step_lines(summary.get("steps", []), indent="  ", seconds=True))
    lines.append(f"  output: {summary['output']} ({', '.join(summary['written'])})")
    for path in summary.get("plots", []):
        lines.append(f"  plot: {path}")
    t = summary["seconds"]
    lines.append(
        f"  time: read {t['read']:.1f} s, prepare {t['prepare']:.1f} s, correct {t['correct']:.1f} s, "
        f"write {t['write']:.1f} s"
        + (f", plots {t['plots']:.1f} s" if "plots" in t else "")
        + f"; total {t['total']:.1f} s"
    )
    return "\n".join(lines)


def format_normalize(summary: Mapping) -> str:
    """The one-screen text summary of ``mnnkit normalize`` (labels shortened, long lists cut)."""
    lines = [f"mnnkit normalize: {summary['n_cells']} cells x {summary['n_genes']} genes, multiBatchNorm"]
    lines.append(f"  input: {label(summary['inputs'][0], 200)} (counts in {label(summary['layer'])})")
    lines.append(f"  batches ({len(summary['batches'])}, column '{label(summary['batch_key'])}'), size factors:")
    shown = list(summary["batches"].items())
    for name, n in shown[: MAX_NAMES * 2]:
        sf, divisor = summary["size_factors"][name], summary["rescaling_divisor"][name]
        reference = " (reference: lowest coverage)" if name == summary["reference_batch"] else ""
        lines.append(
            f"    {label(name)} ({n} cells): divided by {divisor:.4g}{reference}; "
            f"min {sf['min']:.3g}, median {sf['median']:.3g}, max {sf['max']:.3g}"
        )
    if len(shown) > MAX_NAMES * 2:
        lines.append(f"    ... and {len(shown) - MAX_NAMES * 2} more batches (--json lists all)")
    subset = label(summary.get("subset") or "all genes", 200)
    n_sub = summary.get("n_subset_genes")
    lines.append(f"  genes for size factors: {subset}" + (f" ({n_sub})" if n_sub is not None else ""))
    lines.append(f"  log2 normalised counts: {summary['values']}")
    lines.append(f"  output: {summary['output']} ({', '.join(summary['written'])})")
    t = summary["seconds"]
    lines.append(
        f"  time: read {t['read']:.1f} s, normalize {t['normalize']:.1f} s, write {t['write']:.1f} s; "
        f"total {t['total']:.1f} s"
    )
    return "\n".join(lines)


def format_metrics(summary: Mapping) -> str:
    """The metrics table of ``mnnkit evaluate`` (names shortened)."""
    metrics = summary["metrics"]
    baseline = any("uncorrected" in row for row in metrics.values())
    header = (
        f"{'metric':<20} {'uncorrected':>12} {'corrected':>10}  better"
        if baseline
        else (f"{'metric':<20} {'value':>10}  better")
    )
    lines = [
        f"mnnkit evaluate: {summary['file']}: {summary['n_obs']} cells, {summary['n_batches']} batches "
        f"('{label(summary['batch_key'])}')"
        + (f", {summary['n_labels']} labels ('{label(summary['label_key'])}')" if summary.get("label_key") else ""),
    ]
    if baseline:
        lines.append(f"  corrected:   {summary['rep']}")
        lines.append(f"  uncorrected: {summary['baseline']}")
    else:
        lines.append(f"  representation: {summary['rep']}")
    lines.append(header)
    lines.append("-" * len(header))
    for name, row in metrics.items():
        arrow = "higher" if row["higher_is_better"] else "lower"
        if baseline:
            lines.append(f"{name:<20} {row['uncorrected']:>12.4f} {row['value']:>10.4f}  {arrow}")
        else:
            lines.append(f"{name:<20} {row['value']:>10.4f}  {arrow}")
    if not summary.get("label_key"):
        lines.append("(batch-mixing metrics only; pass --label-key for cLISI, silhouettes, ARI/NMI, connectivity)")
    for path in summary.get("plots", []):
        lines.append(f"plot: {path}")
    return "\n".join(lines)


def describe_column(values: Any) -> str:
    """``'categorical, 5 categories'``, ``'numeric'``, ... for one ``.obs``/``.var`` column."""
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        return f"{len(values.cat.categories)} categories"
    if values.dtype == bool:
        return f"boolean, {int(values.sum())} True"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return f"numeric ({values.dtype})"
    return f"{values.nunique()} distinct values"


def list_columns(frame: Any) -> str:
    """The columns of a data frame with a word on each, for error messages (``'(none)'`` if empty)."""
    if len(frame.columns) == 0:
        return "(none)"
    shown = [f"{label(name)} ({describe_column(frame[name])})" for name in frame.columns[: MAX_NAMES * 4]]
    return bounded_list(shown, total=len(frame.columns), limit=MAX_NAMES * 4, width=MAX_LIST_WIDTH * 5)
