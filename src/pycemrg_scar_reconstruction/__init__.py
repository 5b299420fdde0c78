"""Per-patient 3D myocardial scar reconstruction from 2D LGE-CMR slices onto ventricular meshes.

The Python API (the CLI ``scar-reconstruct`` is a thin layer over it)::

    from pycemrg_scar_reconstruction import PrepareConfig, TrainConfig, prepare, train, predict, reconstruct

Every name in ``__all__`` is imported on first use (PEP 562), so importing the package is fast and
does not import torch; the modules keep their own names (``training``, ``prediction``, ``metrics``,
``figures``), so no function hides a module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # orchestrators (file I/O at the edges)
    "synth": "api",
    "prepare": "api",
    "train": "api",
    "predict": "api",
    "reconstruct": "api",
    "validate": "api",
    "baseline": "api",
    "report": "api",
    "output_paths": "api",
    "crossval": "api",
    "transform": "api",
    "run_cohort": "cohort",
    "read_manifest": "manifest",
    # configuration
    "MeshConfig": "config",
    "StackConfig": "config",
    "TargetConfig": "config",
    "PrepareConfig": "config",
    "SynthConfig": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "RuntimeConfig": "config",
    "PredictConfig": "config",
    "ValidateConfig": "config",
    "CohortConfig": "config",
    "CrossvalConfig": "config",
    "PRESETS": "config",
    # result and data types
    "TrainingData": "data",
    "build_training_data": "data",
    "SliceStack": "stack",
    "StackGeometry": "stack",
    "FittedModel": "fitted",
    "Prediction": "prediction",
    "SyntheticCase": "synthetic",
    # pure core functions
    "prism_memberships": "forward",
    "fit": "training",
    "predict_nodes": "prediction",
    "make_case": "synthetic",
    "group_report": "metrics",
    "truth_report": "metrics",
    "format_report": "metrics",
    "dice": "metrics",
    "mae": "metrics",
    "to_target": "targets",
    "InputError": "errors",
}

__all__ = [
    "CohortConfig",
    "CrossvalConfig",
    "FittedModel",
    "InputError",
    "MeshConfig",
    "ModelConfig",
    "PRESETS",
    "PredictConfig",
    "Prediction",
    "PrepareConfig",
    "RuntimeConfig",
    "SliceStack",
    "StackConfig",
    "StackGeometry",
    "SynthConfig",
    "SyntheticCase",
    "TargetConfig",
    "TrainConfig",
    "TrainingData",
    "ValidateConfig",
    "__version__",
    "baseline",
    "build_training_data",
    "crossval",
    "dice",
    "fit",
    "format_report",
    "group_report",
    "mae",
    "make_case",
    "output_paths",
    "predict",
    "predict_nodes",
    "prepare",
    "prism_memberships",
    "read_manifest",
    "reconstruct",
    "report",
    "run_cohort",
    "synth",
    "to_target",
    "train",
    "transform",
    "truth_report",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # static type checkers and IDEs see the real names
    from .api import baseline, output_paths, predict, prepare, reconstruct, report, synth, train, transform, validate
    from .config import (
        PRESETS,
        MeshConfig,
        ModelConfig,
        PredictConfig,
        PrepareConfig,
        RuntimeConfig,
        StackConfig,
        SynthConfig,
        TargetConfig,
        TrainConfig,
        ValidateConfig,
    )
    from .data import TrainingData, build_training_data
    from .errors import InputError
    from .fitted import FittedModel
    from .forward import prism_memberships
    from .metrics import dice, format_report, group_report, mae, truth_report
    from .prediction import Prediction, predict_nodes
    from .stack import SliceStack, StackGeometry
    from .synthetic import SyntheticCase, make_case
    from .targets import to_target
    from .training import fit
