"""The inputs: the mesh, each stack and what its values mean, prepare, and the synthetic cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from .base import MAX_SEED, Labels, Normalisation, TargetKind, _Config, _flag, _label_list


class MeshConfig(_Config):
    """Where the mesh is and in which frame and units its coordinates are."""

    path: Path = Field(description="mesh file (.vtk .vtu .vtp .ply .stl .obj, or openCARP .pts)")
    frame: Literal["ras", "lps"] = Field("ras", description="mesh coordinate frame (NIfTI world is RAS)")
    units: Optional[Literal["mm", "um", "m"]] = Field(
        None, description="mesh length unit (default: um for openCARP .pts, mm otherwise)"
    )
    region_array: Optional[str] = Field(
        None,
        description="restrict training and prediction to a region of the mesh: a cell or point array (e.g. an "
        "element tag or is_LV); nodes outside get probability 0",
        json_schema_extra=_flag("region_array"),
    )
    region_values: Optional[tuple[float, ...]] = Field(
        None,
        description="the values of region_array that make the region, comma-separated (default: 1)",
        json_schema_extra=_flag("region_values"),
    )
    tag_array: Optional[str] = Field(
        None,
        description="cell array of a VTK mesh holding its element tags, for the openCARP .elem output "
        "(an openCARP mesh's own .elem tags are used without it)",
        json_schema_extra=_flag("tag_array"),
    )

    @field_validator("region_values", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(float(v) for v in value.split(",") if v.strip())
        return (value,) if isinstance(value, (int, float)) else value

    @property
    def region(self) -> tuple[str, tuple[float, ...]] | None:
        """(array, values) of the region, or None for the whole mesh."""
        if self.region_array is None:
            return None
        return self.region_array, self.region_values or (1.0,)

    @property
    def resolved_units(self) -> str:
        if self.units is not None:
            return self.units
        return "um" if self.path.suffix.lower() == ".pts" else "mm"


class TargetConfig(_Config):
    """What a stack's pixel values mean and how they become scar targets in [0, 1]."""

    kind: TargetKind = Field("probability", description="what the pixel values mean", json_schema_extra=_flag("target"))
    scar_label: Optional[Labels] = Field(
        None,
        description="scar label values or names (from `labels`), comma-separated, for target label: e.g. 2,3 or scar,mvo",
    )
    normalise: Normalisation = Field(
        "mixture",
        description="how target intensity becomes scar: mixture (the partial-volume mix of myocardium, scar, "
        "blood pool and outside in each prism, with the tissue fractions from the mesh: a scar fraction), or the "
        "clinical definitions minmax, fwhm, nsd, iir",
    )
    min_wall_fraction: float = Field(
        0.3, gt=0, le=1, description="normalise mixture: pixels whose prism is less myocardium than this are not used"
    )
    n_sd: PositiveFloat = Field(5.0, description="standard deviations above remote myocardium, for normalise nsd")
    iir_low: PositiveFloat = Field(1.2, description="IIR mapped to 0 (left-atrial fibrosis default), for normalise iir")
    iir_high: PositiveFloat = Field(1.32, description="IIR mapped to 1 (left-atrial dense scar default), for normalise iir")

    @field_validator("scar_label", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return _label_list(value)

    @model_validator(mode="after")
    def _check(self) -> TargetConfig:
        if self.kind == "label" and self.scar_label is None:
            raise ValueError("target label needs scar_label (the scar's label value)")
        if not self.iir_low < self.iir_high:
            raise ValueError(f"iir_low ({self.iir_low:g}) must be below iir_high ({self.iir_high:g})")
        return self


class StackConfig(_Config):
    """One stack of LGE slices, its masks, and how to read its values."""

    path: Path = Field(
        description="3D stack: NIfTI (.nii .nii.gz); NRRD/MetaImage/DICOM folder with the [itk] extra; "
        "or a VTK slice layer (.vti .vts .vtk, one slice)",
        json_schema_extra=_flag("image"),
    )
    dicom_series: Optional[str] = Field(None, description="DICOM series UID when the folder holds several")
    slice_thickness: Optional[PositiveFloat] = Field(
        None, description="slice thickness in mm (default: the spacing of the through-plane axis)"
    )
    mask: Optional[Path] = Field(None, description="myocardium mask on the same grid; voxels outside are not groups")
    axis: Literal[0, 1, 2] = Field(2, description="through-plane voxel axis", json_schema_extra=_flag("slice_axis"))
    remote_mask: Optional[Path] = Field(None, description="remote (healthy) myocardium mask, for normalise nsd")
    blood_pool_mask: Optional[Path] = Field(
        None, description="blood pool mask, for normalise iir (and mixture, where it replaces the blood level from the mesh)"
    )
    myocardium_labels: Optional[Labels] = Field(
        None, description="take the myocardium mask from the label image itself: these values or names, comma-separated"
    )
    labels: Optional[Path] = Field(None, description="a pycemrg-style labels.yaml (labels: {name: value}) for label names")
    target: TargetConfig = Field(TargetConfig(), description="what the values are (a TargetConfig, or just its kind)")

    @field_validator("target", mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("myocardium_labels", mode="before")
    @classmethod
    def _myo(cls, value: Any) -> Any:
        return _label_list(value)

    @model_validator(mode="after")
    def _one_mask(self) -> StackConfig:
        if self.mask is not None and self.myocardium_labels is not None:
            raise ValueError("give either mask or myocardium_labels, not both")
        return self


class PrepareConfig(_Config):
    """Inputs of ``prepare``: one mesh, one or more stacks, and whether to correct breath-hold offsets."""

    mesh: MeshConfig
    stacks: list[StackConfig] = Field(min_length=1)
    align_slices: bool = Field(
        False,
        description="estimate each slice's breath-hold offset from its myocardium mask against the mesh and "
        "correct the memberships with it (stacks with a mask)",
    )
    measure_offsets: bool = Field(
        False,
        description="estimate each slice's breath-hold offset as `align_slices` does but keep it in the training "
        "data without correcting the memberships: the simulated accuracy (`simulate`) then includes the "
        "misregistration (stacks with a mask; on with `align_slices`)",
    )
    align_max_inplane_mm: PositiveFloat = Field(10.0, description="bound of the in-plane offset search, mm per axis")
    align_max_normal_mm: float = Field(
        5.0, ge=0, description="bound of the through-plane offset search, mm (0: in plane only)"
    )
    study_registration: Optional[Literal["off", "measure", "rigid"]] = Field(
        None,
        json_schema_extra=_flag("register"),
        description="study-to-mesh registration from the myocardium masks of every stack at once: off; measure "
        "(report only); rigid (apply one rigid transform to every stack); default: measure when a stack has a "
        "mask, and warn when it would move the masks by more than register_min_mm (RMS); see report.json study_to_mesh",
    )
    register_min_mm: PositiveFloat = Field(
        1.5, description="by default, a warning when the registration would move the masks by more than this (mm RMS)"
    )


#: The largest synthetic mesh (nodes) and prism sampling (samples): a few GB of memory at most,
#: refused above rather than failing mid-way with a MemoryError.
MAX_SYNTH_NODES = 5_000_000
MAX_SYNTH_SAMPLES = 50_000_000


class SynthConfig(_Config):
    """A synthetic case: LV wall mesh, known scar, and an LGE stack made with the forward model."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed: geometry, scar shape, orientation and noise")
    n_nodes: PositiveInt = Field(
        75_000, le=MAX_SYNTH_NODES, description=f"approximate number of mesh nodes (at most {MAX_SYNTH_NODES:,})"
    )
    slice_spacing: PositiveFloat = Field(10.0, description="distance between slice centres in mm")
    slice_thickness: PositiveFloat = Field(8.0, description="slice thickness in mm")
    pixel_spacing: PositiveFloat = Field(1.5, description="in-plane pixel size in mm")
    oblique: bool = Field(True, description="oblique short-axis stack (false: aligned with the scanner axes)")
    noise: float = Field(0.03, ge=0, description="standard deviation of the Gaussian pixel noise")
    scar_scale: PositiveFloat = Field(
        1.0, le=3.0, description="factor on the infarct radii (1: 14-24 mm; 0.5 makes small focal scars)"
    )
    samples: PositiveInt = Field(
        1_500_000,
        le=MAX_SYNTH_SAMPLES,
        description=f"myocardium samples used to average each prism (at most {MAX_SYNTH_SAMPLES:,})",
    )
    long_axis_views: int = Field(0, ge=0, le=3, description="also write this many one-slice long-axis stacks")
    intensity: bool = Field(
        False,
        description="LGE-like signal instead of probabilities: partial volume of scar, healthy myocardium, blood "
        "pool and outside in every prism, Rician noise, a segmentation-like mask (also writes the probability stack)",
    )
    rician_sigma: PositiveFloat = Field(12.0, description="noise of the intensity stack (per channel), intensity units")
    shift: float = Field(
        0.0,
        ge=0,
        description="breath-hold misregistration: each short-axis slice sees the heart displaced by a random "
        "offset, standard deviation this (mm) in plane and half of it through plane (true offsets in case.json)",
    )
    biventricular: bool = Field(
        False, description="add an RV free wall attached to the LV (mesh arrays is_LV); LGE scar in the LV wall only"
    )
    study_offset: float = Field(
        0.0,
        ge=0,
        le=30,
        description="a mesh from another scan: move the mesh by this many mm (random direction) relative to every "
        "stack (the true study-to-mesh transform goes into case.json)",
    )
    study_rotation: float = Field(
        0.0, ge=0, le=30, description="... and rotate it by this many degrees about its centre (random axis)"
    )
    lv_irregularity: float = Field(
        0.0,
        ge=0,
        le=1.5,
        description="the LV departs from a smooth shell as a real one does: its wall thickness (harmonics 1-3 "
        "about the long axis) and its outline (harmonics 2-3) vary; 1: by about as much as the real human case's, "
        "0: the smooth shell",
    )
    heart_scale: float = Field(
        1.0,
        ge=0.5,
        le=2.0,
        description="factor on the LV cavity's radii and length (the wall and scars stay in mm): 1 gives cavities "
        "44-56 mm across and 55-68 mm long; the real human case's dilated LV is about 1.35 (up to 70 mm across, "
        "slices over 104 mm)",
    )
    real_like: bool = Field(
        False,
        description="as hard as a real case: the mesh is a model of the imaged heart, not its segmentation "
        "(radii, length and wall off by up to 6%), the stack stops 1.3-2 slice spacings short of the apex, the "
        "scar is a small one (2.5-5% of the wall) at an RV insertion and one reaching the apex past the last "
        "slice; with intensity, PSIR-like levels (blood brightest, remote myocardium near zero), with a third of "
        "the real PSIR stack's noise unless rician_sigma is 40",
    )
