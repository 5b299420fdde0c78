"""``crossval``: held-out accuracy of a patient's reconstruction from its own data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import CrossvalConfig, RuntimeConfig, TrainConfig
from ..data import TrainingData
from ..errors import InputError
from ..io.artifacts import load_training_data
from ._common import load_fitted

if TYPE_CHECKING:  # torch-backed types: imported when a model is trained or used, not with the API
    from ..fitted import FittedModel

#: The figures of a cross-validation that go into report.json (``heldout``).
HELDOUT_KEYS = (
    "holdout",
    "folds",
    "pixels",
    "holdout_dice",
    "holdout_mae",
    "holdout_rmse",
    "holdout_average_precision",
    "interior",
    "end",
    "simulated",
    "baseline_dice",
    "baseline_mae",
    "baseline_pixels",
    "baseline_average_precision",
    "calibration",
)

HELDOUT_NEEDS_MODEL = "`heldout` needs `model`: the folds are trained with the model's own settings"


def crossval(
    data: TrainingData | Path,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    folds: CrossvalConfig = CrossvalConfig(),
    mc_samples: int = 20,
    mc_seed: int = 0,
    fitted: FittedModel | None = None,
) -> dict:
    """Held-out accuracy of a patient's reconstruction from its own data (see :mod:`..heldout`):
    leave out whole slices (or views), train on the rest, score the left-out pixels.

    With ``folds.simulate`` the result also has ``simulated`` (:func:`..simulated.simulated_accuracy`),
    for ``fitted`` (the model trained on all the data; trained here when not given).
    """
    from ..device import torch_threads
    from ..heldout import crossval as run_folds
    from ..simulated import simulated_accuracy
    from ..training import fit

    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    with torch_threads(runtime):
        result = run_folds(data, config, runtime, folds.folds, folds.holdout, mc_samples, mc_seed, folds.workers)
        if folds.simulate:
            fitted = fitted if fitted is not None else fit(data, config, runtime, progress=False)
            result["simulated"] = simulated_accuracy(data, fitted, config, runtime, mc_samples, mc_seed)
    return result


def heldout_summary(result: dict) -> dict:
    """The figures of a :func:`crossval` result that reports show (no per-fold rows)."""
    return {k: result[k] for k in HELDOUT_KEYS if k in result}


def model_crossval(data: TrainingData, model: FittedModel | Path | None, mc_samples: int, mc_seed: int) -> dict:
    """Leave-one-slice-out cross-validation, and the simulated accuracy, with the settings of ``model``."""
    if model is None:
        raise InputError(HELDOUT_NEEDS_MODEL)
    fitted = load_fitted(model)
    folds = CrossvalConfig(simulate=True)  # the model is at hand: the simulation costs one training
    return crossval(data, fitted.config, RuntimeConfig(), folds, mc_samples, mc_seed, fitted)
