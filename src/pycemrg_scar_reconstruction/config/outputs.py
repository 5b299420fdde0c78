"""The outputs: prediction, validation, cross-validation and cohorts."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .base import MAX_SEED, _Config


class PredictConfig(_Config):
    """MC-dropout prediction on a mesh, and the scar regions written per element."""

    mc_samples: PositiveInt = Field(20, description="MC-dropout passes at prediction")
    threshold: Optional[float] = Field(None, gt=0, lt=1, description="also write scar_binary = probability >= threshold")
    mc_seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the MC-dropout passes")
    support_mm: Optional[PositiveFloat] = Field(
        None,
        description="nodes further than this beyond the images' coverage (the convex hull of the supervised "
        "nodes) get the prior instead of the network's extrapolation (default: half the largest slice spacing)",
    )
    prior: float = Field(
        0.0, ge=0, le=1, description="scar probability of nodes beyond the coverage by support_mm (0: healthy)"
    )
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
        "trainings more; how well it ranks cases: docs/benchmarks.md)",
    )
    calibrate: bool = Field(
        False,
        description="run: cross-validate after training, store the spread's held-out calibration factor in the "
        "model (predict applies it) and put the held-out figures in the report (one training per fold)",
    )
