"""A fitted model (:class:`FittedModel`) and its checkpoint format.

A checkpoint is a dict of tensors and plain values, readable with ``torch.load(weights_only=True)``:

==================  =====================================================================
key                 meaning
==================  =====================================================================
format, version     ``pycemrg_scar_reconstruction.model``, 2 (1: before per-slice offsets)
state_dict          the network's weights (and the Fourier matrix ``B``)
config              :class:`~.config.TrainConfig` as JSON
norm_center/scale   the isotropic normalisation of the training mesh (mm)
stacks              dict: affines (S, 4, 4), shapes (S, 3), thickness (S,), axis (S,), slice_offsets (K, 3)
group_keys          (G, 4) int32: stack, i, j, k of every training group
data_hash           fingerprint of the training data
data_summary        nodes, groups, memberships, supervised nodes, stacks, group sampling
history             per-epoch loss, learning rate and seconds
best_epoch, stop_reason, seconds, package_version, torch_version
threads, device     where it was trained: torch's CPU threads and the device (absent: 0, "")
uncertainty_floor   held-out calibration (:mod:`.calibration`): the fit residual sd (absent: 0)
uncertainty_border  held-out calibration: the coefficient of the border term (absent: 0)
uncertainty_factors held-out calibration: the one-sigma multiple per band of probability
                    (absent: three times the earlier ``uncertainty_scale``, else 1)
==================  =====================================================================
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._version import __version__
from .config import TrainConfig
from .data import TrainingData, stack_arrays, stacks_from_arrays
from .geometry import normalise
from .model import ScarMLP
from .stack import StackGeometry

CHECKPOINT_FORMAT = "pycemrg_scar_reconstruction.model"
CHECKPOINT_VERSION = 2
#: Settings that earlier versions stored in the training config and are now runtime settings.
_RUNTIME_KEYS = ("device", "amp", "compile", "deterministic", "quiet")
#: Checkpoint "stacks" entry -> training-data array key (the same layout).
_STACK_ENTRY = {
    "affines": "stack_affines",
    "shapes": "stack_shapes",
    "thickness": "stack_thickness",
    "axis": "stack_axis",
    "slice_offsets": "stack_slice_offsets",
}


def data_fingerprint(data: TrainingData) -> str:
    """A short hash of the training data's memberships, targets and points."""
    h = hashlib.sha256()
    for arr in (data.points, data.member_node, data.member_group, data.group_target):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


@dataclass
class FittedModel:
    """A trained network with everything needed to predict, validate and reproduce it."""

    net: ScarMLP
    config: TrainConfig
    norm_center: np.ndarray
    norm_scale: float
    stacks: tuple[StackGeometry, ...]
    group_keys: np.ndarray  # (G, 4) int: stack, i, j, k of every group
    data_hash: str
    data_summary: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = ""
    seconds: float = 0.0
    #: Where it was trained: torch's CPU threads (0: not recorded) and the device. Until the sigmoid
    #: of :class:`~.model.BoundedSigmoid` became thread-independent (after 0.2.0) the count changed
    #: the training's rounding and with it where training stopped; kept with the training's time.
    threads: int = 0
    device: str = ""
    #: Held-out calibration (:func:`.calibration.calibrated_uncertainty`; 0, 0 and 1s: the MC spread as is).
    uncertainty_floor: float = 0.0
    uncertainty_border: float = 0.0
    uncertainty_factors: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def trained_on(self) -> str:
        """``2 CPU threads``, ``cuda:0``, or "" when not recorded (for log lines and summaries)."""
        if self.device == "cpu":
            return f"{self.threads} CPU thread{'s' if self.threads != 1 else ''}"
        return self.device

    def normalised(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) normalised coordinates of world-mm points."""
        return normalise(points, self.norm_center, self.norm_scale)

    def to_checkpoint(self) -> dict[str, Any]:
        """A dict of tensors and plain values (see the module docstring)."""
        arrays = stack_arrays(self.stacks)
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "config": self.config.model_dump_json(),
            "norm_center": [float(x) for x in self.norm_center],
            "norm_scale": float(self.norm_scale),
            "stacks": {entry: torch.as_tensor(arrays[key]) for entry, key in _STACK_ENTRY.items()},
            "group_keys": torch.as_tensor(self.group_keys.astype(np.int32)),
            "data_hash": self.data_hash,
            "data_summary": self.data_summary,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "threads": int(self.threads),
            "device": self.device,
            "uncertainty_floor": float(self.uncertainty_floor),
            "uncertainty_border": float(self.uncertainty_border),
            "uncertainty_factors": [float(f) for f in self.uncertainty_factors],
            "package_version": __version__,
            "torch_version": str(torch.__version__),
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> FittedModel:
        """Rebuild from :meth:`to_checkpoint` output (raises KeyError/ValueError when malformed)."""
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a pycemrg_scar_reconstruction model")
        if ckpt.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"model format version {ckpt.get('version')}, this version reads {CHECKPOINT_VERSION}")
        for key in ("state_dict", "stacks"):
            if not isinstance(ckpt.get(key), dict) or not all(isinstance(v, torch.Tensor) for v in ckpt[key].values()):
                raise ValueError(f"{key} is not a set of tensors")
        if not isinstance(ckpt.get("group_keys"), torch.Tensor):
            raise ValueError("group_keys is not a tensor")
        if not all(bool(torch.isfinite(v).all()) for v in ckpt["state_dict"].values() if v.is_floating_point()):
            raise ValueError("the network weights are not finite")
        center = np.asarray(ckpt["norm_center"], dtype=np.float64)
        scale = float(ckpt["norm_scale"])
        if center.shape != (3,) or not np.all(np.isfinite(center)) or not (np.isfinite(scale) and scale > 0):
            raise ValueError(
                "the coordinate normalisation (norm_center, norm_scale) is not 3 finite numbers and a positive scale"
            )
        floor, border = float(ckpt.get("uncertainty_floor", 0.0)), float(ckpt.get("uncertainty_border", 0.0))
        earlier = float(ckpt.get("uncertainty_scale", 1.0))  # before: one scale on the spread
        factors = tuple(float(f) for f in ckpt.get("uncertainty_factors", [earlier] * 3))
        if not all(np.isfinite(v) and v >= 0 for v in (floor, border)) or not (
            len(factors) == 3 and all(np.isfinite(f) and f > 0 for f in factors)
        ):
            raise ValueError("uncertainty_floor/_border/_factors are not two numbers >= 0 and three positive numbers")
        stored = json.loads(ckpt["config"])
        if isinstance(stored.get("model"), dict):  # saved before the cap existed: trained per normalised unit
            stored["model"].setdefault("fourier_max_unit_mm", None)
        stored.pop("field_tol", None)  # round 1's field test, gone since 2026-12-05: it only chose when to stop
        config = TrainConfig.model_validate({k: v for k, v in stored.items() if k not in _RUNTIME_KEYS})
        net = ScarMLP(config.model, seed=config.seed, norm_scale_mm=scale)  # B is a buffer: the state dict restores it
        net.load_state_dict(ckpt["state_dict"])
        stacks = stacks_from_arrays({key: ckpt["stacks"][entry].numpy() for entry, key in _STACK_ENTRY.items()})
        return cls(
            net=net,
            config=config,
            norm_center=center,
            norm_scale=scale,
            stacks=stacks,
            group_keys=ckpt["group_keys"].numpy().astype(np.int64),
            data_hash=ckpt["data_hash"],
            data_summary=dict(ckpt["data_summary"]),
            history=list(ckpt["history"]),
            best_epoch=int(ckpt["best_epoch"]),
            stop_reason=str(ckpt["stop_reason"]),
            seconds=float(ckpt["seconds"]),
            threads=int(ckpt.get("threads", 0)),  # absent from models saved before this record
            device=str(ckpt.get("device", "")),
            uncertainty_floor=floor,
            uncertainty_border=border,
            uncertainty_factors=factors,
        )
