"""The cost that the study registration minimises (:mod:`.registration`), with its exact gradient.

Each masked slice's pixels are sampled through the slab (:func:`mask_samples`); the mesh's
myocardium is an occupancy field on a regular grid, blurred; the cost at a rigid transform (and,
when long-axis views anchor the study, the short-axis slices' own in-plane offsets) is minus the
soft Dice of the masks with the mesh's footprint (its occupancy pooled over each pixel's slab,
:func:`pool_heights`) at the level that gives it the masks' area, plus a slight pull towards no
motion (:class:`SearchCost`). The field is interpolated trilinearly by hand (:func:`trilinear`),
whose derivative is the cells' differences, and a rotation vector's derivative is SO(3)'s left
Jacobian (:func:`left_jacobian`), so the gradient is exact and the search needs no finite
differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from .errors import InputError
from .geometry import index_to_world
from .stack import StackGeometry

#: Around each slice's mask, the pixels within this distance (mm) are sampled as "not myocardium".
MARGIN_MM = 10.0
#: The pull towards no motion, per (10 mm)^2 of translation and (10 degrees)^2 of rotation, in
#: units of soft Dice: it keeps the estimate still where the masks cannot tell (a rotation about the
#: long axis of a nearly symmetric ventricle), and is small beside what a real misregistration gains.
PRIOR_WEIGHT = 0.002
#: Heights through the slab at which each pixel is sampled (fractions of the slice thickness).
HEIGHTS = (-0.4, -0.2, 0.0, 0.2, 0.4)
#: The mesh's occupancy at a pixel's :data:`HEIGHTS` is pooled by a power mean of this order:
#: between the mean (order 1: a mask drawn where most of the slab is myocardium) and the maximum (a
#: mask drawn wherever the slab has any). With the mean, the registration of unmoved synthetic
#: studies moved them 0.2-0.7 mm through plane, always towards the base; with 4, 0.0-0.2 mm
#: (docs/decisions.md).
SLAB_POWER = 4.0
#: Width of the soft footprint's logistic, in pooled wall fraction.
FOOTPRINT_WIDTH = 0.05
#: A mask covering more than this share of its slices is not a myocardium mask.
MAX_MASK_SHARE = 0.4
#: Masks of a stack whose slice normal is at least this far (degrees) from the main stack's anchor
#: the study, and the main stack's slices then move in plane on their own in the search.
ANCHOR_DEG = 30.0
#: Grid spacing of the mesh's occupancy field, mm.
FIELD_SPACING_MM = 1.5


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


def slab_points(geometry: StackGeometry, k: int, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """(H, n, 3) world mm of in-plane pixels (``ii``, ``jj``) of slice ``k`` at :data:`HEIGHTS`
    through its slab. A mesh point x appears in slice k at x + d_k, so the pixel shows the mesh at
    p - d_k (the slice's offset is taken off)."""
    a, b = geometry.inplane
    idx = np.zeros((len(HEIGHTS), len(ii), 3))
    idx[..., a], idx[..., b] = ii, jj
    idx[..., geometry.axis] = k + np.asarray(HEIGHTS)[:, None] * geometry.thickness / geometry.spacing[geometry.axis]
    return index_to_world(idx.reshape(-1, 3), geometry.affine).reshape(idx.shape) - geometry.world_offsets()[k]


@dataclass(frozen=True)
class MaskSamples:
    """Every masked slice's pixels within :data:`MARGIN_MM` of its mask, sampled through the slab.

    Attributes
    ----------
    points : (H, P, 3) world mm at :data:`HEIGHTS` through each pixel's slab.
    values : (P,) mask value (1 myocardium, 0 around it).
    free : (P,) int, the pixel's slice among the slices that move in plane on their own in the
        search (0 .. n_free - 1), -1 for the others.
    axes : (3, 2) world unit vectors of the in-plane axes of the stack with the most masked slices
        (the free slices', when there are free slices).
    """

    points: np.ndarray
    values: np.ndarray
    free: np.ndarray
    axes: np.ndarray

    @property
    def n_free(self) -> int:
        return int(self.free.max()) + 1 if self.free.size else 0

    @property
    def normal(self) -> np.ndarray:
        """(3,) unit slice normal of the stack with the most masked slices (the stack of ``axes``)."""
        n = np.cross(self.axes[:, 0], self.axes[:, 1])
        return n / np.linalg.norm(n)


def mask_samples(geometries: list[StackGeometry], masks: list[np.ndarray], names: list[str]) -> MaskSamples:
    """The samples of every masked slice (:class:`MaskSamples`). The slices of the stack with the
    most masked slices are free when another stack's masked slices lie at least :data:`ANCHOR_DEG`
    off their plane."""
    from scipy.ndimage import distance_transform_edt

    moved_masks = [np.moveaxis(mask, g.axis, -1) for g, mask in zip(geometries, masks)]
    masked = [np.flatnonzero(m.any(axis=(0, 1))) for m in moved_masks]
    main = int(np.argmax([len(k) for k in masked]))
    normal = geometries[main].normal
    anchored = any(
        len(k) and np.degrees(np.arccos(min(abs(float(g.normal @ normal)), 1.0))) >= ANCHOR_DEG
        for i, (g, k) in enumerate(zip(geometries, masked))
        if i != main
    )
    points, values, free = [], [], []
    n_free = 0
    for i, (g, moved, name, slices) in enumerate(zip(geometries, moved_masks, names, masked)):
        a, b = g.inplane
        share = moved.sum(axis=(0, 1)) / (moved.shape[0] * moved.shape[1])
        if np.any(share > MAX_MASK_SHARE):
            raise InputError(
                f"{name}: the mask covers {100 * share.max():.0f}% of a slice, which is no myocardium mask; "
                "give the myocardium mask (or `myocardium_labels`) to register the study"
            )
        spacing = g.spacing[[a, b]]
        for k in slices:  # the masked slices (a few dozen)
            near = distance_transform_edt(~moved[..., k], sampling=spacing) <= MARGIN_MM
            ii, jj = np.nonzero(near)
            points.append(slab_points(g, int(k), ii, jj))
            values.append(moved[ii, jj, k].astype(np.float64))
            is_free = anchored and i == main
            free.append(np.full(len(ii), n_free if is_free else -1))
            n_free += int(is_free)
    if not points:
        raise InputError(f"{', '.join(names)}: no mask has a myocardium pixel; the study cannot be registered")
    a, b = geometries[main].inplane
    axes = geometries[main].affine[:3, [a, b]] / geometries[main].spacing[[a, b]]
    return MaskSamples(np.concatenate(points, axis=1), np.concatenate(values), np.concatenate(free), axes)


def pool_heights(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool the occupancy at each pixel's heights, (H, P) -> (P,), by the power mean of order
    :data:`SLAB_POWER`; also returns its (H, P) derivative with respect to ``values``."""
    v = np.clip(values.astype(np.float64), 0.0, None)
    pooled = (v**SLAB_POWER).mean(axis=0) ** (1.0 / SLAB_POWER)
    scale = len(v) * np.where(pooled > 0, pooled, 1.0) ** (SLAB_POWER - 1)  # no myocardium in the slab: 0
    return pooled, v ** (SLAB_POWER - 1) / scale


def soft_footprint(wall: np.ndarray, level: float) -> np.ndarray:
    """The pixels the mesh would be drawn on at ``level`` of wall fraction, softly (a logistic)."""
    return 1.0 / (1.0 + np.exp(-(wall - level) / FOOTPRINT_WIDTH))


def matched_level(wall: np.ndarray, values: np.ndarray) -> float:
    """The wall fraction at which the mesh's footprint has the masks' area: a mask drawn generously
    (any myocardium in the slab) or tightly (the middle of the wall) is then matched alike."""
    n = int(round(values.sum()))
    order = np.sort(wall)[::-1]
    return float(np.clip(order[min(max(n - 1, 0), len(order) - 1)], 0.02, 0.98))


class SearchCost:
    """The search's cost at one blur: minus the soft Dice of the masks with the mesh's footprint
    at ``rigid_matrix(p, centre)``, plus the pull towards no motion; with its gradient
    (:meth:`value_grad`).

    Evaluated on (3, H x P) float32 arrays (the samples relative to the centre are fixed; a
    parameter vector only changes a 3 x 3 rotation and an offset), a few times cheaper than moving
    (H, P, 3) world points in float64 at each of the search's calls. With ``free`` slices
    (:class:`MaskSamples`) :meth:`value_grad` takes 6 + 2 x n_free parameters: the rigid six, then
    each free slice's in-plane offset (mm along ``axes``), applied before the rigid transform.
    """

    def __init__(self, smooth: np.ndarray, origin: np.ndarray, samples: MaskSamples, centre: np.ndarray, every: int = 1):
        """``samples``: every ``every``'th of them is used."""
        points, values = samples.points[:, ::every], samples.values[::every]
        self.smooth = np.asarray(smooth, dtype=np.float32)
        self.padded = np.pad(self.smooth, 1)  # for trilinear
        self.origin, self.centre = origin, centre
        self.heights = points.shape[0]
        self.relative = np.ascontiguousarray((points.reshape(-1, 3) - centre).T, dtype=np.float32)  # (3, H x P)
        self.values = values.astype(np.float32)
        self.total = float(values.sum())
        self.level = matched_level(self.wall(np.zeros(6)), values)
        self.free = np.tile(samples.free[::every], self.heights)  # per sample, as ``relative``
        self.moving = self.free >= 0
        self.n_free, self.axes = samples.n_free, np.asarray(samples.axes, np.float64)

    def wall(self, p: np.ndarray) -> np.ndarray:
        """(P,) wall fraction over each pixel's slab, the samples moved by ``p``."""
        matrix = rigid_matrix(p, self.centre)
        rot = (matrix[:3, :3] / FIELD_SPACING_MM).astype(np.float32)
        # x -> R x + t with x = centre + relative: index = (R relative + R centre + t - origin) / spacing
        shift = (matrix[:3, :3] @ self.centre + matrix[:3, 3] - self.origin) / FIELD_SPACING_MM
        coords = rot @ self.relative
        coords += shift.astype(np.float32)[:, None]
        w = map_coordinates(self.smooth, coords, order=1, mode="constant", cval=0.0)
        return pool_heights(w.reshape(self.heights, -1))[0]

    def dice(self, p: np.ndarray) -> float:
        """Soft Dice of the masks with the mesh's footprint, the samples moved by ``p``."""
        footprint = soft_footprint(self.wall(p), self.level)
        return 2.0 * float(np.dot(self.values, footprint)) / (self.total + float(footprint.sum()) + 1e-9)

    def __call__(self, p: np.ndarray) -> float:
        return -self.dice(p) + PRIOR_WEIGHT * float(np.sum((p / 10.0) ** 2))

    def joint_dice(self, x: np.ndarray) -> float:
        """Soft Dice at ``x`` as :meth:`value_grad` takes it (the rigid six, then the free slices'
        offsets): its cost without the pull towards no motion."""
        return -(self.value_grad(x)[0] - PRIOR_WEIGHT * float(np.sum((x / 10.0) ** 2)))

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The cost at ``x`` (the rigid six, then the free slices' offsets) and its gradient (per mm,
        per degree), exact for the trilinear field."""
        p, offsets = x[:6], x[6:].reshape(self.n_free, 2)
        rot = rigid_matrix(p, self.centre)[:3, :3]
        relative = self.relative
        if self.n_free:
            relative = relative.copy()
            relative[:, self.moving] += (offsets @ self.axes.T)[self.free[self.moving]].T.astype(np.float32)
        moved = rot.astype(np.float32) @ relative  # (3, H x P) mm about the centre
        coords = moved + (self.centre + p[:3] - self.origin).astype(np.float32)[:, None]
        value, grad = trilinear(self.padded, coords / FIELD_SPACING_MM)
        wall, d_pool = pool_heights(value.reshape(self.heights, -1))
        footprint = soft_footprint(wall, self.level)
        denominator = self.total + float(footprint.sum()) + 1e-9
        numerator = 2.0 * float(np.dot(self.values, footprint))
        # d Dice / d wall per pixel, then per sample (through the pooling of its heights), per mm
        d_wall = (
            (2.0 * self.values * denominator - numerator) / denominator**2 * footprint * (1 - footprint) / FOOTPRINT_WIDTH
        )
        d_x = grad * ((d_pool * d_wall[None]).ravel() / FIELD_SPACING_MM).astype(np.float32)[None]
        d_translation = d_x.sum(axis=1, dtype=np.float64)
        # R(w + d) x moves by (J d) x (R x): d Dice / d w = J^T sum (R x) x (d Dice / d x)
        torque = np.cross(moved.T, d_x.T).sum(axis=0, dtype=np.float64)
        d_rotation = left_jacobian(np.radians(p[3:6])).T @ torque * (np.pi / 180.0)
        # a free slice's offset moves its samples by R A q: d Dice / d q = A^T R^T (its samples' sum)
        back = rot.T @ d_x[:, self.moving]  # (3, moving samples), in the study's frame
        per_slice = np.stack(
            [np.bincount(self.free[self.moving], weights=back[d], minlength=self.n_free) for d in range(3)], axis=1
        )
        d_offsets = (per_slice @ self.axes).ravel()
        cost = -numerator / denominator + PRIOR_WEIGHT * float(np.sum((x / 10.0) ** 2))
        return cost, -np.concatenate([d_translation, d_rotation, d_offsets]) + 2 * PRIOR_WEIGHT * x / 100.0
