"""The slice-stack object: pixel values and their geometry, kept together.

A :class:`SliceStack` is built only by the loaders (``io``, ``synthetic``) and consumed everywhere
else, so the affine can never drift away from the pixels it describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SliceStack:
    """A stack of 2D slices on one voxel grid.

    Attributes
    ----------
    values : (I, J, K) float64
        Scar targets in [0, 1] (already converted from the raw kind), NaN where undefined.
    affine : (4, 4) float64
        Voxel index -> world (RAS, mm); integer indices are voxel centres.
    thickness : float
        Slice thickness in mm along the through-plane axis (the prism height).
    axis : int
        The through-plane voxel axis (0, 1 or 2).
    mask : (I, J, K) bool or None
        Voxels that may form groups (myocardium); None means every voxel.
    name : str
        Where the stack came from (a file path), for messages.
    mapping : dict
        How raw values became targets (kind, normalisation, thresholds, reference means).
    """

    values: np.ndarray
    affine: np.ndarray
    thickness: float
    axis: int = 2
    mask: np.ndarray | None = None
    name: str = "<stack>"
    mapping: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 3:
            raise ValueError(f"{self.name}: values must be 3D, got shape {self.values.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"{self.name}: affine must be 4x4")
        if self.axis not in (0, 1, 2):
            raise ValueError(f"{self.name}: through-plane axis must be 0, 1 or 2")
        if self.mask is not None and self.mask.shape != self.values.shape:
            raise ValueError(f"{self.name}: mask shape {self.mask.shape} != image {self.values.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.values.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """(3,) voxel spacing in mm along each voxel axis (column norms of the affine)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)
