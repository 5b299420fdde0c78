"""Artifacts: training data (``.npz``) and model checkpoints (``.pt``), written and checked on read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data import TrainingData
from ..errors import InputError
from .paths import atomic_output, check_output, full_suffix, require_file, write_json

if TYPE_CHECKING:  # torch is imported only when a model is saved or loaded
    from ..fitted import FittedModel


def check_data_output(path: Path) -> None:
    """Refuse, before any work, a training-data output that is not ``.npz`` or cannot be written."""
    path = Path(path)
    if full_suffix(path) != ".npz":
        raise InputError(f"{path}: training data is written as .npz; name the output '*.npz'")
    check_output(path, "training data")


def check_model_output(path: Path) -> None:
    """Refuse, before training, a model output (and its loss curve) that is not ``.pt`` or cannot be written."""
    path = Path(path)
    if full_suffix(path) != ".pt":
        raise InputError(f"{path}: models are written as .pt; name the output '*.pt'")
    check_output(path, "model", size_hint=1 << 20)
    check_output(history_path(path), "loss curve")


def history_path(model: Path) -> Path:
    """Where the loss curve of a model goes: ``<stem>.history.json`` beside it."""
    return Path(model).with_suffix(".history.json")


def save_training_data(data: TrainingData, path: Path) -> None:
    """Write training data as a versioned ``.npz`` (layout: :mod:`.data`)."""
    path = Path(path)
    check_data_output(path)
    with atomic_output(path) as tmp:
        np.savez(tmp, **data.to_arrays())  # type: ignore[arg-type]


def load_training_data(path: Path) -> TrainingData:
    """Read and check a training-data ``.npz``."""
    path = Path(path)
    require_file(path, "training data")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise InputError(
            f"{path}: cannot read training data ({type(exc).__name__}); re-create it with `scar-reconstruct prepare`"
        ) from exc
    return TrainingData.from_arrays(arrays, name=str(path))


def save_model(fitted: FittedModel, path: Path) -> Path:
    """Write a model checkpoint (``.pt``) and its loss curve beside it (``<stem>.history.json``).

    Returns the history path.
    """
    import torch

    path = Path(path)
    check_model_output(path)
    with atomic_output(path) as tmp:
        torch.save(fitted.to_checkpoint(), tmp)
    history = history_path(path)
    write_json(
        {
            "best_epoch": fitted.best_epoch,
            "stop_reason": fitted.stop_reason,
            "seconds": fitted.seconds,
            "threads": fitted.threads,
            "device": fitted.device,
            "epochs": fitted.history,
        },
        history,
    )
    return history


def load_model(path: Path) -> FittedModel:
    """Read a model checkpoint with ``torch.load(weights_only=True)``; a wrong file is an InputError."""
    import torch

    from ..fitted import FittedModel

    path = Path(path)
    require_file(path, "model")
    fix = "give a model written by `scar-reconstruct train` (or re-train it)"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files fail in many ways inside torch.load
        raise InputError(f"{path}: not a readable model checkpoint ({type(exc).__name__}); {fix}") from exc
    if not isinstance(ckpt, dict):
        raise InputError(f"{path}: not a pycemrg_scar_reconstruction model; {fix}")
    try:
        return FittedModel.from_checkpoint(ckpt)
    except (KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise InputError(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; {fix}") from exc
