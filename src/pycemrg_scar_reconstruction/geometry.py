"""Coordinates: mesh frames and units, voxel index <-> world, slice normals, normalisation.

Conventions (``shared/design.md``):

* world coordinates are mm (RAS); ``affine`` maps a voxel index (i, j, k) to world and an integer
  index is the *centre* of a voxel;
* a node x has continuous index c = A^-1 x; in plane its pixel is :func:`round_half_up` (c).

Which nodes lie in which prism is :mod:`.forward`; a stack's geometry is :class:`.stack.StackGeometry`.
Every function here is pure and vectorised over points: no Python loop over nodes or pixels.
"""

from __future__ import annotations

import numpy as np

#: Mesh frames and the sign flip that takes each to RAS (the NIfTI world frame).
FRAME_TO_RAS = {"ras": np.array([1.0, 1.0, 1.0]), "lps": np.array([-1.0, -1.0, 1.0])}
#: Mesh units and the factor that takes each to mm.
UNIT_TO_MM = {"mm": 1.0, "um": 1e-3, "m": 1e3}


def to_world_mm(points: np.ndarray, frame: str = "ras", units: str = "mm") -> np.ndarray:
    """Convert mesh points to world RAS millimetres.

    Parameters
    ----------
    points : (N, 3) array in the mesh's own frame and units.
    frame : "ras" or "lps".
    units : "mm", "um" or "m".

    Returns
    -------
    (N, 3) float64 world coordinates, RAS, mm.
    """
    return np.asarray(points, dtype=np.float64) * (FRAME_TO_RAS[frame] * UNIT_TO_MM[units])


def world_to_index(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel index c = A^-1 x of world points.

    Parameters
    ----------
    points : (N, 3) world mm.
    affine : (4, 4) voxel -> world.

    Returns
    -------
    (N, 3) float64 continuous indices (integers are voxel centres).
    """
    inv = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    return np.asarray(points, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) points through a 4 x 4 affine ``matrix``: ``matrix @ [x, y, z, 1]``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def index_to_world(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World mm of (N, 3) voxel indices (continuous or integer)."""
    return apply_affine(affine, index)


def voxel_spacing(affine: np.ndarray) -> np.ndarray:
    """(3,) mm spacing along each voxel axis: the column norms of the affine."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def inplane_axes(axis: int) -> tuple[int, int]:
    """The two in-plane voxel axes for through-plane ``axis``, in ascending order."""
    a, b = (ax for ax in range(3) if ax != axis)
    return a, b


def slice_normal(affine: np.ndarray, axis: int = 2) -> np.ndarray:
    """(3,) unit world normal of the slice planes (perpendicular to both in-plane axes).

    Not the through-plane column of the affine, which a sheared acquisition tilts off the normal.
    """
    a, b = inplane_axes(axis)
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    n = np.cross(m[:, a], m[:, b])
    return n / np.linalg.norm(n)


def round_half_up(c: np.ndarray) -> np.ndarray:
    """Integer voxel index of continuous indices: floor(c + 0.5), the one rounding of the package.

    An integer index is a voxel centre, so a point belongs to the voxel whose centre is nearest
    (ties go up, the same on both sides of zero).
    """
    return np.floor(np.asarray(c) + 0.5).astype(np.int64)


def bounding_box(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) corners, each (3,), of a point set."""
    return points.min(axis=0), points.max(axis=0)


def normalisation(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Isotropic normalisation of the whole mesh: one centre, one scale for all three axes.

    Returns
    -------
    center : (3,) mm, the bounding-box centre.
    scale : float mm, half the largest bounding-box extent, so normalised coordinates lie in [-1, 1].
    """
    lo, hi = bounding_box(points)
    scale = float(np.max(hi - lo) / 2.0)
    return (lo + hi) / 2.0, scale if scale > 0 else 1.0


def normalise(points: np.ndarray, center: np.ndarray, scale: float) -> np.ndarray:
    """(N, 3) normalised coordinates (x - center) / scale."""
    return (np.asarray(points, dtype=np.float64) - center) / scale
