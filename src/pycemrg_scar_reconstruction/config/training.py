"""Training: the network, its fit, the presets, and where and how it runs (device, threads)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .base import MAX_SEED, Device, _Config, _flag


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
    fourier_unit_mm: Optional[PositiveFloat] = Field(
        None,
        description="when set, fourier_scale is in cycles per this many mm instead of per normalised unit (half the "
        "mesh's largest extent), so that a larger mesh (LV + RV, the atria) is encoded at the same resolution in mm",
    )
    fourier_max_unit_mm: Optional[PositiveFloat] = Field(
        55.0,
        description="a mesh whose normalised unit (half its largest extent) is larger than this many mm is encoded "
        "per this many mm instead, so that a large heart keeps the frequencies in mm of one this size (55: the "
        "largest synthetic mesh the Fourier scale was chosen on); smaller meshes are left as they are; None "
        "(or any size larger than the mesh, e.g. 1000) keeps every mesh per normalised unit; fourier_unit_mm, when "
        "set, replaces it",
    )
    width: PositiveInt = Field(32, description="hidden layer width")
    depth: PositiveInt = Field(3, description="number of hidden layers")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout rate (MC dropout)")
    dropout_position: Literal["all", "last"] = Field("last", description="dropout after every hidden layer or only the last")
    output_activation: Literal["sigmoid", "none"] = Field(
        "sigmoid",
        description="the output layer's activation: sigmoid (a probability by construction); none (linear, trained "
        "as it is, so that healthy and scar tissue sit at 0 and 1 alike without saturating; clipped to [0, 1] when "
        "predicting)",
    )


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
    lr_max: PositiveFloat = Field(1e-2, description="upper learning rate of the cyclic and onecycle schedules")
    schedule: Literal["constant", "cyclic", "plateau", "onecycle"] = Field(
        "plateau",
        description="learning-rate schedule: constant; cyclic (triangular between lr and lr_max, per step); plateau "
        "(halved after patience/3 epochs without improvement); onecycle (one cycle of cycle_epochs epochs: up to lr_max "
        "over the first quarter, down along a cosine; training ends with it, patience does not apply)",
    )
    cycle_epochs: PositiveInt = Field(150, description="length of the onecycle schedule in epochs")
    finish: Literal["none", "lbfgs"] = Field(
        "none",
        description="none: Adam until patience; lbfgs: Adam for finish_after epochs, then full-batch L-BFGS on the "
        "MC mean for finish_steps steps of finish_iterations iterations, new dropout masks every step (needs "
        "dropout_masks step; float32)",
    )
    finish_after: PositiveInt = Field(30, description="Adam epochs before the L-BFGS finish (finish lbfgs)")
    finish_steps: PositiveInt = Field(20, description="L-BFGS steps, each with its own dropout masks (finish lbfgs)")
    finish_iterations: PositiveInt = Field(5, description="L-BFGS iterations per step (finish lbfgs)")
    step_size: PositiveInt = Field(2000, description="half-cycle in steps of the cyclic schedule")
    init_output_bias: bool = Field(True, description="start the output at the mean target instead of 0.5")
    patience: PositiveInt = Field(30, description="epochs without improvement before stopping")
    halvings: int = Field(
        4,
        ge=0,
        description="also stop once the plateau schedule has halved the rate this many times (after the fast "
        "start); 0: patience alone",
    )
    stop_on_field: bool = Field(
        True,
        description="also stop once the scar the network calls has settled: a fixed sample of nodes at or above 0.5 "
        "(no dropout) agrees with the previous check's at Dice >= field_agreement, field_window checks in a row, after "
        "the plateau schedule's field_after_halvings-th halving (other schedules: only with field_after_halvings 0)",
    )
    field_agreement: float = Field(
        0.99, gt=0, le=1, description="Dice between two checks' scar that counts as settled (stop_on_field)"
    )
    field_after_halvings: int = Field(
        2, ge=0, description="halvings of the rate before the field's checks count (stop_on_field)"
    )
    field_every: PositiveInt = Field(5, description="epochs between two checks of the field (stop_on_field)")
    field_window: PositiveInt = Field(2, description="settled checks in a row that stop training (stop_on_field)")
    min_delta: float = Field(1e-3, ge=0, description="relative improvement of the epoch loss that counts")
    max_epochs: PositiveInt = Field(2000, description="upper bound on epochs")
    max_time: Optional[PositiveFloat] = Field(None, description="upper bound on training seconds")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for initialisation, shuffling and dropout")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.schedule == "cyclic" and self.lr_max < self.lr:
            raise ValueError(
                f"lr_max ({self.lr_max:g}) is below `lr` ({self.lr:g}): the cyclic schedule runs from `lr` up to "
                "lr_max; give lr_max >= `lr`"
            )
        if self.finish == "lbfgs" and self.dropout_masks != "step":
            raise ValueError(
                "finish lbfgs needs dropout_masks step (L-BFGS needs the same masks at every evaluation of a step); "
                "set dropout_masks step or finish none"
            )
        if self.finish == "lbfgs" and self.schedule == "onecycle":
            raise ValueError("finish lbfgs ends training itself; use it with schedule plateau or constant, not onecycle")
        return self

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
        "stop_on_field": False,
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
        description="one CPU thread, the count every machine has: bit-identical results across processes (slower)",
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
