"""Scores: group-constraint errors, and agreement with a ground truth (synthetic cases)."""

from __future__ import annotations

import numpy as np

from .data import TrainingData


def dice(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Dice overlap of ``pred >= threshold`` and ``truth >= threshold`` (1.0 when both are empty)."""
    p, t = pred >= threshold, truth >= threshold
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else float(2 * np.sum(p & t) / denom)


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - truth)))


def group_errors(data: TrainingData, node_values: np.ndarray) -> np.ndarray:
    """(G,) |mean of ``node_values`` over each group - group target|."""
    return np.abs(data.group_mean(np.asarray(node_values, np.float64)) - data.group_target)
