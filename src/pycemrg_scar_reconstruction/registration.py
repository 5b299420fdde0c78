"""Study registration: one rigid transform that takes the LGE study's world frame onto the mesh.

A modeller's mesh comes from another acquisition, so the whole LGE study (every stack: they share
the scanner frame) may sit millimetres and degrees off it. The transform ``T`` (4 x 4, world RAS mm
of the study -> the mesh's frame; points map as ``T @ [x, y, z, 1]``) is found by laying the
myocardium masks of every stack at once onto the mesh's myocardium:

* the mesh's myocardium becomes an occupancy field on a regular grid (a point in a mesh cell is 1),
  blurred with a Gaussian so that the objective is smooth (coarse to fine: 3 mm, then 1 mm);
* each masked slice is sampled at its pixel centres at five heights through the slab, within a
  margin around its mask (mask value 1 on the myocardium, 0 around it); the field averaged over
  the heights is each pixel's wall fraction, and the mesh's footprint is the pixels above the one
  level of wall fraction that gives it the masks' area (found at no motion, so that a generous or
  a tight mask is matched alike: the alignment module does the same per slice);
* the objective is the Dice of the masks with the soft footprint at ``T x``, less a small pull
  towards no motion (:data:`PRIOR_WEIGHT`); its six parameters (translation mm, rotation vector in
  degrees about the masks' centre) are found by L-BFGS-B within bounds (scipy.optimize), starting
  from no motion, with the objective's exact gradient: the field is interpolated trilinearly, whose
  derivative is known in closed form, and a rotation vector's derivative is the left Jacobian of
  SO(3).

Per-slice breath-hold offsets (:mod:`.alignment`) are residuals on top of it. The stage that uses
it is ``api.prepare``'s ``register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.spatial.transform import Rotation

from .errors import InputError
from .geometry import apply_affine, index_to_world
from .stack import StackGeometry

#: Grid spacing of the mesh's occupancy field, mm.
FIELD_SPACING_MM = 1.5
#: The search's stages, coarse to fine: (blur of the field mm, every how many'th pixel sampled),
#: each starting where the last one ended. Half the samples of round 3's first search (3 mm, 1 mm,
#: 1 mm again, all pixels at 1 mm) for the same accuracy (``benchmarks/registration.py
#: --transform-only``; docs/benchmarks.md).
SEARCH: tuple[tuple[float, int], ...] = ((3.0, 3), (1.0, 2))
#: L-BFGS-B's stopping tolerances (relative change of the cost; largest projected gradient).
FTOL, GTOL = 1e-9, 1e-6
#: Around each slice's mask, the pixels within this distance (mm) are sampled as "not myocardium".
MARGIN_MM = 10.0
#: Search bounds: translation (mm, per axis) and rotation (degrees, per axis of the rotation vector).
MAX_MM, MAX_DEG = 20.0, 20.0
#: The pull towards no motion, per (10 mm)^2 of translation and (10 degrees)^2 of rotation, in
#: units of soft Dice: it keeps the estimate still where the masks cannot tell (a rotation about the
#: long axis of a nearly symmetric ventricle), and is small beside what a real misregistration gains.
PRIOR_WEIGHT = 0.002
#: Heights through the slab at which each pixel is sampled (fractions of the slice thickness).
HEIGHTS = (-0.4, -0.2, 0.0, 0.2, 0.4)
#: Width of the soft footprint's logistic, in wall fraction.
FOOTPRINT_WIDTH = 0.05
#: A mask covering more than this share of its slices is not a myocardium mask.
MAX_MASK_SHARE = 0.4


@dataclass(frozen=True)
class Occupancy:
    """The mesh's myocardium on a regular grid of :data:`FIELD_SPACING_MM` (1 in a cell, else 0).

    Attributes
    ----------
    values : (X, Y, Z) float32.
    origin : (3,) mm, world position of ``values[0, 0, 0]``.
    """

    values: np.ndarray
    origin: np.ndarray

    def fraction(self, points: np.ndarray) -> np.ndarray:
        """(P,) the field at world mm ``points`` (P, 3), linearly interpolated (0 outside the grid):
        a wall fraction, usable where an ``inside`` test is averaged (``alignment.estimate_offsets``)."""
        coords = ((np.asarray(points, np.float64) - self.origin) / FIELD_SPACING_MM).T
        return map_coordinates(self.values, coords, order=1, mode="constant", cval=0.0)


@dataclass(frozen=True)
class Registration:
    """A study-to-mesh transform and how well the masks lie on the mesh before and after it.

    Attributes
    ----------
    matrix : (4, 4) float64, world RAS mm of the study -> the mesh's frame.
    centre : (3,) mm, the masks' centre (the rotation is about it).
    dice_before, dice_after : soft Dice of the masks with the mesh's myocardium, without and with it.
    field : the mesh's myocardium where the masks can reach, as the search sampled it.
    """

    matrix: np.ndarray
    centre: np.ndarray
    dice_before: float
    dice_after: float
    field: Occupancy

    @property
    def translation_mm(self) -> np.ndarray:
        """(3,) how far the masks' centre moves, mm."""
        return apply_affine(self.matrix, self.centre[None])[0] - self.centre

    @property
    def rotation_deg(self) -> float:
        """The rotation angle, degrees."""
        return float(np.degrees(Rotation.from_matrix(self.matrix[:3, :3]).magnitude()))

    def moved_mm(self, points: np.ndarray) -> float:
        """RMS displacement (mm) of ``points`` (N, 3) under the transform: its size where it matters."""
        moved = apply_affine(self.matrix, points) - points
        return float(np.sqrt(np.mean(np.sum(moved**2, axis=1))))


def trilinear(padded: np.ndarray, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The trilinear interpolant of a field at ``coords`` (3, N) in the field's index units, and its
    exact gradient: ((N,) values, (3, N) derivatives per index unit), float32.

    ``padded`` is the (X, Y, Z) float32 field with a ring of zeros around it (``np.pad(field, 1)``):
    the field falls linearly to 0 over the cell beyond its grid (``map_coordinates(order=1,
    mode="grid-constant")``; the search's field is 0 near its border anyway).
    """
    shape = np.array(padded.shape)
    c = np.clip(coords + 1.0, 0.0, (shape - 1 - 1e-4)[:, None]).astype(np.float32)
    lo = np.minimum(c.astype(np.int64), (shape - 2)[:, None])
    w1 = c - lo
    w0 = 1.0 - w1
    flat = padded.ravel()
    base = (lo[0] * shape[1] + lo[1]) * shape[2] + lo[2]
    value = np.zeros(c.shape[1], np.float32)
    grad = np.zeros_like(c)
    for dx in (0, 1):
        wx, sx = (w1[0], 1.0) if dx else (w0[0], -1.0)
        for dy in (0, 1):
            wy, sy = (w1[1], 1.0) if dy else (w0[1], -1.0)
            for dz in (0, 1):
                wz, sz = (w1[2], 1.0) if dz else (w0[2], -1.0)
                v = flat[base + (dx * shape[1] + dy) * shape[2] + dz]
                wyz = wy * wz
                value += v * wx * wyz
                grad[0] += sx * v * wyz
                grad[1] += (sy * v) * wx * wz
                grad[2] += (sz * v) * wx * wy
    return value, grad


def left_jacobian(rotvec: np.ndarray) -> np.ndarray:
    """(3, 3) left Jacobian of SO(3) at ``rotvec`` (radians): R(w + d) x = R(w) x + (J d) x R(w) x
    to first order in d."""
    theta = float(np.linalg.norm(rotvec))
    k = np.array([[0.0, -rotvec[2], rotvec[1]], [rotvec[2], 0.0, -rotvec[0]], [-rotvec[1], rotvec[0], 0.0]])
    if theta < 1e-6:
        return np.eye(3) + 0.5 * k
    return np.eye(3) + (1 - np.cos(theta)) / theta**2 * k + (theta - np.sin(theta)) / theta**3 * (k @ k)


def rigid_matrix(params: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """4 x 4 transform of ``params`` = (tx, ty, tz mm, rx, ry, rz degrees, a rotation vector) about
    ``centre``: x -> R (x - c) + c + t."""
    rot = Rotation.from_rotvec(np.radians(params[3:6])).as_matrix()
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = centre - rot @ centre + params[:3]
    return out


def moved_geometry(geometry: StackGeometry, matrix: np.ndarray) -> StackGeometry:
    """The stack's geometry in the mesh's frame: its affine followed by ``matrix`` (per-slice
    offsets, given along the image's own axes, move with it)."""
    return StackGeometry(matrix @ geometry.affine, geometry.shape, geometry.thickness, geometry.axis, geometry.slice_offsets)


def occupancy(inside: Callable[[np.ndarray], np.ndarray], box: tuple[np.ndarray, np.ndarray], margin_mm: float) -> Occupancy:
    """The mesh's myocardium on a grid of :data:`FIELD_SPACING_MM` over ``box`` grown by ``margin_mm``."""
    lo, hi = np.asarray(box[0]) - margin_mm, np.asarray(box[1]) + margin_mm
    shape = np.maximum(np.ceil((hi - lo) / FIELD_SPACING_MM).astype(int) + 1, 1)
    axes = [lo[d] + FIELD_SPACING_MM * np.arange(shape[d]) for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return Occupancy(inside(grid).reshape(tuple(shape)).astype(np.float32), lo)


def slab_points(geometry: StackGeometry, k: int, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """(H, n, 3) world mm of in-plane pixels (``ii``, ``jj``) of slice ``k`` at :data:`HEIGHTS`
    through its slab. A mesh point x appears in slice k at x + d_k, so the pixel shows the mesh at
    p - d_k (the slice's offset is taken off)."""
    a, b = geometry.inplane
    idx = np.zeros((len(HEIGHTS), len(ii), 3))
    idx[..., a], idx[..., b] = ii, jj
    idx[..., geometry.axis] = k + np.asarray(HEIGHTS)[:, None] * geometry.thickness / geometry.spacing[geometry.axis]
    return index_to_world(idx.reshape(-1, 3), geometry.affine).reshape(idx.shape) - geometry.world_offsets()[k]


def mask_samples(
    geometries: list[StackGeometry], masks: list[np.ndarray], names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """World points (H, P, 3) and mask values (P,) of every masked slice: pixel centres within
    :data:`MARGIN_MM` of the slice's mask, at :data:`HEIGHTS` through the slab."""
    from scipy.ndimage import distance_transform_edt

    points, values = [], []
    for g, mask, name in zip(geometries, masks, names):
        moved = np.moveaxis(mask, g.axis, -1)
        a, b = g.inplane
        share = moved.sum(axis=(0, 1)) / (moved.shape[0] * moved.shape[1])
        if np.any(share > MAX_MASK_SHARE):
            raise InputError(
                f"{name}: the mask covers {100 * share.max():.0f}% of a slice, which is no myocardium mask; "
                "give the myocardium mask (or `myocardium_labels`) to register the study"
            )
        spacing = g.spacing[[a, b]]
        for k in np.flatnonzero(moved.any(axis=(0, 1))):  # the masked slices (a few dozen)
            near = distance_transform_edt(~moved[..., k], sampling=spacing) <= MARGIN_MM
            ii, jj = np.nonzero(near)
            points.append(slab_points(g, int(k), ii, jj))
            values.append(moved[ii, jj, k].astype(np.float64))
    if not points:
        raise InputError(f"{', '.join(names)}: no mask has a myocardium pixel; the study cannot be registered")
    return np.concatenate(points, axis=1), np.concatenate(values)


def _footprint(wall: np.ndarray, level: float) -> np.ndarray:
    """The pixels the mesh would be drawn on at ``level`` of wall fraction, softly (a logistic)."""
    return 1.0 / (1.0 + np.exp(-(wall - level) / FOOTPRINT_WIDTH))


def matched_level(wall: np.ndarray, values: np.ndarray) -> float:
    """The wall fraction at which the mesh's footprint has the masks' area: a mask drawn generously
    (any myocardium in the slab) or tightly (the middle of the wall) is then matched alike."""
    n = int(round(values.sum()))
    order = np.sort(wall)[::-1]
    return float(np.clip(order[min(max(n - 1, 0), len(order) - 1)], 0.02, 0.98))


class _Objective:
    """The search's cost at one blur: minus the soft Dice of the masks with the mesh's footprint
    at ``rigid_matrix(p, centre)``, plus the pull towards no motion; with its gradient
    (:meth:`value_grad`).

    Evaluated on (3, H x P) float32 arrays (the samples relative to the centre are fixed; a
    parameter vector only changes a 3 x 3 rotation and an offset), a few times cheaper than moving
    (H, P, 3) world points in float64 at each of the search's calls.
    """

    def __init__(self, smooth: np.ndarray, origin: np.ndarray, points: np.ndarray, values: np.ndarray, centre: np.ndarray):
        self.smooth = np.asarray(smooth, dtype=np.float32)
        self.padded = np.pad(self.smooth, 1)  # for trilinear
        self.origin, self.centre = origin, centre
        self.heights = points.shape[0]
        self.relative = np.ascontiguousarray((points.reshape(-1, 3) - centre).T, dtype=np.float32)  # (3, H x P)
        self.values = values.astype(np.float32)
        self.total = float(values.sum())
        self.level = matched_level(self.wall(np.zeros(6)), values)

    def wall(self, p: np.ndarray) -> np.ndarray:
        """(P,) wall fraction over each pixel's slab, the samples moved by ``p``."""
        matrix = rigid_matrix(p, self.centre)
        rot = (matrix[:3, :3] / FIELD_SPACING_MM).astype(np.float32)
        # x -> R x + t with x = centre + relative: index = (R relative + R centre + t - origin) / spacing
        shift = (matrix[:3, :3] @ self.centre + matrix[:3, 3] - self.origin) / FIELD_SPACING_MM
        coords = rot @ self.relative
        coords += shift.astype(np.float32)[:, None]
        w = map_coordinates(self.smooth, coords, order=1, mode="constant", cval=0.0)
        return w.reshape(self.heights, -1).mean(axis=0)

    def dice(self, p: np.ndarray) -> float:
        """Soft Dice of the masks with the mesh's footprint, the samples moved by ``p``."""
        footprint = _footprint(self.wall(p), self.level)
        return 2.0 * float(np.dot(self.values, footprint)) / (self.total + float(footprint.sum()) + 1e-9)

    def __call__(self, p: np.ndarray) -> float:
        return -self.dice(p) + PRIOR_WEIGHT * float(np.sum((p / 10.0) ** 2))

    def value_grad(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        """The cost at ``p`` and its (6,) gradient (per mm, per degree), exact for the trilinear field."""
        rot = rigid_matrix(p, self.centre)[:3, :3]
        moved = rot.astype(np.float32) @ self.relative  # (3, H x P) mm about the centre
        coords = moved + (self.centre + p[:3] - self.origin).astype(np.float32)[:, None]
        value, grad = trilinear(self.padded, coords / FIELD_SPACING_MM)
        wall = value.reshape(self.heights, -1).mean(axis=0)
        footprint = _footprint(wall, self.level)
        denominator = self.total + float(footprint.sum()) + 1e-9
        numerator = 2.0 * float(np.dot(self.values, footprint))
        # d Dice / d wall per pixel, then per sample (each pixel is the mean of its heights), per mm
        d_wall = (
            (2.0 * self.values * denominator - numerator) / denominator**2 * footprint * (1 - footprint) / FOOTPRINT_WIDTH
        )
        d_x = grad * (np.tile(d_wall, self.heights) / (self.heights * FIELD_SPACING_MM)).astype(np.float32)[None]
        d_translation = d_x.sum(axis=1, dtype=np.float64)
        # R(w + d) x moves by (J d) x (R x): d Dice / d w = J^T sum (R x) x (d Dice / d x)
        torque = np.cross(moved.T, d_x.T).sum(axis=0, dtype=np.float64)
        d_rotation = left_jacobian(np.radians(p[3:6])).T @ torque * (np.pi / 180.0)
        cost = -numerator / denominator + PRIOR_WEIGHT * float(np.sum((p / 10.0) ** 2))
        return cost, -np.concatenate([d_translation, d_rotation]) + 2 * PRIOR_WEIGHT * p / 100.0


def estimate_study_transform(
    inside: Callable[[np.ndarray], np.ndarray],
    box: tuple[np.ndarray, np.ndarray],
    geometries: list[StackGeometry],
    masks: list[np.ndarray],
    names: list[str],
) -> Registration:
    """The rigid transform that best lays the masks of every stack onto the mesh's myocardium.

    Parameters
    ----------
    inside : the mesh's myocardium test, world mm -> bool (``io.meshes.myocardium_test``).
    box : (lo, hi) mm, the mesh's bounding box.
    geometries, masks, names : the stacks with a myocardium mask ((I, J, K) bool each).
    """
    from scipy.optimize import minimize  # here: a fifth of a second of every command's start otherwise

    points, values = mask_samples(geometries, masks, names)
    blur_max = max(blur for blur, _ in SEARCH)
    centre = points[len(HEIGHTS) // 2][values > 0.5].mean(axis=0)
    # the field where the samples can reach (mesh parts far from every stack do not matter)
    reach = MAX_MM + np.radians(MAX_DEG) * float(np.max(np.linalg.norm(points - centre, axis=-1))) + 2 * blur_max
    near = (np.maximum(box[0], points.min(axis=(0, 1)) - reach), np.minimum(box[1], points.max(axis=(0, 1)) + reach))
    mesh_field = occupancy(inside, near, 2 * blur_max)  # beyond the box the field is 0 anyway
    field, origin = mesh_field.values, mesh_field.origin
    params = np.zeros(6)
    bounds = [(-MAX_MM, MAX_MM)] * 3 + [(-MAX_DEG, MAX_DEG)] * 3
    for blur, every in SEARCH:
        smooth = gaussian_filter(field, blur / FIELD_SPACING_MM)
        cost = _Objective(smooth, origin, points[:, ::every], values[::every], centre)
        found = minimize(
            cost.value_grad, params, jac=True, method="L-BFGS-B", bounds=bounds, options={"ftol": FTOL, "gtol": GTOL}
        )
        params = found.x
    # scored at the last stage's blur (``smooth``) with every pixel
    score = _Objective(smooth, origin, points, values, centre)
    return Registration(rigid_matrix(params, centre), centre, score.dice(np.zeros(6)), score.dice(params), mesh_field)


def mask_centres(geometry: StackGeometry, mask: np.ndarray) -> np.ndarray:
    """(P, 3) world mm centres of the mask's pixels (per-slice offsets applied)."""
    idx = np.argwhere(mask)
    return index_to_world(idx.astype(np.float64), geometry.affine) - geometry.world_offsets()[idx[:, geometry.axis]]


def inside_share(
    inside: Callable[[np.ndarray], np.ndarray], geometry: StackGeometry, pixels: np.ndarray, matrix: np.ndarray | None = None
) -> float:
    """Share of the ``pixels`` ((I, J, K) bool) whose centres lie in the mesh's myocardium (moved
    by ``matrix`` into the mesh's frame when given); NaN without pixels."""
    if not pixels.any():
        return float("nan")
    centres = mask_centres(geometry, pixels)
    if matrix is not None:
        centres = apply_affine(matrix, centres)
    return float(np.mean(inside(centres)))


def transform_error(found: np.ndarray, truth: np.ndarray, points: np.ndarray) -> tuple[float, float]:
    """How far transform ``found`` is from ``truth`` (4 x 4 each): (mm RMS at ``points`` (N, 3), degrees)."""
    mm = float(np.sqrt(np.mean(np.sum((apply_affine(found, points) - apply_affine(truth, points)) ** 2, axis=1))))
    cos = (np.trace(found[:3, :3].T @ truth[:3, :3]) - 1) / 2
    return mm, float(np.degrees(np.arccos(np.clip(cos, -1, 1))))


def slice_walls(
    inside: Callable[[np.ndarray], np.ndarray],
    geometry: StackGeometry,
    mask: np.ndarray,
    matrix: np.ndarray,
    margin_px: int = 6,
) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per masked slice, around its mask: (slice k, the mask, the mesh's wall fraction over the slab
    before and after ``matrix``), each (a, b) crops, for the picture of the registration."""
    moved = np.moveaxis(mask, geometry.axis, -1)
    out = []
    for k in np.flatnonzero(moved.any(axis=(0, 1))):  # a few dozen slices
        ii, jj = np.nonzero(moved[..., k])
        lo = np.maximum([ii.min() - margin_px, jj.min() - margin_px], 0)
        hi = np.minimum([ii.max() + margin_px + 1, jj.max() + margin_px + 1], moved.shape[:2])
        gi, gj = np.meshgrid(np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), indexing="ij")
        points = slab_points(geometry, int(k), gi.ravel(), gj.ravel()).reshape(-1, 3)
        walls = [
            inside(p).reshape(len(HEIGHTS), -1).mean(axis=0).reshape(gi.shape)
            for p in (points, apply_affine(matrix, points))
        ]
        out.append((int(k), moved[lo[0] : hi[0], lo[1] : hi[1], k], walls[0], walls[1]))
    return out
