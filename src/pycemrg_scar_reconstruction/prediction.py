"""MC-dropout prediction on mesh nodes: probability (mean) and uncertainty (standard deviation;
on a calibrated model the half-width of the held-out-calibrated central 68% interval).

Nodes are processed in batches sized from a memory budget, so meshes of millions of nodes fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .calibration import calibrated_uncertainty
from .device import memory_budget_mb, resolve_device
from .fitted import FittedModel
from .forward import group_memberships, supervised
from .progress import Ticker

logger = logging.getLogger(__name__)

#: Nodes further than this (normalised units) outside the training box count as extrapolated.
EXTRAPOLATION_MARGIN = 0.1


@dataclass(frozen=True)
class Prediction:
    """Per-node outputs, each (N,): float32 probability, uncertainty and distance (mm); uint8 flags.

    ``support_mm`` is the cutoff beyond which nodes outside the observed coverage got the
    ``prior`` (``given_prior``; see :func:`apply_support`); ``prior_share`` the share of the
    region's nodes that did. ``burden``: the scar burden by element volume (set by ``predict``;
    None without volume cells). ``mesh`` is the mesh ``predict`` wrote, with these arrays (a pyvista
    mesh; None when nothing or openCARP files were written).
    """

    probability: np.ndarray
    uncertainty: np.ndarray
    supervised: np.ndarray
    distance: np.ndarray
    in_region: np.ndarray
    support_mm: float
    prior: float
    prior_share: float
    given_prior: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)  # ``run``'s wall time per stage
    burden: dict[str, float] | None = None  # :func:`.regions.scar_burden` of the mesh's (region's) elements
    mesh: Any = None

    def point_arrays(self, threshold: float | None = None) -> dict[str, np.ndarray]:
        """The output point arrays by their documented names."""
        out = {
            "scar_probability": self.probability,
            "scar_uncertainty": self.uncertainty,
            "scar_supervised": self.supervised,
            "scar_distance_mm": self.distance,
            "scar_in_region": self.in_region,
            "scar_prior": self.given_prior,
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
    ticker = Ticker()
    with torch.no_grad():
        for start in range(0, n, step):  # batches of nodes, not single nodes
            ticker.tick("predicting: %d of %d nodes, %.0f s", start, n, ticker.elapsed)
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


def mesh_mismatch(fitted: FittedModel, points: np.ndarray, supervised: np.ndarray | None = None) -> str | None:
    """Why ``points`` (world mm) are not the mesh the model was trained on, or None when they may be.

    Refused: more than half of the nodes well outside the training box, or under half as large a
    share of nodes inside the trained pixels' prisms as the training mesh had (a mirrored mesh or
    another patient's lands in pixels that were never trained). ``supervised``: (P,) those nodes
    (:func:`supervised_nodes`) when already known.
    """
    outside = extrapolated_share(fitted, points)
    if outside > 0.5:
        return f"{100 * outside:.0f}% of the mesh lies outside the region the model was trained on"
    trained = fitted.data_summary.get("supervised_nodes", 0) / max(fitted.data_summary.get("nodes", 1), 1)
    if supervised is None:
        supervised = supervised_nodes(fitted, points)
    share = float(np.mean(supervised)) if len(points) else 0.0
    if share < 0.5 * trained:
        return (
            f"only {100 * share:.0f}% of the mesh lies in the trained pixels' prisms "
            f"({100 * trained:.0f}% of the training mesh did)"
        )
    return None


def default_support_mm(fitted: FittedModel) -> float:
    """Half the largest slice spacing of the training stacks (of one-slice stacks: half their thickness)."""
    spacings = [float(g.spacing[g.axis]) for g in fitted.stacks if g.n_slices > 1]
    return 0.5 * (max(spacings) if spacings else max(g.thickness for g in fitted.stacks))


def support_distance(points: np.ndarray, supervised_mask: np.ndarray, workers: int = 1) -> np.ndarray:
    """(N,) mm from each node to the nearest supervised node (0 for supervised nodes; inf when there
    are none); ``workers`` threads answer the queries (the same distances with any number)."""
    from scipy.spatial import cKDTree

    out = np.zeros(len(points))
    if not supervised_mask.any():
        out[:] = np.inf
        return out
    free = ~supervised_mask
    if free.any():
        # an unbalanced, uncompacted tree builds in a third of the time and answers the same nearest
        # distances (measured at 1.1 million supervised nodes: 0.15 s against 0.38 s to build)
        tree = cKDTree(points[supervised_mask], balanced_tree=False, compact_nodes=False)
        out[free] = tree.query(points[free], workers=workers)[0]
    return out


def outside_distance(points: np.ndarray, supervised_mask: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(N,) mm by which each of the ``candidates`` lies outside the supervised nodes' convex hull (0 inside; inf
    for the rest). The hull is the extent the images cover: between slices, between long-axis views.

    The distance is the largest signed distance to the hull's facet planes: exact where the
    nearest hull point is on a facet, less near its edges and corners. Supervised nodes too few or
    too flat for a hull: the candidates keep inf (every one lies beyond the coverage).
    """
    from scipy.spatial import ConvexHull, QhullError

    out = np.full(len(points), np.inf)
    idx = np.flatnonzero(candidates)
    if len(idx) == 0 or supervised_mask.sum() < 4:
        return out
    try:
        hull = ConvexHull(points[supervised_mask])
    except QhullError:
        return out
    normals, offsets = hull.equations[:, :3], hull.equations[:, 3]
    # blocks of at most 4,096 nodes x a million products bound the (nodes, facets) matrix and keep
    # it in cache (a fine mesh's hull has hundreds of thousands of facets); the running maximum is
    # the same in any order
    for first in range(0, len(idx), 4096):
        part = idx[first : first + 4096]
        x, best = points[part], np.full(len(part), -np.inf)
        block = 1_000_000 // len(part)
        for start in range(0, len(offsets), block):
            d = x @ normals[start : start + block].T
            d += offsets[start : start + block]
            np.maximum(best, d.max(axis=1), out=best)
        out[part] = np.maximum(best, 0.0)
    return out


def apply_support(
    probability: np.ndarray,
    uncertainty: np.ndarray,
    distance: np.ndarray,
    support_mm: float,
    prior: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prior where no image speaks, with an uncertainty that says it is a guess.

    A node whose ``distance`` ((N,) mm: beyond the images' coverage, :func:`outside_distance`; or,
    version 0.2.0's rule, to the nearest supervised node) exceeds ``support_mm`` gets probability
    ``prior`` and uncertainty ``max(MC spread, 0.5 * min(1, d / (2 * support_mm)))``: at least 0.25
    just beyond the cutoff, growing with d to 0.5 (the largest standard deviation a value in
    [0, 1] can have) at twice it.

    Returns
    -------
    probability, uncertainty : (N,) float32; beyond : (N,) bool, the nodes that got the prior.
    """
    beyond = distance > support_mm
    p = probability.astype(np.float32, copy=True)
    u = uncertainty.astype(np.float32, copy=True)
    p[beyond] = prior
    u[beyond] = np.maximum(u[beyond], 0.5 * np.minimum(1.0, distance[beyond] / (2 * support_mm)))
    return p, u, beyond


def predict_nodes(
    fitted: FittedModel,
    points: np.ndarray,
    samples: int,
    seed: int,
    device: str = "auto",
    memory_mb: int | None = None,
    support_mm: float | None = None,
    prior: float = 0.0,
    region: np.ndarray | None = None,
    coverage: bool = True,
    supervised: np.ndarray | None = None,
) -> Prediction:
    """Probability, uncertainty, supervision, support distance and region flag for every node (world mm).

    Nodes outside ``region`` ((N,) bool; None: every node) get probability, uncertainty and
    supervision 0 and are not predicted. Nodes further than ``support_mm`` (default:
    :func:`default_support_mm`) outside the supervised nodes' convex hull get the ``prior``
    (:func:`apply_support`); with ``coverage=False`` (version 0.2.0's rule, kept for the
    benchmarks), nodes further than it from any supervised node. ``supervised``: (N,) the nodes in
    a training group's prism (:func:`supervised_nodes`) when already known.
    """
    n = len(points)
    in_region = np.ones(n, bool) if region is None else np.asarray(region, bool)
    share = extrapolated_share(fitted, points[in_region])
    if share > 0.01:
        logger.warning(
            "%.0f%% of the mesh lies well outside the region the model was trained on; predictions there are extrapolated",
            100 * share,
        )
    mean, std = np.zeros(n, np.float32), np.zeros(n, np.float32)
    mean[in_region], std[in_region] = mc_predict(fitted, points[in_region], samples, seed, device, memory_mb)
    std = calibrated_uncertainty(
        mean, std, fitted.uncertainty_floor, fitted.uncertainty_border, fitted.uncertainty_factors
    )  # held-out calibration (the spread as is on a model not calibrated)
    sup = (supervised_nodes(fitted, points) if supervised is None else np.asarray(supervised)).astype(bool) & in_region
    distance = support_distance(points, sup, workers=torch.get_num_threads())  # the caller's thread count
    cutoff = default_support_mm(fitted) if support_mm is None else float(support_mm)
    # the hull's distance is never more than the nearest supervised node's: only those beyond the cutoff can pass it
    outside = outside_distance(points, sup, (distance > cutoff) & in_region) if coverage else distance
    mean, std, beyond = apply_support(mean, std, np.minimum(outside, distance), cutoff, prior)
    mean[~in_region], std[~in_region] = 0.0, 0.0
    beyond &= in_region
    prior_share = float(beyond.sum() / max(in_region.sum(), 1))
    if prior_share > 0:
        logger.info(
            "%.1f%% of the nodes lie more than %.3g mm beyond the images' coverage: they get the prior %.3g",
            100 * prior_share,
            cutoff,
            prior,
        )
    return Prediction(
        probability=mean,
        uncertainty=std,
        supervised=sup.astype(np.uint8),
        distance=distance.astype(np.float32),
        in_region=in_region.astype(np.uint8),
        support_mm=cutoff,
        prior=prior,
        prior_share=prior_share,
        given_prior=beyond.astype(np.uint8),
    )
