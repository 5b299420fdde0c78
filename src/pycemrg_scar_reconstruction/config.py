"""Configuration: pydantic models shared by the Python API and the CLI (each option defined once).

The CLI builds its options from these models' fields (names, defaults and help), so a field added
here appears in ``scar-reconstruct`` without being declared twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from .targets import TargetKind


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeshConfig(_Config):
    """Where the mesh is and in which frame and units its coordinates are."""

    path: Path = Field(description="mesh file (.vtk .vtu .vtp .ply .stl .obj, or openCARP .pts)")
    frame: Literal["ras", "lps"] = Field("ras", description="mesh coordinate frame (NIfTI world is RAS)")
    units: Optional[Literal["mm", "um", "m"]] = Field(
        None, description="mesh length unit (default: um for openCARP .pts, mm otherwise)"
    )

    @property
    def resolved_units(self) -> str:
        if self.units is not None:
            return self.units
        return "um" if self.path.suffix.lower() == ".pts" else "mm"


class StackConfig(_Config):
    """One stack of LGE slices and how to read its values."""

    path: Path = Field(description="3D NIfTI stack (.nii, .nii.gz)")
    slice_thickness: Optional[PositiveFloat] = Field(
        None, description="slice thickness in mm (default: the spacing of the through-plane axis)"
    )
    mask: Optional[Path] = Field(None, description="myocardium mask on the same grid; voxels outside are not groups")
    target: TargetKind = Field("probability", description="what the pixel values mean")
    scar_label: Optional[int] = Field(None, description="the scar label value, for --target label")
    axis: Literal[0, 1, 2] = Field(2, description="through-plane voxel axis")

    @model_validator(mode="after")
    def _label_needs_value(self) -> "StackConfig":
        if self.target == "label" and self.scar_label is None:
            raise ValueError(f"{self.path}: --target label needs --scar-label N")
        return self


class PrepareConfig(_Config):
    """Inputs of ``prepare``: one mesh, one or more stacks."""

    mesh: MeshConfig
    stacks: list[StackConfig] = Field(min_length=1)


class SynthConfig(_Config):
    """A synthetic case: LV wall mesh, known scar, and an LGE stack made with the forward model."""

    seed: int = Field(0, description="random seed: geometry, scar shape, orientation and noise")
    n_nodes: PositiveInt = Field(75_000, description="approximate number of mesh nodes")
    slice_spacing: PositiveFloat = Field(10.0, description="distance between slice centres in mm")
    slice_thickness: PositiveFloat = Field(8.0, description="slice thickness in mm")
    pixel_spacing: PositiveFloat = Field(1.5, description="in-plane pixel size in mm")
    oblique: bool = Field(True, description="oblique short-axis stack (--axial: aligned with the scanner axes)")
    noise: float = Field(0.03, ge=0, description="standard deviation of the Gaussian pixel noise")
    samples: PositiveInt = Field(1_500_000, description="myocardium samples used to average each prism")
