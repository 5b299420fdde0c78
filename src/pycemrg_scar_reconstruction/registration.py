"""Study registration: one rigid transform that takes the LGE study's world frame onto the mesh.

A modeller's mesh comes from another acquisition, so the whole LGE study (every stack: they share
the scanner frame) may sit millimetres and degrees off it. The transform ``T`` (4 x 4, world RAS mm
of the study -> the mesh's frame; points map as ``T @ [x, y, z, 1]``) is found by laying the
myocardium masks of every stack at once onto the mesh's myocardium:

the Dice of the masks with the mesh's footprint (:mod:`.registration_cost`, with its exact
gradient) is maximised by L-BFGS-B within bounds (scipy.optimize) over the transform's six
parameters (translation mm, rotation vector in degrees about the masks' centre), starting from no
motion, on the mesh's occupancy field blurred coarse to fine (3 mm, then 1 mm).

When masks of another orientation (long-axis views) anchor the study, the search is run again from
the study's transform with the slices of the stack with the most masked slices (the short axis)
moving in their own plane, each on its own (their breath-hold offsets, bounded by
:data:`SLICE_MAX_MM`, pulled towards 0 like the translation), and kept if that fits the masks
clearly better (:data:`FREE_SLICES_MIN_GAIN`): with breath-hold shifts a search of the whole study
reads the offsets' mean and linear trend over the stack as a motion of the study (a tilt moves each
slice in plane in proportion to its height); without them, free slices only let the views' thick
slabs place the study, less exactly. Without another orientation nothing can tell the offsets from
the study's motion and the slices stay fixed. Only the rigid
transform is kept; per-slice breath-hold offsets (:mod:`.alignment`) are residuals on top of it.
The stage that uses it is ``api.prepare``'s ``register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.spatial.transform import Rotation

from .geometry import apply_affine, index_to_world
from .registration_cost import FIELD_SPACING_MM, HEIGHTS, SearchCost, mask_samples, rigid_matrix, slab_points
from .stack import StackGeometry

#: The search's stages, coarse to fine: (blur of the field mm, every how many'th pixel sampled),
#: each starting where the last one ended. Half the samples of round 3's first search (3 mm, 1 mm,
#: 1 mm again, all pixels at 1 mm) for the same accuracy (``benchmarks/registration.py
#: --transform-only``; docs/benchmarks.md).
SEARCH: tuple[tuple[float, int], ...] = ((3.0, 3), (1.0, 2))
#: L-BFGS-B's stopping tolerances (relative change of the cost; largest projected gradient).
FTOL, GTOL = 1e-9, 1e-6
#: Search bounds: translation (mm, per axis) and rotation (degrees, per axis of the rotation vector).
MAX_MM, MAX_DEG = 20.0, 20.0
#: Bound of each main-stack slice's own in-plane offset in that search, mm per in-plane axis.
SLICE_MAX_MM = 10.0
#: When views anchor the study, its slices' own offsets in the search are kept only if they raise
#: the soft Dice by this much over the study moved as one: on synthetic studies without breath-hold
#: shifts they gain at most 0.0002 (and, free, cost accuracy: the views' thick slabs then place the
#: study in plane), with shifts of sd 2 mm 0.04-0.09 (docs/decisions.md).
FREE_SLICES_MIN_GAIN = 0.005
#: The turn about the main stack's slice normal by which :attr:`Registration.turn_dice_drop` is measured, degrees.
TURN_DEG = 5.0
#: Below this drop the masks barely fix that turn (measured: 0.023 on the real human case, at most
#: 0.0031 on 40 synthetic studies, whose ventricle is nearly round; docs/benchmarks.md).
TURN_WEAK_DROP = 0.005


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
    turn_dice_drop : how much the soft Dice drops when the transform is turned by :data:`TURN_DEG`
        about the main stack's slice normal (the smaller drop of the two directions; with the main
        stack's slices' own offsets of the search in place, when views anchor it): how firmly the
        masks fix that turn (a ventricle alone is nearly round about its long axis); below
        :data:`TURN_WEAK_DROP` the turn found is the search's pull towards no motion more than the masks'.
    free_slices : whether the main stack's slices moved on their own in the search (views anchor the
        study and that fit the masks by :data:`FREE_SLICES_MIN_GAIN` better than the study moved as one).
    """

    matrix: np.ndarray
    centre: np.ndarray
    dice_before: float
    dice_after: float
    field: Occupancy
    turn_dice_drop: float = float("nan")
    free_slices: bool = False

    @property
    def translation_mm(self) -> np.ndarray:
        """(3,) how far the masks' centre moves, mm."""
        return apply_affine(self.matrix, self.centre[None])[0] - self.centre

    @property
    def rotation_deg(self) -> float:
        """The rotation angle, degrees."""
        return float(np.degrees(Rotation.from_matrix(self.matrix[:3, :3]).magnitude()))

    @property
    def turn_weakly_fixed(self) -> bool:
        """Whether the masks barely fix the turn about the main slice normal (:data:`TURN_WEAK_DROP`)."""
        return not self.turn_dice_drop >= TURN_WEAK_DROP

    def record(self, mode: str, applied: bool, warned: bool, moved_mm: float) -> dict:
        """The training data's and report's ``registration`` record: the transform, how it was used
        (``mode``, ``applied``, ``warned``), ``moved_mm`` (:meth:`moved_mm` at the masks) and how well
        the masks lie on the mesh."""
        return {
            "mode": mode,
            "applied": bool(applied),
            "warned": bool(warned),
            "study_to_mesh": self.matrix.tolist(),
            "translation_mm": self.translation_mm.tolist(),
            "rotation_deg": self.rotation_deg,
            "moved_mm": moved_mm,
            "soft_dice_before": self.dice_before,
            "soft_dice_after": self.dice_after,
            "turn_deg": TURN_DEG,
            "turn_dice_drop": self.turn_dice_drop,
            "turn_weakly_fixed": self.turn_weakly_fixed,
            "free_slices": self.free_slices,
        }

    def moved_mm(self, points: np.ndarray) -> float:
        """RMS displacement (mm) of ``points`` (N, 3) under the transform: its size where it matters."""
        moved = apply_affine(self.matrix, points) - points
        return float(np.sqrt(np.mean(np.sum(moved**2, axis=1))))


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

    samples = mask_samples(geometries, masks, names)
    points, values = samples.points, samples.values
    blur_max = max(blur for blur, _ in SEARCH)
    centre = points[len(HEIGHTS) // 2][values > 0.5].mean(axis=0)
    # the field where the samples can reach (mesh parts far from every stack do not matter)
    reach = MAX_MM + np.radians(MAX_DEG) * float(np.max(np.linalg.norm(points - centre, axis=-1))) + 2 * blur_max
    near = (np.maximum(box[0], points.min(axis=(0, 1)) - reach), np.minimum(box[1], points.max(axis=(0, 1)) + reach))
    mesh_field = occupancy(inside, near, 2 * blur_max)  # beyond the box the field is 0 anyway
    field, origin = mesh_field.values, mesh_field.origin
    rigid_bounds = [(-MAX_MM, MAX_MM)] * 3 + [(-MAX_DEG, MAX_DEG)] * 3
    smooth = [gaussian_filter(field, blur / FIELD_SPACING_MM) for blur, _ in SEARCH]

    def search(x: np.ndarray, slice_mm: float) -> np.ndarray:
        """The stages of :data:`SEARCH` from ``x``, the free slices' offsets bounded by ``slice_mm``."""
        bounds = rigid_bounds + [(-slice_mm, slice_mm)] * (2 * samples.n_free)
        for field_, (_, every) in zip(smooth, SEARCH):
            cost = SearchCost(field_, origin, samples, centre, every)
            x = minimize(
                cost.value_grad, x, jac=True, method="L-BFGS-B", bounds=bounds, options={"ftol": FTOL, "gtol": GTOL}
            ).x
        return x

    # scored at the last stage's blur with every pixel
    score = SearchCost(smooth[-1], origin, samples, centre)
    x = search(np.zeros(6 + 2 * samples.n_free), 0.0)  # the study moved as one
    free_slices = False
    if samples.n_free:  # then the main stack's slices on their own, kept only if they fit clearly better
        free = search(x, SLICE_MAX_MM)
        free_slices = score.joint_dice(free) - score.joint_dice(x) >= FREE_SLICES_MIN_GAIN
        x = free if free_slices else x
    params = x[:6]  # the free slices' offsets are the alignment's to measure, as residuals
    after = score.dice(params)
    # turned about the study's own normal through the moved centre, the free slices' offsets in place
    # (without them a study with breath-hold shifts fits so loosely that any turn looks alike)
    found_dice, drops = score.joint_dice(x), []
    for sign in (-1.0, 1.0):
        turn = Rotation.from_rotvec(np.radians(sign * TURN_DEG) * samples.normal)
        turned = Rotation.from_rotvec(np.radians(params[3:6])) * turn
        drops.append(found_dice - score.joint_dice(np.concatenate([params[:3], turned.as_rotvec(degrees=True), x[6:]])))
    return Registration(
        rigid_matrix(params, centre), centre, score.dice(np.zeros(6)), after, mesh_field, min(drops), free_slices
    )


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
