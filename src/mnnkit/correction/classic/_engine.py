"""The classic MNN merge loop on plain arrays (no AnnData here).

Two matrices may be carried, as in batchelor: the "in" data (the genes used for distances, cosine-
normalised if asked), which every step searches and corrects, and, only when it differs, the "out"
data that is returned. Both hold cells in input order; a merge step reads the rows of its two
nodes and adds the correction to the right node's rows, so the output order never depends on the
merge order. Memory: the two matrices, a copy of the two sides of the current step, and the
chunked temporaries of the kernels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mnnkit._config import GROUP_MAX_CELLS, ROBUST_CENTRE_K, ROBUST_CENTRE_KEEP
from mnnkit.correction._centres import member_means, paired_cells, trimmed_members
from mnnkit.correction._pairs import find_mutual_pairs, side_k
from mnnkit.correction._plan import MergePlan, Node, run_plan
from mnnkit.correction.classic._gram import step_gram
from mnnkit.correction.classic._smoothing import gene_space_averages, smooth_corrections
from mnnkit.correction.classic._svd_dim import biological_basis, remove_subspace
from mnnkit.correction.classic._var_adj import variance_adjustment_scales
from mnnkit.neighbors import knn, mutual_pair_counts


@dataclass(frozen=True)
class MnnParams:
    """Parameters of the classic correction (see :func:`mnnkit.correct` for their meaning)."""

    k_left: int = 20
    k_right: int = 20
    prop_k: float | None = None
    sigma: float = 0.1
    var_adj: bool = True
    svd_dim: int = 0
    neighbors: str = "exact"
    kernel_truncate: int | None = None
    var_adj_dtype: type = np.float64
    var_adj_sample: int | None = None
    rng: int = 0
    #: ``"batchelor"`` (vectors between the paired cells) or ``"robust"`` (between their local centres
    #: of mass, :mod:`mnnkit.correction._centres`)
    flavor: str = "batchelor"


@dataclass
class MergeRecord:
    """What one merge step did: the batches on each side and the MNN pairs (global cell rows)."""

    left: tuple[int, ...]
    right: tuple[int, ...]
    pairs: np.ndarray
    seconds: float = 0.0
    max_truncated_mass: float = 0.0

    def uns_fields(self, batch_names: Sequence[str]) -> dict[str, float]:
        """Return the step's classic-only entry of the merge information (see :func:`merge_uns`)."""
        return {"max_truncated_kernel_mass": float(self.max_truncated_mass)}


@dataclass
class MergeState:
    """The data being corrected, and the steps done so far."""

    data_in: np.ndarray
    data_out: np.ndarray | None
    out_subset_cols: np.ndarray | None
    members: list[np.ndarray]
    params: MnnParams
    out_scale_shared: bool = True
    records: list[MergeRecord] = field(default_factory=list)
    #: batchelor's ``restrict``: the cells (a mask over the rows) that form pairs and set var.adj's quantiles
    restricted: np.ndarray | None = None

    def rows(self, node: Node) -> np.ndarray:
        """Global rows of a node: its batches' cells, in node order."""
        return np.concatenate([self.members[b] for b in node])

    def pairs(self, left_rows: np.ndarray, right_rows: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
        """MNN pairs (side positions) between two sides of the in data, among their restricted cells if any.

        ``gram`` is ``right @ left.T`` of the two sides if kept.
        """
        p = self.params
        left_in, right_in = self.data_in[left_rows], self.data_in[right_rows]
        if self.restricted is None:
            left_pos = right_pos = None
        else:
            left_pos, right_pos = (
                np.flatnonzero(self.restricted[left_rows]),
                np.flatnonzero(self.restricted[right_rows]),
            )
            left_in, right_in = left_in[left_pos], right_in[right_pos]
            gram = None if gram is None else np.ascontiguousarray(gram[np.ix_(right_pos, left_pos)])
        pairs = find_mutual_pairs(
            left_in,
            right_in,
            k_left=side_k(p.k_left, p.prop_k, left_in.shape[0]),
            k_right=side_k(p.k_right, p.prop_k, right_in.shape[0]),
            neighbors=p.neighbors,
            rng=p.rng,
            right_left=gram,
        )
        if left_pos is not None:
            pairs = np.column_stack([left_pos[pairs[:, 0]], right_pos[pairs[:, 1]]]).astype(np.int64)
        return pairs


def count_node_pairs(state: MergeState, left: Node, right: Node) -> int:
    """Number of MNN pairs between two nodes on the current in-space data."""
    return int(state.pairs(state.rows(left), state.rows(right), None).shape[0])


def count_node_row(state: MergeState, left: Node, rights: Sequence[Node]) -> list[int]:
    """:func:`count_node_pairs` of ``left`` against each of ``rights``, the same counts.

    The auto merge counts every pair of nodes: with many small batches, thousands of small searches.
    With the exact search and no ``restrict``, right nodes of at most ``GROUP_MAX_CELLS`` cells are
    searched in groups of at most that many cells (:func:`mnnkit.correction.fast._count.mutual_pair_counts`:
    exact, ties included, and no search at all where one side's ``k`` covers the other side); larger
    nodes, and every node with pynndescent or ``restrict``, one at a time. Memory: the left node's in
    data and one group's (copies), plus the grouped search's blocks (tens of MiB at most).
    """
    p = state.params
    if state.restricted is not None or p.neighbors != "exact":
        return [count_node_pairs(state, left, right) for right in rights]
    left_in = state.data_in[state.rows(left)]
    k_left = side_k(p.k_left, p.prop_k, left_in.shape[0])
    counts = [0] * len(rights)
    group: list[tuple[int, np.ndarray]] = []  # (position in rights, rows)
    cells = 0

    def flush() -> None:
        nonlocal cells
        cells = 0
        if group:
            sizes = [rows.size for _, rows in group]
            found = mutual_pair_counts(
                left_in,
                state.data_in[np.concatenate([rows for _, rows in group])],
                sizes,
                k_left,
                [side_k(p.k_right, p.prop_k, n) for n in sizes],
            )
            for (i, _), count in zip(group, found, strict=True):
                counts[i] = int(count)
            group.clear()

    for i, right in enumerate(rights):
        rows = state.rows(right)
        if rows.size > GROUP_MAX_CELLS:
            counts[i] = count_node_pairs(state, left, right)
            continue
        if cells + rows.size > GROUP_MAX_CELLS:
            flush()
        group.append((i, rows))
        cells += rows.size
    flush()
    return counts


def merge_step(state: MergeState, left: Node, right: Node) -> MergeRecord:
    """Correct node ``right`` onto node ``left`` in place and record the step."""
    started = time.perf_counter()
    p = state.params
    left_rows, right_rows = state.rows(left), state.rows(right)
    left_in, right_in = state.data_in[left_rows], state.data_in[right_rows]
    exact_var_adj = p.var_adj and p.var_adj_sample is None and p.var_adj_dtype == np.float64
    # dot products shared by the search, the smoothing and var.adj (kept only when they fit the budget)
    gram = step_gram(left_in, right_in) if (p.neighbors == "exact" or exact_var_adj) else None
    pairs = state.pairs(left_rows, right_rows, None if gram is None else gram.right_left)
    # never empty: the closest pair of cells across the two sides is always mutual, for any k >= 1

    sides = [(left_in, right_in)]
    if state.data_out is not None:
        left_out, right_out = state.data_out[left_rows], state.data_out[right_rows]
        sides.append((left_out, right_out))
    if p.flavor == "robust":
        mnn_cells, averages = _centre_averages(state, left_rows, right_rows, pairs, sides)
    else:
        mnn_cells = np.unique(pairs[:, 1])
        averages = [gene_space_averages(left, right, pairs)[1] for left, right in sides]
    corrections, stats = smooth_corrections(
        right_in,
        mnn_cells,
        averages,
        p.sigma,
        truncate=p.kernel_truncate,
        neighbors=p.neighbors,
        rng=p.rng,
        right_gram=None if gram is None else gram.right_right,
    )

    if p.svd_dim > 0:
        left_mnn = np.unique(pairs[:, 0])
        for side_cells, side_rows in ((left_in, left_mnn), (right_in, mnn_cells)):
            remove_subspace(corrections[0], biological_basis(side_cells[side_rows], p.svd_dim))
        if state.data_out is not None:
            cols = _extrapolated_cols(state)
            for side_cells, side_rows in ((left_out, left_mnn), (right_out, mnn_cells)):
                basis = biological_basis(side_cells[side_rows], p.svd_dim, cols)
                remove_subspace(corrections[1], basis, cols)

    restricted = None
    if state.restricted is not None:
        restricted = np.flatnonzero(state.restricted[left_rows]), np.flatnonzero(state.restricted[right_rows])
    if p.var_adj:
        scales = variance_adjustment_scales(
            left_in,
            right_in,
            corrections[0],
            p.sigma,
            dtype=p.var_adj_dtype,
            sample=p.var_adj_sample,
            seed=p.rng,
            gram=gram,
            restricted=restricted,
        )
        del gram
        corrections[0] *= scales[:, None]
        if state.data_out is not None:
            if not state.out_scale_shared:
                cols = state.out_subset_cols
                if cols is None:  # the out data holds only the subset genes
                    cols = slice(None)
                scales = variance_adjustment_scales(
                    left_out[:, cols],
                    right_out[:, cols],
                    corrections[1][:, cols],
                    p.sigma,
                    dtype=p.var_adj_dtype,
                    sample=p.var_adj_sample,
                    seed=p.rng,
                    restricted=restricted,
                )
            corrections[1] *= scales[:, None]

    state.data_in[right_rows] += corrections[0]
    if state.data_out is not None:
        state.data_out[right_rows] += corrections[1]
    record = MergeRecord(
        left=left,
        right=right,
        pairs=np.column_stack([left_rows[pairs[:, 0]], right_rows[pairs[:, 1]]]),
        seconds=time.perf_counter() - started,
        max_truncated_mass=stats.max_truncated_mass,
    )
    state.records.append(record)
    return record


def _centre_averages(
    state: MergeState, left_rows: np.ndarray, right_rows: np.ndarray, pairs: np.ndarray, sides: list[tuple]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The robust flavour's vectors: per right MNN cell, the mean over its pairs of centre(l) - centre(r).

    Each centre's members (the cell's trimmed ``ROBUST_CENTRE_K`` nearest cells on its own side, among
    the restricted cells with ``restrict``) are found in the in data, exactly; the same members give
    the centres in the out data. Memory: ``O(m * ROBUST_CENTRE_K)`` indices and ``O(m * genes)`` centres
    per side, for its ``m`` paired cells.
    """
    left_cells, right_cells, compact = paired_cells(pairs)
    members = []
    for data, rows, cells in zip(sides[0], (left_rows, right_rows), (left_cells, right_cells), strict=True):
        among = None if state.restricted is None else np.flatnonzero(state.restricted[rows])
        pool = data if among is None else data[among]
        found = knn(data[cells], pool, min(ROBUST_CENTRE_K, pool.shape[0]), method="exact").indices
        found = found if among is None else among[found]
        members.append(trimmed_members(np.ascontiguousarray(data, dtype=np.float64), found, ROBUST_CENTRE_KEEP))
    averages = []
    for left, right in sides:
        left_centres = member_means(np.ascontiguousarray(left, dtype=np.float64), members[0])
        right_centres = member_means(np.ascontiguousarray(right, dtype=np.float64), members[1])
        averages.append(gene_space_averages(left_centres, right_centres, compact)[1])
    return right_cells, averages


def _extrapolated_cols(state: MergeState) -> np.ndarray | None:
    """Columns of the out data that the out-space SVD sees (None: all of them)."""
    cols = state.out_subset_cols
    if cols is None or cols.size == state.data_out.shape[1]:
        return None
    return cols


def run_merges(state: MergeState, plan: MergePlan, *, progress: Callable[[Any], None] | None = None) -> None:
    """Run every merge step of ``plan`` on ``state`` (``progress(record)`` after each)."""
    # an auto plan counts a row at a time: the same pairs, on the same data, as counting pair by pair
    # when first needed (all pairs of the batches first, then each merged node against the others)
    run_plan(
        plan,
        len(state.members),
        lambda left, right: merge_step(state, left, right),
        count_row=lambda left, rights: count_node_row(state, left, rights),
        progress=progress,
    )
