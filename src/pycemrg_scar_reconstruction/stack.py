"""A stack's geometry (:class:`StackGeometry`), a stack of slices (:class:`SliceStack`) and a
stack as read before conversion (:class:`RawStack`).

:class:`StackGeometry` is the one description of where a stack's pixels are: it travels with the
pixels (in :class:`SliceStack`), with the training data and with the model. A :class:`SliceStack`
is built only by the loaders (``io``, ``synthetic``) and consumed everywhere else, so the affine
can never drift away from the pixels it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .geometry import index_to_world, inplane_axes, slice_normal, voxel_spacing, world_to_index


@dataclass(frozen=True, eq=False)
class StackGeometry:
    """Where the pixel prisms of one stack are (``shared/design.md``, geometry conventions).

    Attributes
    ----------
    affine : (4, 4) float64
        Voxel index -> world (RAS, mm); integer indices are voxel centres.
    shape : (I, J, K)
        Image shape.
    thickness : float
        Slice thickness in mm along the through-plane axis (the prism height; not the spacing).
    axis : int
        The through-plane voxel axis (0, 1 or 2).
    slice_offsets : (K, 3) float64 or None
        Per-slice correction for breath-hold misregistration: while slice k was acquired the heart
        was displaced by d_k, so a mesh point x appears in slice k at x + d_k. Given in mm along
        the image's in-plane axes (unit vectors of the affine's two in-plane columns, in their
        order) and the slice normal: ``[d_i, d_j, d_n]``. None: no correction (all zero).
        Translations only: rotations between breath-holds are not modelled.
    """

    affine: np.ndarray
    shape: tuple[int, int, int]
    thickness: float
    axis: int = 2
    slice_offsets: np.ndarray | None = None

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
        shape = tuple(int(v) for v in np.asarray(self.shape).reshape(-1))
        if len(shape) != 3:
            raise ValueError(f"shape must have 3 entries, got {shape}")
        if int(self.axis) not in (0, 1, 2):
            raise ValueError(f"through-plane axis must be 0, 1 or 2, got {self.axis}")
        if not (np.isfinite(self.thickness) and self.thickness > 0):
            raise ValueError(f"slice thickness must be a positive number of mm, got {self.thickness}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "thickness", float(self.thickness))
        object.__setattr__(self, "axis", int(self.axis))
        if self.slice_offsets is not None:
            offsets = np.asarray(self.slice_offsets, dtype=np.float64)
            if offsets.shape != (shape[int(self.axis)], 3) or not np.all(np.isfinite(offsets)):
                raise ValueError(
                    f"slice offsets must be finite, one [di, dj, dn] per slice ({shape[int(self.axis)]}), "
                    f"got shape {offsets.shape}"
                )
            object.__setattr__(self, "slice_offsets", None if not offsets.any() else offsets)

    @property
    def spacing(self) -> np.ndarray:
        """(3,) voxel spacing in mm along each voxel axis (column norms of the affine)."""
        return voxel_spacing(self.affine)

    @property
    def inplane(self) -> tuple[int, int]:
        """The two in-plane voxel axes, ascending."""
        return inplane_axes(self.axis)

    @property
    def n_slices(self) -> int:
        return self.shape[self.axis]

    @property
    def normal(self) -> np.ndarray:
        """(3,) unit world normal of the slice planes."""
        return slice_normal(self.affine, self.axis)

    @property
    def half_thickness_index(self) -> float:
        """Half the slice thickness in through-plane index units."""
        return 0.5 * self.thickness / float(self.spacing[self.axis])

    def to_index(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) continuous voxel indices of world-mm points (the stack's affine, no per-slice offsets)."""
        return world_to_index(points, self.affine)

    @property
    def offset_frame(self) -> np.ndarray:
        """(3, 3) world unit vectors of the offsets' axes as columns: in-plane i, in-plane j, normal."""
        a, b = self.inplane
        cols = self.affine[:3, [a, b]] / np.linalg.norm(self.affine[:3, [a, b]], axis=0)
        return np.column_stack([cols, self.normal])

    def world_offsets(self) -> np.ndarray:
        """(K, 3) world-mm displacement of the heart for each slice (zeros without offsets)."""
        if self.slice_offsets is None:
            return np.zeros((self.n_slices, 3))
        return self.slice_offsets @ self.offset_frame.T

    def index_offsets(self) -> np.ndarray:
        """(K, 3) each slice's offset in continuous voxel-index units: where a point appears in
        slice k is ``to_index(point) + index_offsets()[k]`` (the index is affine in the point)."""
        return self.world_offsets() @ np.linalg.inv(self.affine[:3, :3]).T

    def with_offsets(self, offsets: np.ndarray | None) -> StackGeometry:
        """The same geometry with other per-slice offsets (mm, see the class docstring)."""
        return StackGeometry(self.affine, self.shape, self.thickness, self.axis, offsets)

    def corners(self) -> np.ndarray:
        """(8, 3) world corners of the volume covered by the prisms (pixel edges, slab faces)."""
        lo, hi = self._index_box()
        grid = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T
        return index_to_world(grid, self.affine)

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: the point lies within the box spanned by the prisms (gaps between slices included)."""
        lo, hi = self._index_box()
        c = self.to_index(points)
        return np.all((c >= lo) & (c <= hi), axis=1)

    def _index_box(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.full(3, -0.5)
        hi = np.asarray(self.shape, dtype=np.float64) - 0.5
        lo[self.axis] = -self.half_thickness_index
        hi[self.axis] = self.shape[self.axis] - 1 + self.half_thickness_index
        return lo, hi

    def same_as(self, other: StackGeometry, atol: float = 0.0) -> bool:
        """Equal geometry (affines and per-slice offsets within ``atol``)."""
        return (
            self.shape == other.shape
            and self.axis == other.axis
            and self.thickness == other.thickness
            and bool(np.allclose(self.affine, other.affine, rtol=0, atol=atol))
            and bool(np.allclose(self.world_offsets(), other.world_offsets(), rtol=0, atol=atol))
        )


def main_slice_normal(stacks: Sequence[StackGeometry]) -> np.ndarray:
    """(3,) unit slice normal of the stack with the most slices (the first of equals)."""
    main = int(np.argmax([g.n_slices for g in stacks]))
    return stacks[main].normal


@dataclass(frozen=True)
class SliceStack:
    """A stack of 2D slices: pixel targets on the grid of one :class:`StackGeometry`.

    Attributes
    ----------
    values : (I, J, K) float64
        Scar targets in [0, 1] (already converted from the raw kind), NaN where undefined.
    geometry : StackGeometry
        Where the pixels are.
    mask : (I, J, K) bool or None
        Voxels that may form groups (myocardium); None means every voxel.
    name : str
        Where the stack came from (a file path), for messages.
    mapping : dict
        How raw values became targets (kind, normalisation, thresholds, reference means).
    """

    values: np.ndarray
    geometry: StackGeometry
    mask: np.ndarray | None = None
    name: str = "<stack>"
    mapping: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"{self.name}: values must be 3D, got shape {self.values.shape}")
        if tuple(self.values.shape) != self.geometry.shape:
            raise ValueError(f"{self.name}: values shape {self.values.shape} != geometry shape {self.geometry.shape}")
        if self.mask is not None and self.mask.shape != self.values.shape:
            raise ValueError(f"{self.name}: mask shape {self.mask.shape} != image {self.values.shape}")


@dataclass(frozen=True, eq=False)
class RawStack:
    """A stack as read from disk, before its values become targets (see :mod:`.targets`).

    Attributes
    ----------
    values : (I, J, K) raw pixel values (probabilities, labels or intensities).
    geometry : StackGeometry, as read (DICOM per-slice positions included; no breath-hold offsets).
    mask, remote, blood_pool : (I, J, K) bool or None: the myocardium mask (or the myocardium
        labels) and the reference masks of the clinical normalisations.
    label_names : label name -> value from a labels file, or None.
    name : where the stack came from (a file path), for messages.
    positions : a note when per-slice DICOM positions were used ("" otherwise).
    """

    values: np.ndarray
    geometry: StackGeometry
    mask: np.ndarray | None = None
    remote: np.ndarray | None = None
    blood_pool: np.ndarray | None = None
    label_names: dict[str, int] | None = None
    name: str = "<stack>"
    positions: str = ""
