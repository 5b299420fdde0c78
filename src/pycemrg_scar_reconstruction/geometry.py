"""The forward model's geometry: which mesh nodes lie inside which pixel prism.

Conventions (``shared/design.md``):

* world coordinates are mm (RAS); ``affine`` maps a voxel index (i, j, k) to world and an integer
  index is the *centre* of a voxel;
* a node x has continuous index c = A^-1 x. In plane its pixel is round(c) (half-up, i.e.
  floor(c + 0.5)); through plane it lies in slice s's prism iff |c_k - s| * spacing_k <= thickness/2;
* grouping and target lookup use the same voxel index.

Every function here is pure and vectorised over nodes: no Python loop over nodes or pixels.
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


def index_to_world(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World mm of (N, 3) voxel indices (continuous or integer)."""
    affine = np.asarray(affine, dtype=np.float64)
    return np.asarray(index, dtype=np.float64) @ affine[:3, :3].T + affine[:3, 3]


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


def main_slice_normal(affines: np.ndarray, shapes: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(3,) unit slice normal of the stack with the most slices (the first of equals).

    Parameters
    ----------
    affines : (S, 4, 4) voxel-to-world affines; shapes : (S, 3) image shapes; axes : (S,) through-plane axes.
    """
    shapes, axes = np.asarray(shapes).reshape(-1, 3), np.asarray(axes).reshape(-1)
    main = int(np.argmax(shapes[np.arange(len(axes)), axes]))
    return slice_normal(np.asarray(affines)[main], int(axes[main]))


def prism_memberships(
    points: np.ndarray,
    affine: np.ndarray,
    shape: tuple[int, int, int],
    thickness: float,
    axis: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """All (node, voxel) pairs such that the node lies inside the voxel's prism.

    The prism of voxel v is its in-plane footprint extruded by ``thickness`` (not the slice
    spacing), centred on the slice plane. With thickness < spacing some nodes are in no prism
    (gaps); with thickness > spacing a node can be in the prisms of two (or more) slices.

    Parameters
    ----------
    points : (N, 3) world mm, in the same frame as the affine.
    affine : (4, 4) voxel -> world.
    shape : image shape (I, J, K).
    thickness : slice thickness in mm.
    axis : through-plane voxel axis.

    Returns
    -------
    node : (M,) int64 node indices, ascending.
    voxel : (M, 3) int64 voxel indices (i, j, k) of each membership.
    """
    shape_arr = np.asarray(shape, dtype=np.int64)
    c = world_to_index(points, affine)
    a, b = inplane_axes(axis)
    pix = np.floor(c[:, [a, b]] + 0.5).astype(np.int64)
    inside = (pix >= 0).all(axis=1) & (pix < shape_arr[[a, b]]).all(axis=1)

    spacing_k = voxel_spacing(affine)[axis]
    half = 0.5 * thickness / spacing_k  # half thickness in index units
    ck = c[:, axis]
    # Candidate slices bracket [c_k - half, c_k + half]; the exact test below decides.
    lo = np.maximum(np.floor(ck - half), 0)
    hi = np.minimum(np.ceil(ck + half), shape_arr[axis] - 1)
    count = np.where(inside & np.isfinite(ck), hi - lo + 1, 0).clip(min=0).astype(np.int64)
    node = np.repeat(np.arange(len(c), dtype=np.int64), count)
    starts = np.cumsum(count) - count
    offset = np.arange(len(node), dtype=np.int64) - np.repeat(starts, count)
    s = lo.astype(np.int64)[node] + offset
    keep = np.abs(ck[node] - s) * spacing_k <= 0.5 * thickness
    node, s = node[keep], s[keep]

    voxel = np.empty((len(node), 3), dtype=np.int64)
    voxel[:, a] = pix[node, 0]
    voxel[:, b] = pix[node, 1]
    voxel[:, axis] = s
    return node, voxel


def stack_corners(affine: np.ndarray, shape: tuple[int, int, int], thickness: float, axis: int = 2) -> np.ndarray:
    """(8, 3) world corners of the volume covered by the stack's prisms (pixel edges, slab faces)."""
    spacing_k = voxel_spacing(affine)[axis]
    lo = np.full(3, -0.5)
    hi = np.asarray(shape, dtype=np.float64) - 0.5
    lo[axis] = -0.5 * thickness / spacing_k
    hi[axis] = shape[axis] - 1 + 0.5 * thickness / spacing_k
    grid = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T
    return index_to_world(grid, affine)


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


def inside_stack_volume(
    points: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int], thickness: float, axis: int = 2
) -> np.ndarray:
    """(N,) bool: the node lies within the box spanned by the stack's prisms (gaps included)."""
    c = world_to_index(points, affine)
    half = 0.5 * thickness / voxel_spacing(affine)[axis]
    lo = np.full(3, -0.5)
    hi = np.asarray(shape, dtype=np.float64) - 0.5
    lo[axis], hi[axis] = -half, shape[axis] - 1 + half
    return np.all((c >= lo) & (c <= hi), axis=1)
