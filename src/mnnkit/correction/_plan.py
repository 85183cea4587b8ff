"""The merge plan: which nodes are merged, in which order. Shared by both correction methods.

A node is a tuple of batch positions; a merge step corrects its right node onto its left node. The
default and explicit orders are progressive: the first batch is the reference, each next one is
corrected onto everything merged so far. ``"auto"`` (batchelor's ``auto.merge``) is chosen step by
step from the data, so it is driven by :func:`auto_merge` with a callback that counts MNN pairs.
An engine runs a plan with :func:`run_plan`, giving it its own merge step and pair counter.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Node = tuple[int, ...]


@dataclass(frozen=True)
class MergePlan:
    """How the batches of one correction are merged.

    Attributes
    ----------
    steps
        The merge steps ``(left node, right node)`` in the order they run; ``None`` with ``auto``.
        Any binary tree of nodes can be written this way (a merged node's rows are its left node's
        rows followed by its right node's).
    auto
        Choose each step from the data (batchelor's ``auto.merge``).
    source
        How the plan was given, recorded in the output's parameters: ``"default"`` (batch order),
        ``"size"`` (largest batch first: the ``robust`` flavour's default), ``"given"`` (a list of
        batches), ``"tree"`` (nested lists) or ``"auto"``.
    tree
        For ``source="tree"``: the tree as given, with batch names (nested lists), else ``None``.

    Per-step choices that batchelor makes from the plan (which cells of a node may form pairs, how
    its batches weigh in a node's mean) belong in this type as fields, so that every engine reads
    them from one place.
    """

    steps: tuple[tuple[Node, Node], ...] | None
    auto: bool
    source: Literal["default", "size", "given", "tree", "auto"]
    tree: list | None = None


def resolve_merge_plan(
    merge_order: object, batch_names: Sequence[str], *, sizes: Sequence[int] | None = None
) -> MergePlan:
    """Check a ``merge_order`` argument and return its plan.

    With ``sizes`` (cells per batch), the default (``merge_order=None``) is :func:`size_order`, not
    the batch order: the reference is the largest batch, whatever order the batches come in.

    ``merge_order`` is ``None`` (batch order), ``"auto"``, a list naming every batch once (a
    progressive order), or nested lists of batch names, any depth (a tree, batchelor's hierarchical
    ``merge.order``): each inner list is merged first, in its order, then the merged nodes in the
    outer order. Batches may be given by name or by position.

    Raises
    ------
    ValueError
        For a string other than ``"auto"``, or unknown, duplicated or missing batches.
    TypeError
        For something that is not a list of batch names or positions.
    """
    if isinstance(merge_order, str):
        if merge_order == "auto":
            return MergePlan(steps=None, auto=True, source="auto")
        msg = f"merge_order must be None, 'auto' or a list of batch names; got {merge_order!r}"
        raise ValueError(msg)
    if merge_order is not None and _is_list(merge_order) and any(_is_list(entry) for entry in merge_order):
        return _tree_plan(merge_order, batch_names)
    if merge_order is None and sizes is not None:
        return MergePlan(steps=tuple(progressive_plan(size_order(sizes, batch_names))), auto=False, source="size")
    order = resolve_order(merge_order, batch_names)
    source = "default" if merge_order is None else "given"
    return MergePlan(steps=tuple(progressive_plan(order)), auto=False, source=source)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


def _tree_plan(tree: Sequence, batch_names: Sequence[str]) -> MergePlan:
    """The steps of a nested ``merge_order``, in batchelor's order.

    A node with more than two children is a progressive merge of them (``[a, b, c]`` is
    ``[[a, b], c]``). The next step is found from the root: descend into the second child while it
    is unmerged, else into the first; merge a node whose two children are merged (first = left). So
    ``[[1, 2, 3], [4, 5, 6]]`` merges 4 <- 5, (4, 5) <- 6, 1 <- 2, (1, 2) <- 3, (1, 2, 3) <- (4, 5, 6).
    """
    leaves: list[object] = []

    def collect(node: object) -> None:
        if _is_list(node):
            if len(node) == 0:
                msg = "merge_order contains an empty list"
                raise ValueError(msg)
            for child in node:
                collect(child)
        else:
            leaves.append(node)

    collect(tree)
    positions = resolve_order(leaves, batch_names)  # every batch once, by name or position
    leaf_position = iter(positions)
    steps: list[tuple[Node, Node]] = []

    def build(node: object) -> object:
        """The node with leaves as positions and every list binary (left-folded)."""
        if not _is_list(node):
            return next(leaf_position)
        children = [build(child) for child in node]
        folded = children[0]
        for child in children[1:]:
            folded = (folded, child)
        return folded

    def visit(node: object) -> Node:
        if not isinstance(node, tuple):
            return (int(node),)
        right = visit(node[1])  # batchelor descends into the second child first
        left = visit(node[0])
        steps.append((left, right))
        return (*left, *right)

    visit(build(tree))
    named = _names_of(tree, batch_names)
    return MergePlan(steps=tuple(steps), auto=False, source="tree", tree=named)


def _names_of(tree: object, batch_names: Sequence[str]) -> object:
    """The tree with every leaf given as the batch's name."""
    if _is_list(tree):
        return [_names_of(child, batch_names) for child in tree]
    if isinstance(tree, numbers.Integral) and not isinstance(tree, bool):
        return str(batch_names[int(tree)])
    return str(tree)


def run_plan(
    plan: MergePlan,
    n_batches: int,
    merge: Callable[[Node, Node], Any],
    *,
    count_pairs: Callable[[Node, Node], int] | None = None,
    count_row: Callable[[Node, Sequence[Node]], Sequence[int]] | None = None,
    progress: Callable[[Any], None] | None = None,
) -> None:
    """Run every step of ``plan`` with the engine's ``merge(left, right)``; ``progress(record)`` after each.

    ``merge`` returns the step's record, which ``progress`` receives. ``count_pairs``/``count_row``
    count MNN pairs for ``"auto"`` plans (see :func:`auto_merge`).
    """

    def step(left: Node, right: Node) -> None:
        record = merge(left, right)
        if progress is not None:
            progress(record)

    if plan.auto:
        auto_merge(n_batches, count_pairs, step, count_row=count_row)
        return
    for left, right in plan.steps:
        step(left, right)


def resolve_order(merge_order: Sequence | None, batch_names: Sequence[str]) -> list[int]:
    """Batch positions in progressive merge order.

    Parameters
    ----------
    merge_order
        ``None`` (input order), or a list of all batch names (or integer positions), each once.
    batch_names
        The batch names in input order.

    Raises
    ------
    ValueError
        For unknown, duplicated or missing entries.
    """
    n = len(batch_names)
    if merge_order is None:
        return list(range(n))
    if isinstance(merge_order, str) or not isinstance(merge_order, Sequence):
        msg = f"merge_order must be None, 'auto' or a list of batch names; got {merge_order!r}"
        raise TypeError(msg)
    lookup = {str(name): i for i, name in enumerate(batch_names)}
    positions: list[int] = []
    for entry in merge_order:
        if isinstance(entry, str) or not isinstance(entry, int):
            key = str(entry)
            if key not in lookup:
                msg = f"merge_order entry {entry!r} is not a batch; batches: {', '.join(map(str, batch_names))}"
                raise ValueError(msg)
            positions.append(lookup[key])
        else:
            if not 0 <= entry < n:
                msg = f"merge_order position {entry} is out of range for {n} batches"
                raise ValueError(msg)
            positions.append(int(entry))
    duplicated = sorted({str(batch_names[p]) for p in positions if positions.count(p) > 1})
    if duplicated:
        msg = f"merge_order names these batches more than once: {', '.join(duplicated)}"
        raise ValueError(msg)
    missing = [str(batch_names[i]) for i in range(n) if i not in positions]
    if missing:
        msg = f"merge_order must name every batch once; missing: {', '.join(missing)}"
        raise ValueError(msg)
    return positions


def size_order(sizes: Sequence[int], batch_names: Sequence[str]) -> list[int]:
    """Batch positions from the largest batch to the smallest; equal sizes in order of their names.

    Names break ties (not positions) so that the order, and the merge, do not depend on the order in
    which the batches come.
    """
    return sorted(range(len(sizes)), key=lambda b: (-int(sizes[b]), str(batch_names[b])))


def progressive_plan(order: Sequence[int]) -> list[tuple[Node, Node]]:
    """Steps ``((o0,), (o1,)), ((o0, o1), (o2,)), ...`` of a progressive merge."""
    steps = []
    merged: Node = (order[0],)
    for position in order[1:]:
        steps.append((merged, (position,)))
        merged = (*merged, position)
    return steps


def auto_merge(
    n_batches: int,
    count_pairs: Callable[[Node, Node], int] | None,
    merge: Callable[[Node, Node], None],
    *,
    count_row: Callable[[Node, Sequence[Node]], Sequence[int]] | None = None,
) -> None:
    """Run batchelor's ``auto.merge``: repeatedly merge the two nodes that share the most MNN pairs.

    For every pair of remaining nodes ``i > j`` (in the list order, where a merged node is appended
    at the end), ``count_pairs(node_i, node_j)`` counts pairs with node ``i`` as left. The maximum
    wins; ties go to the smallest ``j``, then the smallest ``i``. Then ``merge(left, right)`` runs the
    step (it must update the data that later counts see).

    ``count_row`` (optional, replaces ``count_pairs``) counts a whole row at once:
    ``count_row(node_i, [node_0, ..., node_{i-1}])`` returns the counts of node ``i`` as left against
    each earlier node, called in batchelor's order (each initial node in turn, then each newly merged
    node against all remaining ones). fastMNN needs it: its counting carries state from one right
    candidate to the next (the left data is orthogonalised cumulatively).
    """
    if count_row is None:
        if count_pairs is None:
            msg = "auto_merge needs count_pairs or count_row"
            raise TypeError(msg)
        _auto_merge_lazy(n_batches, count_pairs, merge)
        return
    nodes: list[Node] = [(b,) for b in range(n_batches)]
    counts: dict[tuple[Node, Node], int] = {}

    def add_row(i: int) -> None:
        for j, count in enumerate(count_row(nodes[i], nodes[:i])):
            counts[(nodes[i], nodes[j])] = int(count)

    for i in range(1, len(nodes)):
        add_row(i)
    while len(nodes) > 1:
        left, right = _best(nodes, counts)
        merge(left, right)
        nodes = [node for node in nodes if node not in (left, right)]
        nodes.append((*left, *right))
        if len(nodes) > 1:
            add_row(len(nodes) - 1)


def entered_order(records: Sequence) -> list[int]:
    """Batch positions in the row order of the final merged node.

    For a progressive plan this is the order in which they entered the merge.
    """
    if not records:  # a single batch: nothing was merged
        return [0]
    return [*records[-1].left, *records[-1].right]


def _best(nodes: list[Node], counts: dict[tuple[Node, Node], int]) -> tuple[Node, Node]:
    """The pair (left, right) with the most pairs; ties to the smallest right, then the smallest left position."""
    best = None
    for j in range(len(nodes)):
        for i in range(j + 1, len(nodes)):
            key = (nodes[i], nodes[j])
            if best is None or counts[key] > counts[best]:
                best = key
    return best


def _auto_merge_lazy(
    n_batches: int, count_pairs: Callable[[Node, Node], int], merge: Callable[[Node, Node], None]
) -> None:
    """:func:`auto_merge` with pair-by-pair counts, computed when first needed."""
    nodes: list[Node] = [(b,) for b in range(n_batches)]
    counts: dict[tuple[Node, Node], int] = {}
    while len(nodes) > 1:
        best = None
        for j in range(len(nodes)):
            for i in range(j + 1, len(nodes)):
                key = (nodes[i], nodes[j])
                if key not in counts:
                    counts[key] = count_pairs(*key)
                if best is None or counts[key] > counts[best]:
                    best = key
        left, right = best
        merge(left, right)
        nodes = [node for node in nodes if node not in (left, right)]
        nodes.append((*left, *right))
