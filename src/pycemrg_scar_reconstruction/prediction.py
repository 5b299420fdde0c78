"""MC-dropout prediction on mesh nodes: probability (mean) and uncertainty (standard deviation).

Nodes are processed in batches sized from a memory budget, so meshes of millions of nodes fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from .device import memory_budget_mb, resolve_device
from .fitted import FittedModel
from .forward import group_memberships, supervised

logger = logging.getLogger(__name__)

#: Nodes further than this (normalised units) outside the training box count as extrapolated.
EXTRAPOLATION_MARGIN = 0.1


@dataclass(frozen=True)
class Prediction:
    """Per-node outputs, each (N,) float32 (``supervised`` uint8)."""

    probability: np.ndarray
    uncertainty: np.ndarray
    supervised: np.ndarray

    def point_arrays(self, threshold: float | None = None) -> dict[str, np.ndarray]:
        """The output point arrays by their documented names."""
        out = {
            "scar_probability": self.probability,
            "scar_uncertainty": self.uncertainty,
            "scar_supervised": self.supervised,
        }
        if threshold is not None:
            out["scar_binary"] = (self.probability >= threshold).astype(np.uint8)
        return out


#: Beyond this many nodes a batch gains nothing (per-call overhead is already negligible).
MAX_BATCH_NODES = 262_144


def nodes_per_batch(width: int, samples: int, memory_mb: int, wide_copies: int = 1) -> int:
    """Nodes per prediction batch so that activations stay within ``memory_mb`` MiB.

    ``wide_copies`` is how many copies of the ``width``-wide activations a node has at once: 1 when
    only the output layer follows dropout (the masks are folded into its weights), ``samples`` when
    hidden layers run per pass. Clamped to [1024, :data:`MAX_BATCH_NODES`].
    """
    bytes_per_node = 4 * (4 * width * wide_copies + 4 * samples)  # float32; ~4 live activations per layer
    return int(min(max(1024, memory_mb * 2**20 // bytes_per_node), MAX_BATCH_NODES))


def mc_predict(
    fitted: FittedModel,
    points: np.ndarray,
    samples: int,
    seed: int,
    device: str = "auto",
    memory_mb: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MC-dropout mean and standard deviation (ddof 0) over ``samples`` passes.

    Parameters
    ----------
    fitted : the trained model.
    points : (N, 3) world mm.
    samples : T, the number of stochastic passes.
    seed : seed of the dropout masks; one mask per pass shared by all nodes, so the result does
        not depend on the batch size or the global torch RNG.

    Returns
    -------
    mean, std : (N,) float32.
    """
    dev = resolve_device(device)
    net = fitted.net.to(dev)
    x_all = torch.as_tensor(fitted.normalised(points), dtype=torch.float32)
    n = x_all.shape[0]
    cfg = fitted.config.model
    width = max(cfg.width, 2 * cfg.fourier_features if cfg.encoding == "fourier" else 3)
    per_pass_hidden = cfg.dropout > 0 and cfg.dropout_position == "all" and cfg.depth > 1
    step = nodes_per_batch(width, samples, memory_budget_mb(dev, memory_mb), samples if per_pass_hidden else 1)
    mean = np.empty(n, dtype=np.float32)
    std = np.empty(n, dtype=np.float32)
    masks = [m.to(dev) for m in net.sample_masks(samples, torch.Generator().manual_seed(seed))]
    with torch.no_grad():
        for start in range(0, n, step):  # batches of nodes, not single nodes
            x = x_all[start : start + step].to(dev)
            p = net(x, samples=samples, dropout=samples > 1, masks=masks)
            mean[start : start + step] = p.mean(0).cpu().numpy()
            std[start : start + step] = p.std(0, correction=0).cpu().numpy()
    fitted.net.cpu()
    return mean, std


def supervised_nodes(fitted: FittedModel, points: np.ndarray) -> np.ndarray:
    """(N,) uint8: 1 where the node lies in the prism of any training group (:func:`.forward.supervised`)."""
    node, _ = group_memberships(points, fitted.stacks, fitted.group_keys)
    return supervised(len(points), node).astype(np.uint8)


def extrapolated_share(fitted: FittedModel, points: np.ndarray) -> float:
    """Share of nodes outside the training box by more than :data:`EXTRAPOLATION_MARGIN`."""
    x = fitted.normalised(points)
    return float(np.mean(np.abs(x).max(axis=1) > 1.0 + EXTRAPOLATION_MARGIN))


def predict_nodes(
    fitted: FittedModel,
    points: np.ndarray,
    samples: int,
    seed: int,
    device: str = "auto",
    memory_mb: int | None = None,
) -> Prediction:
    """Probability, uncertainty and supervision flag for every node (world mm)."""
    share = extrapolated_share(fitted, points)
    if share > 0.01:
        logger.warning(
            "%.0f%% of the mesh lies well outside the region the model was trained on; predictions there are extrapolated",
            100 * share,
        )
    mean, std = mc_predict(fitted, points, samples, seed, device, memory_mb)
    return Prediction(probability=mean, uncertainty=std, supervised=supervised_nodes(fitted, points))
