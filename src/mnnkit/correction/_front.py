"""The AnnData front shared by both correction methods.

Checks and warnings about the batches, the output dtype, the progress bar and the log line of each
merge step (batches named by their names), and the one ``.uns`` schema of the merge information.

Everything here runs on the AnnData side, before (checks) or after (outputs) an engine's merge loop;
the engines themselves see plain arrays only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from mnnkit._warnings import ParameterWarning, SkippedMergeWarning, warn
from mnnkit.correction._inputs import Batches
from mnnkit.correction._plan import MergePlan, Node, entered_order

logger = logging.getLogger("mnnkit")

#: Where each method writes by default: ``.layers``/``.uns["mnn"]`` (classic); ``.obsm``/``.varm``/``.uns``
#: ``["X_mnn"]`` (fast, named as scanpy's embeddings are).
DEFAULT_KEY_ADDED = {"classic": "mnn", "fast": "X_mnn"}


def warn_batch_problems(batches: Batches, batch_key: str, k: int, *, single_output: str) -> None:
    """Warn (as batchelor does) when ``k`` exceeds the smallest batch, and when there is one batch only.

    ``single_output`` says what a single batch gives (the output is then not a correction).
    """
    sizes = [m.size for m in batches.members]
    smallest = int(np.argmin(sizes))
    if k > sizes[smallest]:
        warn(
            f"k={k} is larger than the smallest batch, {batches.names[smallest]!r} ({sizes[smallest]} cells); "
            "it is capped at each side's size",
            ParameterWarning,
        )
    if len(batches.names) == 1:
        warn(
            f"adata.obs[{batch_key!r}] holds a single batch ({batches.names[0]!r}): nothing to merge; "
            f"the output is {single_output}",
            ParameterWarning,
        )


def output_dtype(dtype: Any) -> np.dtype:
    """The dtype of a correction's output: float32 for float32 input, float64 for everything else."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


@contextmanager
def step_reporter(batches: Batches, what: str, progress: bool) -> Iterator[Callable[[Any], None]]:
    """Yield the callback an engine calls after each merge step (:func:`~mnnkit.correction._plan.run_plan`).

    It logs the step at INFO level with the batches' names, warns with :class:`SkippedMergeWarning`
    when the step found no MNN pairs, and advances a tqdm bar over the steps when ``progress``.
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(batches.names) - 1, desc=f"{what} merge steps", unit="step")
    done = 0

    def report(record: StepRecord) -> None:
        nonlocal done
        done += 1
        left, right = _names(batches, record.left), _names(batches, record.right)
        n_pairs = int(np.asarray(record.pairs).shape[0])
        skipped = ", skipped" if getattr(record, "skipped", False) else ""
        logger.info("    merged %s onto %s: %d MNN pairs%s (%.2f s)", right, left, n_pairs, skipped, record.seconds)
        if n_pairs == 0:
            warn(
                f"merge step {done} found no MNN pairs between batches {left} and {right}: they were merged "
                "without correction (recorded as skipped in the merge information)",
                SkippedMergeWarning,
            )
        if bar is not None:
            bar.update()

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()


def _names(batches: Batches, node: Node) -> str:
    """A node's batches by name, as a log message shows them (at most five, then a count)."""
    names = [batches.names[b] for b in node]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return f"[{shown}]"


class StepRecord(Protocol):
    """What every engine records of a merge step (global cell rows in ``pairs``, reference side first)."""

    left: Node
    right: Node
    pairs: np.ndarray
    seconds: float

    def uns_fields(self, batch_names: Sequence[str]) -> dict[str, Any]:
        """The method's own entries of this step in ``.uns[key]["steps"]``."""
        ...


def merge_uns(
    method: str,
    plan: MergePlan,
    obs_names: Sequence[str],
    batches: Batches,
    records: Sequence[StepRecord],
    *,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The merge information for ``.uns[key_added]``, in the one schema both methods write.

    ``method``; ``params`` (``None`` values left out, plus ``merge_order``: how the plan was given);
    ``batches``; ``merge_order`` (batch names in the row order of the final merged node: for a
    progressive plan, the order they entered); ``merge_tree`` (a tree plan only: the tree as JSON
    text, nested lists of batch names); ``steps``: per step
    ``left``/``right`` batch names, ``n_pairs``, ``pairs`` (cell positions, column 0 the reference
    side), ``left_names``/``right_names`` (obs names of the pairs), ``seconds`` and the method's own
    fields (:meth:`StepRecord.uns_fields`).
    """
    names = np.asarray(obs_names, dtype=object)
    batch_names = batches.names
    steps = {}
    for i, record in enumerate(records, start=1):
        pairs = np.asarray(record.pairs, dtype=np.int64)
        steps[f"step_{i}"] = {
            "left": np.array([batch_names[b] for b in record.left], dtype=object),
            "right": np.array([batch_names[b] for b in record.right], dtype=object),
            "n_pairs": int(pairs.shape[0]),
            "pairs": pairs,
            "left_names": names[pairs[:, 0]],
            "right_names": names[pairs[:, 1]],
            "seconds": float(record.seconds),
            **record.uns_fields(batch_names),
        }
    uns = {
        "method": method,
        "params": {key: value for key, value in {**params, "merge_order": plan.source}.items() if value is not None},
        "batches": np.array(batch_names, dtype=object),
        "merge_order": np.array([batch_names[b] for b in entered_order(records)], dtype=object),
        "steps": steps,
    }
    if plan.tree is not None:
        uns["merge_tree"] = json.dumps(plan.tree)  # nested lists of batch names (h5ad stores no ragged lists)
    return uns
