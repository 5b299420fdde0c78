"""The training data's array layout: the kind of every array and the stacks' geometry as arrays.

The layout itself (keys, shapes, meaning) is documented in :mod:`.data`; the checkpoint stores
the stacks' geometry with the same arrays (:data:`STACK_KEYS`).
"""

from __future__ import annotations

import numpy as np

from .stack import StackGeometry

#: The array keys of the ``.npz`` besides the stack geometry (:data:`STACK_KEYS`) and the version.
_ARRAY_FIELDS = (
    "points",
    "member_node",
    "member_group",
    "group_target",
    "group_count",
    "group_voxel",
    "group_stack",
    "group_slice",
    "norm_center",
    "norm_scale",
    "stack_names",
    "stack_mapping",
)
#: The ``.npz`` keys of the stacks' geometry, one entry per stack.
STACK_KEYS = ("stack_affines", "stack_shapes", "stack_thickness", "stack_axis", "stack_slice_offsets")


def stack_arrays(stacks: tuple[StackGeometry, ...] | list[StackGeometry]) -> dict[str, np.ndarray]:
    """The stacks' geometry as the arrays of :data:`STACK_KEYS` (also the checkpoint's layout)."""
    return {
        "stack_affines": np.array([g.affine for g in stacks], dtype=np.float64).reshape(-1, 4, 4),
        "stack_shapes": np.array([g.shape for g in stacks], dtype=np.int64).reshape(-1, 3),
        "stack_thickness": np.array([g.thickness for g in stacks], dtype=np.float64),
        "stack_axis": np.array([g.axis for g in stacks], dtype=np.int64),
        "stack_slice_offsets": np.concatenate(
            [g.slice_offsets if g.slice_offsets is not None else np.zeros((g.n_slices, 3)) for g in stacks]
        ).reshape(-1, 3),
    }


#: The kind of every array of the file (numpy dtype kinds: f float, i/u integer, U/S text).
_KINDS = {
    "points": "f",
    "member_node": "iu",
    "member_group": "iu",
    "group_target": "f",
    "group_count": "iu",
    "group_voxel": "iu",
    "group_stack": "iu",
    "group_slice": "iu",
    "norm_center": "f",
    "norm_scale": "f",
    "stack_names": "US",
    "stack_mapping": "US",
    "stack_affines": "f",
    "stack_shapes": "iu",
    "stack_thickness": "f",
    "stack_axis": "iu",
    "stack_slice_offsets": "f",
}


def wrong_kind(arrays: dict[str, np.ndarray]) -> str | None:
    """The first array whose dtype is not what the layout says (e.g. text points), or None."""
    for key, kinds in _KINDS.items():
        if key in arrays and np.asarray(arrays[key]).dtype.kind not in kinds:
            names = {"f": "floats", "i": "integers", "u": "integers", "U": "text", "S": "text"}
            return f"{key} holds {np.asarray(arrays[key]).dtype} values, expected {names[kinds[0]]}"
    return None


def stacks_from_arrays(arrays: dict[str, np.ndarray]) -> tuple[StackGeometry, ...]:
    """Inverse of :func:`stack_arrays` (raises ValueError on inconsistent or impossible arrays)."""
    problem = wrong_kind(arrays)
    if problem:
        raise ValueError(problem)
    affines = np.asarray(arrays["stack_affines"], dtype=np.float64)
    shapes, thickness, axis = (np.asarray(arrays[k]) for k in ("stack_shapes", "stack_thickness", "stack_axis"))
    n = len(affines)
    if affines.shape != (n, 4, 4) or shapes.shape != (n, 3) or thickness.shape != (n,) or axis.shape != (n,):
        raise ValueError(
            f"stack arrays disagree: affines {affines.shape}, shapes {shapes.shape}, "
            f"thickness {thickness.shape}, axis {axis.shape}"
        )
    offsets = np.asarray(arrays["stack_slice_offsets"], dtype=np.float64)
    counts = [int(shapes[s, int(axis[s])]) for s in range(n)] if n and np.all(np.isin(axis, (0, 1, 2))) else []
    if offsets.shape != (sum(counts), 3):
        raise ValueError(f"stack_slice_offsets has shape {offsets.shape}, expected ({sum(counts)}, 3)")
    per_stack = np.split(offsets, np.cumsum(counts)[:-1]) if counts else []
    if not (np.all(np.isfinite(affines)) and np.all(np.isfinite(thickness)) and np.all(np.isfinite(offsets))):
        raise ValueError("non-finite stack affine, thickness or offsets")
    if np.any(shapes < 1) or np.any(thickness <= 0) or not np.all(np.isin(axis, (0, 1, 2))):
        raise ValueError("stack shapes must be positive, thicknesses positive and axes 0, 1 or 2")
    if n and np.min(np.abs(np.linalg.det(affines[:, :3, :3]))) < 1e-9:
        raise ValueError("a stack affine is singular")
    return tuple(
        StackGeometry(
            affines[s],
            (int(shapes[s, 0]), int(shapes[s, 1]), int(shapes[s, 2])),
            float(thickness[s]),
            int(axis[s]),
            per_stack[s],
        )
        for s in range(n)
    )
