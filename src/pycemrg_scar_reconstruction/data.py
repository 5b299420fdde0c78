"""Training data: groups (one per supervised pixel) and memberships (node, group).

Built from world-mm mesh points and :class:`~.stack.SliceStack` objects by pure array code. File
reading and writing live in :mod:`.io`; this module only converts to and from a dict of arrays
(``to_arrays`` / ``from_arrays``), and ``from_arrays`` checks everything it is given.

Array layout (the ``.npz`` keys, format version 1)
--------------------------------------------------
====================  ==========  =====================================================
key                   shape       meaning
====================  ==========  =====================================================
format_version        ()          int, currently 2
points                (N, 3)      float64 node coordinates, world RAS mm
member_node           (M,)        int64 node index of each membership
member_group          (M,)        int64 group index, sorted ascending
group_target          (G,)        float32 target in [0, 1]
group_count           (G,)        int64 memberships per group (>= 1)
group_voxel           (G, 3)      int64 voxel index (i, j, k) in its stack
group_stack           (G,)        int64 stack index
group_slice           (G,)        int64 slice index along the stack's through-plane axis
norm_center           (3,)        float64 mm, isotropic normalisation centre
norm_scale            ()          float64 mm, isotropic normalisation scale
stack_names           (S,)        str, source of each stack
stack_affines         (S, 4, 4)   float64 voxel -> world
stack_shapes          (S, 3)      int64 image shape
stack_thickness       (S,)        float64 mm
stack_axis            (S,)        int64 through-plane axis
stack_mapping         (S,)        str, JSON: how raw values became targets (thresholds...)
====================  ==========  =====================================================
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .geometry import normalisation, prism_memberships
from .stack import SliceStack

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2


@dataclass(frozen=True)
class TrainingData:
    """Grouped training data for one patient (see the module docstring for the layout)."""

    points: np.ndarray
    member_node: np.ndarray
    member_group: np.ndarray
    group_target: np.ndarray
    group_count: np.ndarray
    group_voxel: np.ndarray
    group_stack: np.ndarray
    group_slice: np.ndarray
    norm_center: np.ndarray
    norm_scale: float
    stack_names: np.ndarray
    stack_affines: np.ndarray
    stack_shapes: np.ndarray
    stack_thickness: np.ndarray
    stack_axis: np.ndarray
    stack_mapping: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.group_target.shape[0])

    @property
    def n_members(self) -> int:
        return int(self.member_node.shape[0])

    @property
    def group_offset(self) -> np.ndarray:
        """(G + 1,) start of each group's memberships; group g is members[offset[g]:offset[g+1]]."""
        return np.concatenate([[0], np.cumsum(self.group_count)]).astype(np.int64)

    def supervised(self) -> np.ndarray:
        """(N,) bool: True where the node belongs to at least one group."""
        out = np.zeros(self.n_nodes, dtype=bool)
        out[self.member_node] = True
        return out

    def group_mean(self, node_values: np.ndarray) -> np.ndarray:
        """(G,) mean of a per-node quantity over each group's nodes."""
        sums = np.bincount(self.member_group, weights=node_values[self.member_node], minlength=self.n_groups)
        return sums / self.group_count

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` dict, with ``format_version``."""
        out = {k: np.asarray(v) for k, v in self.__dict__.items()}
        out["format_version"] = np.asarray(FORMAT_VERSION)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], name: str = "<data>") -> "TrainingData":
        """Check and wrap a dict of arrays (as read from ``.npz``).

        Raises
        ------
        InputError
            On a wrong version, missing keys, inconsistent shapes or out-of-range values.
        """
        fix = "re-create it with `scar-reconstruct prepare`"
        if "format_version" not in arrays:
            raise InputError(f"{name}: not a training-data file (no format_version); {fix}")
        version = int(np.asarray(arrays["format_version"]))
        if version != FORMAT_VERSION:
            raise InputError(f"{name}: training-data format {version}, this version reads {FORMAT_VERSION}; {fix}")
        fields = list(cls.__dataclass_fields__)
        missing = [k for k in fields if k not in arrays]
        if missing:
            raise InputError(f"{name}: missing keys {', '.join(missing)}; {fix}")
        a = {k: np.asarray(arrays[k]) for k in fields}
        a["norm_scale"] = float(a["norm_scale"])
        data = cls(**a)
        problem = data._problem()
        if problem:
            raise InputError(f"{name}: {problem}; {fix}")
        return data

    def _problem(self) -> str | None:
        """A description of the first inconsistency, or None when the data are consistent."""
        n, m, g = self.n_nodes, self.n_members, self.n_groups
        s = len(self.stack_names)
        shapes = {
            "points": (n, 3), "member_node": (m,), "member_group": (m,), "group_target": (g,),
            "group_count": (g,), "group_voxel": (g, 3), "group_stack": (g,), "group_slice": (g,),
            "norm_center": (3,), "stack_affines": (s, 4, 4), "stack_shapes": (s, 3),
            "stack_thickness": (s,), "stack_axis": (s,), "stack_mapping": (s,),
        }
        for key, shape in shapes.items():
            if getattr(self, key).shape != shape:
                return f"{key} has shape {getattr(self, key).shape}, expected {shape}"
        if g == 0:
            return "no groups"
        if not np.all(np.isfinite(self.points)):
            return "non-finite points"
        if m and (self.member_node.min() < 0 or self.member_node.max() >= n):
            return "member_node out of range"
        if m and (self.member_group.min() < 0 or self.member_group.max() >= g):
            return "member_group out of range"
        if np.any(np.diff(self.member_group) < 0):
            return "member_group is not sorted"
        if not np.array_equal(np.bincount(self.member_group, minlength=g), self.group_count):
            return "group_count does not match member_group"
        if not (np.all(np.isfinite(self.group_target)) and self.group_target.min() >= 0 and self.group_target.max() <= 1):
            return "group_target outside [0, 1]"
        if self.group_stack.min() < 0 or self.group_stack.max() >= s:
            return "group_stack out of range"
        if not (self.norm_scale > 0 and np.isfinite(self.norm_scale)):
            return "norm_scale must be positive"
        return None


def _slice_major(stack: SliceStack) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axis order (through-plane first) and dims of the voxel key, so groups sort by slice."""
    order = (stack.axis, *(ax for ax in range(3) if ax != stack.axis))
    return order, tuple(stack.shape[ax] for ax in order)


def build_training_data(points: np.ndarray, stacks: list[SliceStack]) -> TrainingData:
    """Map mesh nodes into every stack's pixel prisms and group them.

    Parameters
    ----------
    points : (N, 3) float64 world RAS mm.
    stacks : the slice stacks (targets already converted to [0, 1]).

    Returns
    -------
    TrainingData with groups ordered by (stack, slice, in-plane voxel) and memberships sorted by
    group. Voxels with no node, a NaN target or outside the stack's mask are not groups.
    """
    points = np.asarray(points, dtype=np.float64)
    keys, nodes = [], []
    key_offset = 0
    for stack in stacks:
        node, vox = prism_memberships(points, stack.affine, stack.shape, stack.thickness, stack.axis)
        i, j, k = vox.T
        valid = np.isfinite(stack.values[i, j, k])
        if stack.mask is not None:
            valid &= stack.mask[i, j, k]
        node, vox = node[valid], vox[valid]
        order, dims = _slice_major(stack)
        keys.append(key_offset + np.ravel_multi_index(tuple(vox[:, ax] for ax in order), dims))
        nodes.append(node)
        key_offset += int(np.prod(stack.shape))
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    member_node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)

    group_key, member_group = np.unique(key, return_inverse=True)
    member_group = member_group.astype(np.int64).ravel()
    order = np.argsort(member_group, kind="stable")
    member_node, member_group = member_node[order], member_group[order]

    starts = np.cumsum([0] + [int(np.prod(st.shape)) for st in stacks])
    group_stack = np.searchsorted(starts, group_key, side="right").astype(np.int64) - 1
    n_groups = len(group_key)
    group_voxel = np.zeros((n_groups, 3), dtype=np.int64)
    group_target = np.zeros(n_groups, dtype=np.float32)
    group_slice = np.zeros(n_groups, dtype=np.int64)
    for si, stack in enumerate(stacks):  # loop over stacks (a handful), not groups
        sel = group_stack == si
        order_ax, dims = _slice_major(stack)
        unr = np.unravel_index(group_key[sel] - starts[si], dims)
        for pos, ax in enumerate(order_ax):
            group_voxel[sel, ax] = unr[pos]
        gi, gj, gk = group_voxel[sel].T
        group_target[sel] = stack.values[gi, gj, gk]
        group_slice[sel] = group_voxel[sel, stack.axis]

    center, scale = normalisation(points)
    return TrainingData(
        points=points,
        member_node=member_node,
        member_group=member_group,
        group_target=group_target,
        group_count=np.bincount(member_group, minlength=n_groups).astype(np.int64),
        group_voxel=group_voxel,
        group_stack=group_stack,
        group_slice=group_slice,
        norm_center=center,
        norm_scale=scale,
        stack_names=np.array([st.name for st in stacks]),
        stack_affines=np.array([st.affine for st in stacks], dtype=np.float64).reshape(-1, 4, 4),
        stack_shapes=np.array([st.shape for st in stacks], dtype=np.int64).reshape(-1, 3),
        stack_thickness=np.array([st.thickness for st in stacks], dtype=np.float64),
        stack_axis=np.array([st.axis for st in stacks], dtype=np.int64),
        stack_mapping=np.array([json.dumps(st.mapping) for st in stacks]),
    )


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
        out.append({"stack": a, "shared_nodes": shared,
                    "mean_abs_difference": diff_sum / shared if shared else float("nan")})
    return out


def _format_mapping(mapping: dict) -> str:
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
            f"stack {si} ({name}): {int(sel.sum())} groups, thickness {data.stack_thickness[si]:g} mm; "
            f"groups per slice {{{per_slice}}}"
        )
        lines.append(f"  targets: {_format_mapping(json.loads(str(data.stack_mapping[si])))}")
    for row in stack_disagreement(data):
        lines.append(
            f"stack {row['stack']} vs the other stacks where prisms intersect: "
            f"mean |target difference| {row['mean_abs_difference']:.3f} over {row['shared_nodes']} node pairs"
        )
    return "\n".join(lines)
