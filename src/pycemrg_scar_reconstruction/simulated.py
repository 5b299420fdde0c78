"""Simulated accuracy: a parametric bootstrap of the whole pipeline on a stand-in truth like the
reconstructed scar (a different estimate of the 3D accuracy than the held-out slices)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .config import RuntimeConfig, TrainConfig
from .data import TrainingData
from .folds import residual_sd
from .metrics import dice
from .training import fit


def simulated_targets(
    data: TrainingData, fitted: Any, mc_samples: int = 20, mc_seed: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float]:
    """A stand-in truth like the reconstructed scar, and the pixels the stack would show of it.

    The reconstruction's probability thresholded at 0.5 stands in for the truth ((N,) 0/1). A
    pixel shows the mean of the stand-in over the nodes of its prism; when the slices' offsets were
    measured (``data.measured_offsets``), over the prism where the slice was acquired
    (:meth:`.TrainingData.acquired_mean`), so the simulated pixels carry the misregistration the
    memberships still have. Plus
    Gaussian noise with the RMS of the fit's residuals (the pixel noise and whatever the network
    could not fit), clipped to [0, 1]: the simulated targets ((G,)). Returns (truth, targets, noise sd).
    """
    from .prediction import predict_nodes

    p = predict_nodes(fitted, data.points, mc_samples, mc_seed).probability.astype(np.float64)
    truth = (p >= 0.5).astype(np.float64)
    sd = residual_sd(data, data.group_mean(p))
    noise = np.random.default_rng(seed).normal(0.0, sd, data.n_groups)
    return truth, np.clip(data.acquired_mean(truth) + noise, 0.0, 1.0), sd


def simulated_accuracy(
    data: TrainingData,
    fitted: Any,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    mc_samples: int = 20,
    mc_seed: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """How well the same pipeline recovers a scar like the reconstructed one (a parametric bootstrap).

    A second training with the same settings on :func:`simulated_targets`; its Dice and MAE
    against the stand-in truth (all nodes). It sees the scar's size and shape, the slice geometry,
    the noise and, when measured, the slices' misregistration (``misregistration_mm``: in-plane RMS
    of the offsets left in the memberships; None when not measured, so a misregistration is then
    seen only through the residuals).
    """
    from .prediction import predict_nodes

    truth, targets, sd = simulated_targets(data, fitted, mc_samples, mc_seed, seed)
    refit = fit(replace(data, group_target=targets.astype(np.float32)), config, runtime, progress=False)
    q = predict_nodes(refit, data.points, mc_samples, mc_seed).probability.astype(np.float64)
    return {
        "dice": float(dice(q, truth)),
        "mae": float(np.mean(np.abs(q - truth))),
        "noise_sd": sd,
        "misregistration_mm": data.misregistration_mm(),
    }
