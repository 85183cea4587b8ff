"""The fastMNN merge loop on plain arrays (batchelor's ``.fast_mnn_core``; no AnnData here).

The data (cells x dimensions, float64) stay in input cell order and are modified in place: a merge
step copies out the rows of its two nodes (each a concatenation of its batches, in node order),
works on the copies and writes them back. Each node also carries the batch vectors of the merges
that formed it. Memory: the data, a copy of the two sides of the current step, and the searches'.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnnkit._config import ROBUST_CENTRE_K, ROBUST_CENTRE_KEEP
from mnnkit.correction._centres import trimmed_members
from mnnkit.correction._pairs import side_k
from mnnkit.correction._plan import MergePlan, Node, run_plan
from mnnkit.correction.fast._count import count_row
from mnnkit.correction.fast._orthogonalize import center_along, orthogonalize, perbatch_variance
from mnnkit.correction.fast._search import Part, side_parts
from mnnkit.correction.fast._tricube import batch_magnitude, centre_averages, pc_space_averages, tricube_correct


@dataclass(frozen=True)
class FastParams:
    """Parameters of the merge loop (see :func:`mnnkit.fast_mnn`)."""

    k: int = 20
    prop_k: float | None = None
    ndist: float = 3.0
    min_batch_skip: float = 0.0
    #: ``"batchelor"`` (batchelor's vectors between the paired cells) or ``"robust"`` (between their
    #: trimmed local centres of mass, see :func:`centre_averages`)
    flavor: str = "batchelor"
    #: ``"mutual"`` (MNN pairs) or ``"dual_softmax"`` (weighted candidate pairs, see
    #: :mod:`mnnkit.correction._soft_pairs`)
    pairing: str = "mutual"


@dataclass
class FastStepRecord:
    """What one merge step did (pairs as global cell rows; lost variance per batch position)."""

    left: Node
    right: Node
    pairs: np.ndarray
    batch_size: float
    skipped: bool
    lost_var: dict[int, float]
    batch_vector: np.ndarray
    seconds: float = 0.0
    reason: str = ""

    def uns_fields(self, batch_names: Sequence[str]) -> dict[str, object]:
        """Return the step's fast-only entries of the merge information (lost_var 0 for batches not in it)."""
        return {
            "batch_size": float(self.batch_size),
            "skipped": bool(self.skipped),
            "skip_reason": self.reason,
            "lost_var": {name: float(self.lost_var.get(b, 0.0)) for b, name in enumerate(batch_names)},
            "batch_vector": np.asarray(self.batch_vector, dtype=np.float64),
        }


@dataclass
class FastMergeState:
    """The data being corrected, the batch vectors of each node, and the steps done so far."""

    data: np.ndarray
    members: list[np.ndarray]
    params: FastParams
    search: object
    extras: dict[Node, list[np.ndarray]] = field(default_factory=dict)
    records: list[FastStepRecord] = field(default_factory=list)
    #: per batch, its variance as last measured, while its rows have not changed since
    variance: dict[int, float] = field(default_factory=dict)
    #: batchelor's ``restrict``: the cells (a mask over the rows) that form pairs and give the centres
    restricted: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.sizes = [int(m.size) for m in self.members]
        for b in range(len(self.members)):
            self.extras.setdefault((b,), [])

    def rows(self, node: Node) -> np.ndarray:
        """Global rows of a node: its batches' cells, in node order."""
        return np.concatenate([self.members[b] for b in node])

    def parts(self, node: Node) -> list[Part]:
        return side_parts(node, self.sizes)

    def side_ks(self, n_left: int, n_right: int) -> tuple[int, int]:
        p = self.params
        return side_k(p.k, p.prop_k, n_left), side_k(p.k, p.prop_k, n_right)

    def restricted_positions(self, rows: np.ndarray) -> np.ndarray | None:
        """Positions (in a side's rows) of the restricted cells; None without ``restrict``."""
        return None if self.restricted is None else np.flatnonzero(self.restricted[rows])

    def pairs(
        self, left: Node, right: Node, left_data: np.ndarray, right_data: np.ndarray, restricted: tuple
    ) -> np.ndarray:
        """MNN pairs (side positions) between the two sides, among their restricted cells if any."""
        return self.weighted_pairs(left, right, left_data, right_data, restricted, "mutual")[0]

    def weighted_pairs(
        self, left: Node, right: Node, left_data: np.ndarray, right_data: np.ndarray, restricted: tuple, pairing: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Pairs (side positions) and, for ``"dual_softmax"``, their weights (None for MNN pairs)."""
        left_pos, right_pos = restricted
        if left_pos is None:
            k_left, k_right = self.side_ks(left_data.shape[0], right_data.shape[0])
            parts = self.parts(left), self.parts(right)
            if pairing == "dual_softmax":
                return self.search.soft_pairs(left_data, right_data, *parts, k_left, k_right)
            return self.search.mnn_pairs(left_data, right_data, *parts, k_left, k_right), None
        # restrict is only offered with the exact search, which needs no parts
        k_left, k_right = self.side_ks(left_pos.size, right_pos.size)
        sides = left_data[left_pos], right_data[right_pos]
        if pairing == "dual_softmax":
            found, weights = self.search.soft_pairs(*sides, None, None, k_left, k_right)
        else:
            found, weights = self.search.mnn_pairs(*sides, None, None, k_left, k_right), None
        return np.column_stack([left_pos[found[:, 0]], right_pos[found[:, 1]]]).astype(np.int64), weights


def _side_variance(state: FastMergeState, data: np.ndarray, parts: Sequence[Part]) -> np.ndarray:
    """Per-batch variance of a side's rows; a batch unchanged since it was last measured is not measured again."""
    out = np.array([state.variance.get(q.batch, np.nan) for q in parts])
    todo = [i for i, q in enumerate(parts) if q.batch not in state.variance]
    out[todo] = perbatch_variance(data, [(parts[i].start, parts[i].stop) for i in todo])
    return out


def merge_step(state: FastMergeState, left: Node, right: Node) -> FastStepRecord:
    """Correct node ``right`` onto node ``left`` (both are modified) and record the step."""
    started = time.perf_counter()
    p = state.params
    left_rows, right_rows = state.rows(left), state.rows(right)
    left_data, right_data = state.data[left_rows], state.data[right_rows]
    left_parts, right_parts = state.parts(left), state.parts(right)
    bounds = [(q.start, q.stop) for q in left_parts], [(q.start, q.stop) for q in right_parts]
    before = _side_variance(state, left_data, left_parts), _side_variance(state, right_data, right_parts)

    restricted = state.restricted_positions(left_rows), state.restricted_positions(right_rows)
    orthogonalize(right_data, state.extras[left], restricted[1])
    orthogonalize(left_data, state.extras[right], restricted[0])
    pairs, weights = state.weighted_pairs(left, right, left_data, right_data, restricted, p.pairing)

    reason = ""
    overall = np.zeros(state.data.shape[1])
    if pairs.shape[0] == 0:
        size, skipped, reason = 0.0, True, "no MNN pairs"
    else:
        averages_now = _averages(state, (left_data, right_data), (left_parts, right_parts), restricted, pairs, weights)
        cells, averages = averages_now()
        overall = averages.mean(axis=0)
        size = batch_magnitude(averages, overall)
        skipped = size < p.min_batch_skip
        if skipped:
            reason = f"batch_size {size:.3g} < min_batch_skip {p.min_batch_skip:g}"
    new_extras = [*state.extras[left], *state.extras[right]]
    if not skipped:
        center_along(left_data, overall, restricted[0])
        center_along(right_data, overall, restricted[1])
        _, averages = averages_now()
        k_mnn = min(side_k(p.k, p.prop_k, right_data.shape[0]), cells.size)
        indices, distances = state.search.nearest_of(right_data, right_parts, cells, k_mnn)
        after = perbatch_variance(left_data, bounds[0]), perbatch_variance(right_data, bounds[1])
        tricube_correct(right_data, averages, indices, distances, p.ndist)
        new_extras.append(overall)
    else:
        after = perbatch_variance(left_data, bounds[0]), perbatch_variance(right_data, bounds[1])

    state.data[left_rows] = left_data
    state.data[right_rows] = right_data
    for side, parts in ((0, left_parts), (1, right_parts)):
        for i, part in enumerate(parts):
            if side == 0 or skipped:  # else the correction moved the right cells since
                state.variance[part.batch] = float(after[side][i])
            else:
                state.variance.pop(part.batch, None)
    state.extras[(*left, *right)] = new_extras
    lost = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for side, parts in ((0, left_parts), (1, right_parts)):
            for i, part in enumerate(parts):
                lost[part.batch] = float(1.0 - after[side][i] / before[side][i])
    record = FastStepRecord(
        left=left,
        right=right,
        pairs=np.column_stack([left_rows[pairs[:, 0]], right_rows[pairs[:, 1]]]).astype(np.int64),
        batch_size=float(size),
        skipped=bool(skipped),
        lost_var=lost,
        batch_vector=overall,
        seconds=time.perf_counter() - started,
        reason=reason,
    )
    state.records.append(record)
    after_merge = getattr(state.search, "after_merge", None)
    if after_merge is not None:
        after_merge(record.pairs, left_rows, right_rows)
    return record


def _averages(state: FastMergeState, sides: tuple, parts: tuple, restricted: tuple, pairs: np.ndarray, weights):
    """A function giving the right MNN cells and their correction vectors on the sides' current values.

    The robust flavour's centres of mass are means of each paired cell's members on its own side,
    chosen once here (on the values before the step's centring, which moves cells only along one
    direction) and averaged on the current values at each call.
    """
    left_data, right_data = sides
    if state.params.flavor != "robust":  # weighted pairs come only with it (checked by the front)
        return lambda: pc_space_averages(left_data, right_data, pairs)
    members = []
    for column, (data, its_parts, among) in enumerate(zip(sides, parts, restricted, strict=True)):
        cells = np.unique(pairs[:, column])
        neighbours = state.search.nearest_within(data, its_parts, cells, ROBUST_CENTRE_K, among)
        members.append(trimmed_members(data, neighbours, ROBUST_CENTRE_KEEP))
    return lambda: centre_averages(left_data, right_data, pairs, *members, weights)


def run_merges(state: FastMergeState, plan: MergePlan, *, progress: Callable[[Any], None] | None = None) -> None:
    """Run every merge step of ``plan`` on ``state`` (``progress(record)`` after each)."""
    run_plan(
        plan,
        len(state.members),
        lambda left, right: merge_step(state, left, right),
        count_row=lambda left, rights: count_row(state, left, rights),
        progress=progress,
    )
