"""Configuration: pydantic models shared by the Python API and the CLI (each option defined once).

The CLI builds its options from these models' fields (names, defaults and help), so a field added
here appears in ``scar-reconstruct`` without being declared twice. Errors raised while validating
name fields (``scar_label``); only the CLI turns them into flags (``--scar-label``).

This package imports no logic of the package: every other module may import it. The models are
grouped by what they configure: :mod:`.inputs` (mesh, stacks, targets, prepare, synthetic cases),
:mod:`.training` (network, fit, presets, runtime) and :mod:`.outputs` (predict, validate, cross-
validation, cohorts); value types and the base model are in :mod:`.base`.
"""

from __future__ import annotations

from .base import MAX_SEED, Device, Labels, Normalisation, TargetKind
from .inputs import MeshConfig, PrepareConfig, StackConfig, SynthConfig, TargetConfig
from .outputs import CohortConfig, CrossvalConfig, PredictConfig, ValidateConfig
from .training import PRESETS, ModelConfig, RuntimeConfig, TrainConfig

__all__ = [
    "MAX_SEED",
    "PRESETS",
    "CohortConfig",
    "CrossvalConfig",
    "Device",
    "Labels",
    "MeshConfig",
    "ModelConfig",
    "Normalisation",
    "PredictConfig",
    "PrepareConfig",
    "RuntimeConfig",
    "StackConfig",
    "SynthConfig",
    "TargetConfig",
    "TargetKind",
    "TrainConfig",
    "ValidateConfig",
]
