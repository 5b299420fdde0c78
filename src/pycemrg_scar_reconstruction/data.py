"""Training data: groups (one per supervised pixel) and memberships (node, group).

Built from world-mm mesh points and :class:`~.stack.SliceStack` objects with the forward model
(:mod:`.forward`). File reading and writing live in :mod:`.io`, the arrays' kinds and the stack geometry's arrays in
:mod:`.data_layout`, the printed summary in :mod:`.data_summary`; this module only converts to and
from a dict of arrays (``to_arrays`` / ``from_arrays``), and ``from_arrays`` checks everything it
is given. In memory the stacks' geometry is one :class:`~.stack.StackGeometry` per stack.

Array layout (the ``.npz`` keys, format version 3)
--------------------------------------------------
====================  ==========  =====================================================
key                   shape       meaning
====================  ==========  =====================================================
format_version        ()          int: 3 (2: before per-slice offsets)
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
stack_slice_offsets   (K, 3)      float64 mm, per-slice offsets [di, dj, dn] of every stack's slices in
                                  stack order (K = total slices; zeros: no correction)
stack_mapping         (S,)        str, JSON: how raw values became targets (thresholds...)
measured_offsets      (K, 3)      optional float64 mm: each slice's offset as measured from its mask
                                  against the mesh, applied or not (``measure_offsets``); absent: not
                                  measured. Files without it read as before (same format version).
registration          ()          optional str, JSON: the study-to-mesh registration (``study_to_mesh``:
                                  the 4 x 4 matrix, world RAS mm of the study -> the mesh's frame;
                                  translation, rotation, whether applied, the shares of labelled pixels
                                  inside the mesh); when applied, ``stack_affines`` are in the mesh's frame
====================  ==========  =====================================================
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data_layout import _ARRAY_FIELDS, STACK_KEYS, stack_arrays, stacks_from_arrays, wrong_kind
from .errors import InputError
from .forward import group_keys, group_mean, group_memberships, key_voxel, prism_memberships, supervised, voxel_key
from .geometry import normalisation
from .stack import SliceStack, StackGeometry

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
#: In-plane RMS misregistration (mm) over which a measured but uncorrected one is reported (about a pixel).
MISREGISTRATION_WARN_MM = 1.5


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
    stacks: tuple[StackGeometry, ...]
    stack_names: np.ndarray
    stack_mapping: np.ndarray
    measured_offsets: np.ndarray | None = None
    registration: str | None = None

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

    @property
    def group_keys(self) -> np.ndarray:
        """(G, 4) int64: stack index and voxel (i, j, k) of every group."""
        return group_keys(self.group_stack, self.group_voxel)

    def supervised(self) -> np.ndarray:
        """(N,) bool: True where the node belongs to at least one group."""
        return supervised(self.n_nodes, self.member_node)

    def group_mean(self, node_values: np.ndarray) -> np.ndarray:
        """(G,) mean of a per-node quantity over each group's nodes."""
        return group_mean(node_values, self.member_node, self.member_group, self.n_groups)

    def per_stack(self, per_slice: np.ndarray) -> list[np.ndarray]:
        """A (K, ...) array over all slices in stack order, split into one array per stack."""
        return np.split(per_slice, np.cumsum([st.n_slices for st in self.stacks])[:-1])

    def misregistration(self) -> np.ndarray | None:
        """(K, 3) mm [di, dj, dn] per slice: the measured offsets less the applied ones, the breath-hold
        misregistration left in the memberships; None when the offsets were not measured."""
        if self.measured_offsets is None:
            return None
        return self.measured_offsets - stack_arrays(self.stacks)["stack_slice_offsets"]

    def misregistration_mm(self) -> float | None:
        """RMS (mm, over all slices) of the in-plane part of :meth:`misregistration`; None when not measured."""
        left = self.misregistration()
        return None if left is None else float(np.sqrt(np.mean(np.sum(left[:, :2] ** 2, axis=1))))

    def acquired_mean(self, node_values: np.ndarray) -> np.ndarray:
        """(G,) mean of a per-node quantity over the nodes each group's pixel held when it was acquired.

        That is the pixel's prism moved by the in-plane part of its slice's :meth:`misregistration`
        (0 where that prism holds no node); the same as :meth:`group_mean` when the offsets were not
        measured. The through-plane part is left out: its estimate scatters by 0.5-0.9 mm on
        registered cases, against 0.04-0.14 mm in plane (docs/benchmarks.md).
        """
        if self.measured_offsets is None:
            return self.group_mean(node_values)
        offsets = self.measured_offsets.copy()
        offsets[:, 2] = stack_arrays(self.stacks)["stack_slice_offsets"][:, 2]  # the applied through-plane part
        acquired = [st.with_offsets(o) for st, o in zip(self.stacks, self.per_stack(offsets))]
        node, group = group_memberships(self.points, acquired, self.group_keys)
        return np.nan_to_num(group_mean(node_values, node, group, self.n_groups))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The ``.npz`` dict, with ``format_version``."""
        out = {k: np.asarray(getattr(self, k)) for k in _ARRAY_FIELDS}
        out.update(stack_arrays(self.stacks))
        if self.measured_offsets is not None:
            out["measured_offsets"] = np.asarray(self.measured_offsets, np.float64)
        if self.registration is not None:
            out["registration"] = np.asarray(self.registration)
        out["format_version"] = np.asarray(FORMAT_VERSION)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], name: str = "<data>") -> TrainingData:
        """Check and wrap a dict of arrays (as read from ``.npz``).

        Raises
        ------
        InputError
            On a wrong version, missing keys, inconsistent shapes or out-of-range values.
        """
        fix = "re-create it with `scar-reconstruct prepare`"
        if "format_version" not in arrays:
            raise InputError(f"{name}: not a training-data file (no format_version); {fix}")
        raw_version = np.asarray(arrays["format_version"])
        if raw_version.shape != () or raw_version.dtype.kind not in "iu":
            raise InputError(f"{name}: format_version is not an integer; {fix}")
        version = int(raw_version)
        if version != FORMAT_VERSION:
            raise InputError(f"{name}: training-data format {version}, this version reads {FORMAT_VERSION}; {fix}")
        fields = [*_ARRAY_FIELDS, *STACK_KEYS]
        missing = [k for k in fields if k not in arrays]
        if missing:
            raise InputError(f"{name}: missing keys {', '.join(missing)}; {fix}")
        a: dict[str, Any] = {k: np.asarray(arrays[k]) for k in _ARRAY_FIELDS}
        problem = wrong_kind(a)
        if problem:
            raise InputError(f"{name}: {problem}; {fix}")
        if a["norm_scale"].shape != ():
            raise InputError(f"{name}: norm_scale has shape {a['norm_scale'].shape}, expected one number; {fix}")
        a["norm_scale"] = float(a["norm_scale"])
        try:
            stacks = stacks_from_arrays({k: np.asarray(arrays[k]) for k in STACK_KEYS})
        except (ValueError, TypeError) as exc:
            raise InputError(f"{name}: stack geometry: {exc}; {fix}") from exc
        measured = np.asarray(arrays["measured_offsets"]) if "measured_offsets" in arrays else None
        if measured is not None and measured.dtype.kind != "f":
            raise InputError(f"{name}: measured_offsets holds {measured.dtype} values, expected floats; {fix}")
        registration = None
        if "registration" in arrays:
            text = np.asarray(arrays["registration"])
            if text.shape != () or text.dtype.kind not in "US":
                raise InputError(f"{name}: registration is not one text (JSON); {fix}")
            registration = str(text)
        data = cls(**a, stacks=stacks, measured_offsets=measured, registration=registration)
        problem = data._problem()
        if problem:
            raise InputError(f"{name}: {problem}; {fix}")
        return data

    def _problem(self) -> str | None:
        """A description of the first inconsistency, or None when the data are consistent."""
        n, m, g = self.n_nodes, self.n_members, self.n_groups
        s = len(self.stacks)
        if len(self.stack_names) != s:
            return f"stack_names has {len(self.stack_names)} entries for {s} stacks"
        shapes = {
            "points": (n, 3),
            "member_node": (m,),
            "member_group": (m,),
            "group_target": (g,),
            "group_count": (g,),
            "group_voxel": (g, 3),
            "group_stack": (g,),
            "group_slice": (g,),
            "norm_center": (3,),
            "stack_mapping": (s,),
        }
        for key, shape in shapes.items():
            if getattr(self, key).shape != shape:
                return f"{key} has shape {getattr(self, key).shape}, expected {shape}"
        if g == 0:
            return "no groups"
        if not (np.all(np.isfinite(self.points)) and np.all(np.isfinite(self.norm_center))):
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
        if self.measured_offsets is not None:
            k = sum(st.n_slices for st in self.stacks)
            if self.measured_offsets.shape != (k, 3) or not np.all(np.isfinite(self.measured_offsets)):
                return f"measured_offsets must be ({k}, 3) finite mm, got shape {self.measured_offsets.shape}"
        return None


def build_training_data(points: np.ndarray, stacks: list[SliceStack], region: np.ndarray | None = None) -> TrainingData:
    """Map mesh nodes into every stack's pixel prisms and group them.

    Parameters
    ----------
    points : (N, 3) float64 world RAS mm.
    stacks : the slice stacks (targets already converted to [0, 1]).
    region : (N,) bool, the nodes that may be in groups (None: all); the others stay nodes of the
        data (so node indices match the mesh) but belong to no group.

    Returns
    -------
    TrainingData with groups ordered by (stack, slice, in-plane voxel) and memberships sorted by
    group. Voxels with no node, a NaN target or outside the stack's mask are not groups.
    """
    points = np.asarray(points, dtype=np.float64)
    keys, nodes = [], []
    key_offset = 0
    for stack in stacks:  # a handful of stacks
        node, vox = prism_memberships(points, stack.geometry)
        i, j, k = vox.T
        valid = np.isfinite(stack.values[i, j, k])
        if stack.mask is not None:
            valid &= stack.mask[i, j, k]
        if region is not None:
            valid &= region[node]
        node, vox = node[valid], vox[valid]
        keys.append(key_offset + voxel_key(vox, stack.geometry))
        nodes.append(node)
        key_offset += int(np.prod(stack.geometry.shape))
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    member_node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)

    group_key, member_group = np.unique(key, return_inverse=True)
    member_group = member_group.astype(np.int64).ravel()
    order = np.argsort(member_group, kind="stable")
    member_node, member_group = member_node[order], member_group[order]

    starts = np.cumsum([0] + [int(np.prod(st.geometry.shape)) for st in stacks])
    group_stack = np.searchsorted(starts, group_key, side="right").astype(np.int64) - 1
    n_groups = len(group_key)
    group_voxel = np.zeros((n_groups, 3), dtype=np.int64)
    group_target = np.zeros(n_groups, dtype=np.float32)
    for si, stack in enumerate(stacks):  # loop over stacks (a handful), not groups
        sel = group_stack == si
        group_voxel[sel] = key_voxel(group_key[sel] - starts[si], stack.geometry)
        gi, gj, gk = group_voxel[sel].T
        group_target[sel] = stack.values[gi, gj, gk]
    axes = np.array([st.geometry.axis for st in stacks], dtype=np.int64)
    group_slice = group_voxel[np.arange(n_groups), axes[group_stack]] if n_groups else np.zeros(0, np.int64)

    center, scale = normalisation(points)
    return TrainingData(
        points=points,
        member_node=member_node,
        member_group=member_group,
        group_target=group_target,
        group_count=np.bincount(member_group, minlength=n_groups).astype(np.int64),
        group_voxel=group_voxel,
        group_stack=group_stack,
        group_slice=group_slice.astype(np.int64),
        norm_center=center,
        norm_scale=scale,
        stacks=tuple(st.geometry for st in stacks),
        stack_names=np.array([st.name for st in stacks]),
        stack_mapping=np.array([json.dumps(st.mapping) for st in stacks]),
    )
