"""``train``: fit the network to a patient's training data, keeping the best model on Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import RuntimeConfig, TrainConfig
from ..data import TrainingData
from ..errors import Interrupted
from ..io.artifacts import check_model_output, history_path, load_training_data, save_model
from ..io.paths import refuse_overwrite

if TYPE_CHECKING:  # torch-backed types: imported when a model is trained, not with the API
    from ..fitted import FittedModel


def train(
    data: TrainingData | Path, config: TrainConfig, output: Path | None = None, runtime: RuntimeConfig = RuntimeConfig()
) -> FittedModel:
    """Fit the network to training data (a :class:`TrainingData` or a ``.npz`` path).

    Writes the checkpoint (and ``<stem>.history.json``) when ``output`` is given. Torch's CPU
    thread count follows ``runtime`` during the fit and is restored after.
    """
    from ..device import torch_threads
    from ..training import fit

    if output is not None:
        read = [("training data", Path(data))] if isinstance(data, (str, Path)) else []
        refuse_overwrite([("model", Path(output)), ("loss history", history_path(Path(output)))], read)
        check_model_output(Path(output))  # before hours of work
    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    try:
        with torch_threads(runtime):
            fitted = fit(data, config, runtime)
    except Interrupted as exc:  # keep the best epoch so far, then stop
        if output is None or exc.partial is None:
            raise
        save_model(exc.partial, Path(output))  # type: ignore[arg-type]
        best = exc.partial.best_epoch  # type: ignore[attr-defined]
        raise Interrupted(f"{exc}; best model (epoch {best}) saved to {output}", exc.cause, exc.partial) from None
    if output is not None:
        save_model(fitted, Path(output))
    return fitted
