"""Configuration: pydantic models shared by the Python API and the CLI (each option defined once).

The CLI builds its options from these models' fields (names, defaults and help), so a field added
here appears in ``scar-reconstruct`` without being declared twice. Errors raised while validating
name fields (``scar_label``); only the CLI turns them into flags (``--scar-label``).

This module imports no logic of the package: every other module may import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    field_validator,
    model_validator,
)

#: What the pixel values of a stack mean (see :mod:`.targets`).
TargetKind = Literal["probability", "mask", "label", "intensity"]
#: How raw intensity becomes a scar target (see :mod:`.targets`).
Normalisation = Literal["mixture", "minmax", "fwhm", "nsd", "iir"]
#: Label values or names (from a labels file), e.g. ``(2, 3)`` or ``("scar", "mvo")``.
Labels = tuple[Union[int, str], ...]


def _label_list(value: Any) -> Any:
    """Labels from the command line or the API: ``3``, ``"2,3"``, ``"scar,mvo"`` or a list -> a tuple."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if isinstance(item, str) and item.lstrip("-").isdigit():
            item = int(item)
        if item == "":
            continue
        out.append(item)
    return tuple(out)


#: "auto", "cpu", "cuda" or "cuda:N" (the N-th GPU).
Device = Annotated[str, StringConstraints(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")]


def _flag(name: str) -> dict:
    """Field metadata: the command-line flag of a field (``name`` with dashes) when it is not the field name."""
    return {"flag": name}


#: Largest seed (torch and numpy take seeds up to 2**64 - 1; one bound for all).
MAX_SEED = 2**63 - 1


class _Config(BaseModel):
    # inf is refused like NaN: no option of this package means anything at infinity
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


class SynthConfig(_Config):
    """A synthetic case: LV wall mesh, known scar, and an LGE stack made with the forward model."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed: geometry, scar shape, orientation and noise")
    n_nodes: PositiveInt = Field(75_000, description="approximate number of mesh nodes")
    slice_spacing: PositiveFloat = Field(10.0, description="distance between slice centres in mm")
    slice_thickness: PositiveFloat = Field(8.0, description="slice thickness in mm")
    pixel_spacing: PositiveFloat = Field(1.5, description="in-plane pixel size in mm")
    oblique: bool = Field(True, description="oblique short-axis stack (false: aligned with the scanner axes)")
    noise: float = Field(0.03, ge=0, description="standard deviation of the Gaussian pixel noise")
    scar_scale: PositiveFloat = Field(
        1.0, le=3.0, description="factor on the infarct radii (1: 14-24 mm; 0.5 makes small focal scars)"
    )
    samples: PositiveInt = Field(1_500_000, description="myocardium samples used to average each prism")
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


class ModelConfig(_Config):
    """The coordinate network."""

    encoding: Literal["fourier", "none"] = Field("fourier", description="input encoding of normalised xyz")
    fourier_features: PositiveInt = Field(64, description="number of Fourier frequencies (encoding fourier)")
    fourier_scale: PositiveFloat = Field(
        0.5,
        description="std of the Fourier frequencies, cycles per normalised unit "
        "(the geometric mean of the in-plane and through-plane std)",
    )
    fourier_anisotropy: PositiveFloat = Field(
        2.0,
        description="in-plane / through-plane std ratio of the Fourier frequencies, about the slice normal of the "
        "stack with the most slices (1: isotropic)",
    )
    width: PositiveInt = Field(32, description="hidden layer width")
    depth: PositiveInt = Field(3, description="number of hidden layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout rate (MC dropout)")
    dropout_position: Literal["all", "last"] = Field("last", description="dropout after every hidden layer or only the last")


class TrainConfig(_Config):
    """The network, optimisation, batching and early stopping (saved with the model)."""

    model: ModelConfig = ModelConfig()
    batch_size: PositiveInt = Field(16384, description="target memberships per batch (groups are never split)")
    mc_samples: PositiveInt = Field(
        32, description="MC-dropout passes per training step", json_schema_extra=_flag("train_mc_samples")
    )
    dropout_masks: Literal["row", "step"] = Field(
        "step",
        description="training dropout masks: one per MC pass shared by the step's batch and folded into the "
        "weights (step), or a fresh mask per membership and pass (row, standard dropout)",
    )
    group_sample: int = Field(
        16,
        ge=0,
        description="when the median group holds more nodes than this (fine meshes), each epoch uses a "
        "new random subset of this many nodes of every larger group; 0: always every node",
    )
    fast_start_epochs: int = Field(
        8, ge=0, description="the first epochs use half the batch size at twice the learning rate"
    )
    lr: PositiveFloat = Field(3e-3, description="learning rate (lower bound of the cyclic schedule)")
    lr_max: PositiveFloat = Field(1e-2, description="upper learning rate of the cyclic schedule")
    schedule: Literal["constant", "cyclic", "plateau"] = Field("plateau", description="learning-rate schedule")
    step_size: PositiveInt = Field(2000, description="half-cycle in steps of the cyclic schedule")
    init_output_bias: bool = Field(True, description="start the output at the mean target instead of 0.5")
    patience: PositiveInt = Field(30, description="epochs without improvement before stopping")
    stop_on_field: bool = Field(
        False,
        description="also stop when the predicted field has stopped changing: the probability at a fixed sample of "
        "nodes moved by less than field_tol on average between checks field_every epochs apart, field_window times "
        "in a row",
    )
    field_tol: PositiveFloat = Field(
        0.02, description="largest change of the probability that counts as stable (stop_on_field)"
    )
    field_every: PositiveInt = Field(5, description="epochs between two checks of the field (stop_on_field)")
    field_window: PositiveInt = Field(2, description="stable checks in a row that stop training (stop_on_field)")
    min_delta: float = Field(1e-3, ge=0, description="relative improvement of the epoch loss that counts")
    max_epochs: PositiveInt = Field(2000, description="upper bound on epochs")
    max_time: Optional[PositiveFloat] = Field(None, description="upper bound on training seconds")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for initialisation, shuffling and dropout")

    @classmethod
    def from_preset(cls, preset: str = "default", **overrides: Any) -> TrainConfig:
        """A preset (:data:`PRESETS`) with explicit options on top (``model`` may be a partial dict)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[preset].items()}
        model = {**base.pop("model", {}), **dict(overrides.pop("model", {}) or {})}
        return cls(**{**base, **overrides, "model": ModelConfig(**model)})


#: Presets: named starting points; options given explicitly override them.
PRESETS: dict[str, dict] = {
    "default": {},
    # The published configuration: raw xyz, 4 x 128 ReLU, dropout 0.1, 3 MC samples, Adam with a
    # triangular cyclic learning rate 1e-3..1e-2 stepped per batch (step size 2000), batches of
    # about 10,000 nodes, patience 500, at most 10,000 epochs.
    "paper": {
        "model": {"encoding": "none", "width": 128, "depth": 4, "dropout": 0.1, "dropout_position": "all"},
        "batch_size": 10_000,
        "mc_samples": 3,
        "lr": 1e-3,
        "lr_max": 1e-2,
        "schedule": "cyclic",
        "step_size": 2000,
        "fast_start_epochs": 0,
        "dropout_masks": "row",
        "group_sample": 0,
        "init_output_bias": False,
        "patience": 500,
        "min_delta": 0.0,
        "max_epochs": 10_000,
    },
}


class RuntimeConfig(_Config):
    """Where and how the work runs: never saved with a model, never changes what is computed
    (except ``amp`` and ``threads``, which change float rounding)."""

    device: Device = Field(
        "auto",
        description="device for training and prediction: auto (cuda when present), cpu, cuda or cuda:N",
        json_schema_extra={"metavar": "auto|cpu|cuda[:N]"},
    )
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="mixed precision (auto: on for cuda, off on cpu)"
    )
    compile: bool = Field(False, description="torch.compile the model for training (opt-in)")
    deterministic: bool = Field(
        False,
        description="one CPU thread: bit-identical results across processes (slower; within a process they always are)",
    )
    threads: Optional[PositiveInt] = Field(
        None,
        description="CPU threads for torch (default: OMP_NUM_THREADS when set, else the physical cores left free "
        "by the machine's load, at least 1)",
    )
    memory_mb: Optional[PositiveInt] = Field(
        None, description="activation memory budget for prediction batches, MiB (default: a quarter of the free memory)"
    )
    quiet: bool = Field(False, description="no progress bar")


class PredictConfig(_Config):
    """MC-dropout prediction on a mesh, and the scar regions written per element."""

    mc_samples: PositiveInt = Field(20, description="MC-dropout passes at prediction")
    threshold: Optional[float] = Field(None, gt=0, lt=1, description="also write scar_binary = probability >= threshold")
    mc_seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the MC-dropout passes")
    support_mm: Optional[PositiveFloat] = Field(
        None,
        description="nodes further than this from any supervised node get the prior instead of the network's "
        "extrapolation (default: half the largest slice spacing)",
    )
    prior: float = Field(0.0, ge=0, le=1, description="scar probability of nodes beyond support_mm (0: healthy)")
    allow_extrapolation: bool = Field(
        False,
        description="predict even when most of the mesh lies outside the region the model was trained on "
        "(otherwise refused: another patient's mesh, or a wrong mesh_frame/mesh_units)",
    )
    border_threshold: float = Field(0.25, gt=0, lt=1, description="element mean probability from which it is border zone")
    core_threshold: float = Field(0.5, gt=0, lt=1, description="element mean probability from which it is core scar")
    tag_healthy: int = Field(1, description="element tag of healthy tissue (scar_region, openCARP .elem)")
    tag_border: int = Field(2, description="element tag of border zone")
    tag_core: int = Field(3, description="element tag of core scar")
    tag_mode: Literal["offset", "keep", "replace"] = Field(
        "offset",
        description="openCARP .elem tags: offset (border zone and core scar get the input tag + tag_offset_border "
        "/ tag_offset_core; healthy keeps it), keep (the input tags), replace (tag_healthy / tag_border / tag_core)",
    )
    tag_offset_border: int = Field(100, description="added to the input tag of border-zone elements (tag_mode offset)")
    tag_offset_core: int = Field(200, description="added to the input tag of core-scar elements (tag_mode offset)")
    output_units: Optional[Literal["mm", "um", "m"]] = Field(
        None, description="units of a VTK output's coordinates (default: the input mesh's; openCARP .pts is always um)"
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> PredictConfig:
        if not self.border_threshold < self.core_threshold:
            raise ValueError(
                f"border_threshold ({self.border_threshold:g}) must be below core_threshold ({self.core_threshold:g})"
            )
        return self

    @property
    def tags(self) -> tuple[int, int, int]:
        return (self.tag_healthy, self.tag_border, self.tag_core)


class ValidateConfig(_Config):
    """The group-constraint check (and truth metrics on synthetic cases)."""

    tolerance: PositiveFloat = Field(0.1, description="a group passes when |mean prediction - target| <= this")
    min_share: float = Field(0.9, ge=0, le=1, description="share of groups that must pass (exit 1 below it)")
    mc_samples: PositiveInt = Field(
        20, description="MC-dropout passes at prediction, when checking a model or cross-validating (heldout)"
    )
    mc_seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the MC-dropout passes")
    truth: Optional[str] = Field(None, description="point array of the mesh holding a ground truth (synthetic cases)")
    heldout: bool = Field(
        False,
        description="also cross-validate (needs the model): leave out each slice, retrain with the model's own "
        "settings and show the held-out figures and the simulated accuracy beside the fit (one training per "
        "slice, and one more)",
    )


class CohortConfig(_Config):
    """How a cohort of patients (a manifest) is run: where, how wide, how strictly."""

    workers: Optional[PositiveInt] = Field(
        None, description="worker processes of the local Dask cluster, one patient each (default: the cores)"
    )
    scheduler: Optional[str] = Field(
        None, description="address of an existing Dask scheduler (tcp://host:port) instead of a local cluster"
    )
    strict: bool = Field(
        False,
        description="refuse the whole manifest (exit 2, no work) when any row is bad; default: record bad rows as "
        "failed and run the rest",
    )


class CrossvalConfig(_Config):
    """Held-out accuracy (cross-validation over whole slices or views) and the calibration of the spread."""

    folds: Optional[int] = Field(
        None, ge=2, description="deal the slices into this many folds (default: every slice its own)"
    )
    holdout: Literal["slices", "views"] = Field("slices", description="leave out whole slices, or whole stacks (views)")
    workers: Optional[PositiveInt] = Field(
        None,
        description="folds trained at once, in separate processes (default: one per CPU thread the machine allows, "
        "each with one thread; 1 on a GPU)",
    )
    simulate: bool = Field(
        False,
        description="crossval, run --calibrate: also estimate the 3D Dice by simulation: retrain on the pixels the "
        "reconstructed scar (as truth) would give, with the fit's residual noise, and score against it (one or two "
        "trainings more; optimistic: on 10 cases it ranked them with Spearman 0.73, see docs/benchmarks.md)",
    )
    calibrate: bool = Field(
        False,
        description="run: cross-validate after training, store the spread's held-out calibration factor in the "
        "model (predict applies it) and put the held-out figures in the report (one training per fold)",
    )
