"""A readable summary of training data, and how far the stacks disagree where they meet."""

from __future__ import annotations

import json

import numpy as np

from .data import TrainingData


def stack_disagreement(data: TrainingData) -> list[dict[str, float]]:
    """Per stack, how far its targets are from the other stacks' where their prisms share nodes.

    Each node's target in a stack is the mean target of its groups there; for every pair of stacks
    the absolute difference is taken at the nodes both supervise, and per stack these are averaged
    over all its pairs (node-weighted). Breath-hold motion between acquisitions shows up here.

    Returns
    -------
    One dict per stack: ``stack``, ``shared_nodes`` and ``mean_abs_difference`` (NaN when it shares none).
    """
    n_stacks, n = len(data.stack_names), data.n_nodes
    if n_stacks < 2:
        return []
    idx = data.group_stack[data.member_group] * n + data.member_node
    sums = np.bincount(idx, weights=data.group_target[data.member_group], minlength=n_stacks * n).reshape(n_stacks, n)
    counts = np.bincount(idx, minlength=n_stacks * n).reshape(n_stacks, n)
    node_target = sums / np.maximum(counts, 1)
    out = []
    for a in range(n_stacks):  # pairs of stacks (a handful), vectorised over nodes
        diff_sum, shared = 0.0, 0
        for b in range(n_stacks):
            both = (counts[a] > 0) & (counts[b] > 0) if a != b else np.zeros(n, bool)
            diff_sum += float(np.abs(node_target[a, both] - node_target[b, both]).sum())
            shared += int(both.sum())
        out.append(
            {"stack": a, "shared_nodes": shared, "mean_abs_difference": diff_sum / shared if shared else float("nan")}
        )
    return out


def format_mapping(mapping: dict) -> str:
    """How a stack's values became targets (``stack_mapping``), as ``key=value, ...`` (4 significant digits)."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in mapping.items())


def summary(data: TrainingData) -> str:
    """A short human-readable summary: nodes, supervised share, groups per stack and slice."""
    sup = data.supervised()
    lines = [
        f"nodes: {data.n_nodes}",
        f"supervised nodes: {int(sup.sum())} ({100.0 * sup.mean():.1f}% of the mesh)",
        f"groups: {data.n_groups}  memberships: {data.n_members}  "
        f"(mean {data.n_members / max(data.n_groups, 1):.1f} nodes per group)",
    ]
    for si, name in enumerate(data.stack_names):
        sel = data.group_stack == si
        slices, counts = np.unique(data.group_slice[sel], return_counts=True)
        per_slice = ", ".join(f"{s}:{c}" for s, c in zip(slices, counts))
        lines.append(
            f"stack {si} ({name}): {int(sel.sum())} groups, thickness {data.stacks[si].thickness:g} mm; "
            f"groups per slice {{{per_slice}}}"
        )
        lines.append(f"  targets: {format_mapping(json.loads(str(data.stack_mapping[si])))}")
        offsets = data.stacks[si].slice_offsets
        if offsets is not None:
            rows = "; ".join(f"{k}: [{o[0]:+.1f}, {o[1]:+.1f}, {o[2]:+.1f}]" for k, o in enumerate(offsets))
            lines.append(f"  slice offsets [di, dj, dn] mm (the heart's displacement per slice): {rows}")
    for row in stack_disagreement(data):
        lines.append(
            f"stack {row['stack']} vs the other stacks where prisms intersect: "
            f"mean |target difference| {row['mean_abs_difference']:.3f} over {row['shared_nodes']} node pairs"
        )
    return "\n".join(lines)
