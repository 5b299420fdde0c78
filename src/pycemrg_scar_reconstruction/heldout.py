"""Held-out accuracy from a patient's own data: cross-validation over whole slices (or views).

Each fold leaves out whole slices, trains on the rest with the same settings, and predicts the
left-out pixels (their groups' mean, with its MC-dropout spread over the same passes). A pixel's
error there says how right the reconstruction is *between* the slices it was trained on, which
the fit to the training pixels (the group check) cannot say.

The slice baselines are computed on the same left-out pixels from the pixels of the neighbouring
slices of the same stack (nearest: the slice before, or the one after at the stack's ends;
linear: the mean of the two, or the one there is at the ends).

Folds are independent trainings: :func:`.folds.run_folds` runs them one after another or in
spawned worker processes. :func:`.simulated.simulated_accuracy` is a different estimate of the 3D
accuracy: a retraining on the pixels the reconstruction itself would give, scored against it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .calibration import calibration
from .config import RuntimeConfig, TrainConfig
from .data import TrainingData
from .folds import fold_workers, run_folds
from .geometry import round_half_up
from .metrics import average_precision, dice

logger = logging.getLogger(__name__)


def slice_folds(data: TrainingData, folds: int | None = None) -> np.ndarray:
    """(G,) fold of each group: every (stack, slice) its own fold (leave-one-slice-out), or with
    ``folds`` the slices dealt round-robin into that many folds (neighbouring slices apart)."""
    _, index = np.unique(np.column_stack([data.group_stack, data.group_slice]), axis=0, return_inverse=True)
    index = np.asarray(index).ravel()
    return index if folds is None else index % folds


def labelled_slices(data: TrainingData) -> list[np.ndarray]:
    """Per stack, its slices that have pixels with a target, ascending. A real stack's basal and
    apical slices are often untraced: its first and last *labelled* slices are where the held-out
    slices are extrapolated, not its first and last slices."""
    return [np.unique(data.group_slice[data.group_stack == s]) for s in range(len(data.stacks))]


def end_slices(data: TrainingData) -> set[tuple[int, int]]:
    """(stack, slice) of each stack's first and last labelled slice (:func:`labelled_slices`)."""
    return {(s, int(k)) for s, ks in enumerate(labelled_slices(data)) if len(ks) for k in (ks[0], ks[-1])}


def gap_folds(data: TrainingData, gaps: tuple[int, ...] = (2, 3)) -> list[tuple[int, np.ndarray]]:
    """The folds of :func:`gap_predictions`: (gap, (G,) bool held) for every labelled slice with a
    labelled slice on either side (gap 2), and every pair of consecutive labelled slices with one
    on either side of the pair (gap 3)."""
    pairs = np.column_stack([data.group_stack, data.group_slice])
    runs: list[tuple[int, np.ndarray]] = []
    for s, ks in enumerate(labelled_slices(data)):  # a handful of stacks, about two trainings per slice
        for gap, chosen in (
            (2, [ks[i : i + 1] for i in range(1, len(ks) - 1)]),
            (3, [ks[i : i + 2] for i in range(1, len(ks) - 2)]),
        ):
            for slices in chosen if gap in gaps else []:
                held = (pairs[:, 0] == s) & np.isin(pairs[:, 1], slices)
                if held.any() and not held.all():
                    runs.append((gap, held))
    return runs


def view_folds(data: TrainingData) -> np.ndarray:
    """(G,) fold of each group: its stack (each view left out whole)."""
    return np.asarray(data.group_stack, np.int64)


def training_values(data: TrainingData, held: np.ndarray, stack: int) -> np.ndarray:
    """Stack ``stack``'s image as the training data give it: each group's target at its voxel, NaN at
    the ``held`` groups ((G,) bool) and at pixels without a group. Shape: the stack's (I, J, K)."""
    values = np.full(data.stacks[stack].shape, np.nan)
    mine = ~held & (data.group_stack == stack)
    values[tuple(data.group_voxel[mine].T)] = data.group_target[mine]
    return values


def neighbour_baselines(data: TrainingData, held: np.ndarray) -> dict[str, np.ndarray]:
    """Nearest-slice and linear predictions of the ``held`` groups ((G,) bool) from the
    neighbouring slices' pixels of the same stack (NaN where neither neighbour slice has that
    pixel): at the same in-plane position, or, with per-slice breath-hold offsets, at the pixel
    that shows the same point of the heart."""
    out = {"nearest": np.full(int(held.sum()), np.nan), "linear": np.full(int(held.sum()), np.nan)}
    for s, g in enumerate(data.stacks):  # a handful of stacks
        values = training_values(data, held, s)
        idx = np.flatnonzero(held[held] & (data.group_stack[held] == s))
        if not len(idx):
            continue
        vox = data.group_voxel[held][idx]
        k = vox[:, g.axis]
        plane = list(g.inplane)
        shifts = g.index_offsets()[:, plane] if g.slice_offsets is not None else None
        neighbours = []
        for dk in (-1, 1):
            kk = k + dk
            inside = (kk >= 0) & (kk < g.n_slices)
            look = vox.copy()
            look[:, g.axis] = np.clip(kk, 0, g.n_slices - 1)
            if shifts is not None:  # the heart shown at a pixel of slice k is at that pixel + (d_kk - d_k) in slice kk
                moved = round_half_up(vox[:, plane] + shifts[look[:, g.axis]] - shifts[k])
                inside &= np.all((moved >= 0) & (moved < np.asarray(g.shape)[plane]), axis=1)
                look[:, plane] = moved
            v = np.full(len(idx), np.nan)
            v[inside] = values[tuple(look[inside].T)]
            neighbours.append(v)
        before, after = neighbours
        out["nearest"][idx] = np.where(np.isfinite(before), before, after)
        both = np.stack([before, after])
        count = np.isfinite(both).sum(axis=0)
        out["linear"][idx] = np.where(count > 0, np.nansum(both, axis=0) / np.maximum(count, 1), np.nan)
    return out


def _scores(target: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    ok = np.isfinite(predicted)
    t, p = target[ok], predicted[ok]
    if not len(t):
        return {
            "pixels": 0,
            "scar": 0,
            "mae": float("nan"),
            "rmse": float("nan"),
            "dice": float("nan"),
            "average_precision": None,
        }
    return {
        "pixels": int(len(t)),
        "scar": int(np.sum(t >= 0.5)),
        "mae": float(np.mean(np.abs(p - t))),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "dice": float(dice(p, t)),
        # threshold-free: how well the values rank the scar pixels first (None without scar)
        "average_precision": average_precision(p, t >= 0.5),
    }


def crossval(
    data: TrainingData,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    folds: int | None = None,
    holdout: str = "slices",
    mc_samples: int = 20,
    mc_seed: int = 0,
    workers: int | None = None,
) -> dict[str, Any]:
    """Cross-validate over whole slices (``holdout="slices"``; every slice once, or ``folds`` groups
    of slices) or whole stacks (``"views"``); ``workers`` folds at once (:func:`fold_workers`).

    Returns
    -------
    dict with ``holdout_dice``, ``holdout_mae``, ``holdout_rmse``, ``holdout_average_precision``
    (:func:`.metrics.average_precision` of the scar pixels), ``pixels``, ``scar_pixels`` (all held-out pixels),
    ``interior`` and ``end`` (the same for folds inside a stack and at its first or last labelled slice:
    extrapolation), ``baseline_dice`` / ``baseline_mae`` / ``baseline_average_precision`` per baseline (slices only),
    ``calibration`` (:func:`.calibration.calibration`), ``per_fold``, ``workers`` and ``seconds``.
    """
    start = time.perf_counter()
    if holdout not in ("slices", "views"):
        raise ValueError(f"holdout must be 'slices' or 'views', not {holdout!r}")
    fold_of = slice_folds(data, folds) if holdout == "slices" else view_folds(data)
    fold_ids = np.unique(fold_of)
    if len(fold_ids) < 2:
        from .errors import InputError

        raise InputError(f"cross-validation needs at least 2 folds; the data have {len(fold_ids)} (`holdout` {holdout})")
    first_last = end_slices(data)
    n = data.n_groups
    mean, spread, floor = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    base = {"nearest": np.full(n, np.nan), "linear": np.full(n, np.nan)}
    per_fold = []
    end_group = np.zeros(n, bool)
    helds = [fold_of == f for f in fold_ids]
    workers = fold_workers(runtime, len(helds), workers)
    for f, held, (groups, m, sd, fold_floor) in zip(
        fold_ids, helds, run_folds(data, helds, config, runtime, mc_samples, mc_seed, workers)
    ):
        mean[groups], spread[groups], floor[groups] = m, sd, fold_floor
        slices = {(int(s), int(k)) for s, k in zip(data.group_stack[held], data.group_slice[held])}
        is_end = holdout == "slices" and bool(slices & first_last)
        end_group[groups] = is_end
        if holdout == "slices":
            for name, values in neighbour_baselines(data, held).items():
                base[name][groups] = values
        row = {"fold": int(f), "slices": sorted(slices), "end": is_end, **_scores(data.group_target[groups], mean[groups])}
        per_fold.append(row)
        logger.info("fold %d: %d pixels, MAE %.4f", f, len(groups), row["mae"])
    everything = _scores(data.group_target, mean)
    out: dict[str, Any] = {
        "holdout": holdout,
        "folds": len(fold_ids),
        "holdout_dice": everything["dice"],
        "holdout_mae": everything["mae"],
        "holdout_rmse": everything["rmse"],
        "holdout_average_precision": everything["average_precision"],
        "pixels": everything["pixels"],
        "scar_pixels": everything["scar"],
        "interior": _scores(data.group_target[~end_group], mean[~end_group]),
        "end": _scores(data.group_target[end_group], mean[end_group]),
        "calibration": calibration(mean - data.group_target, spread, floor, mean, data.group_slice % 2 == 1),
        "per_fold": per_fold,
        "workers": workers,
    }
    if holdout == "slices":
        scored = {k: _scores(data.group_target, v) for k, v in base.items()}
        out["baseline_dice"] = {k: v["dice"] for k, v in scored.items()}
        out["baseline_mae"] = {k: v["mae"] for k, v in scored.items()}
        out["baseline_pixels"] = {k: v["pixels"] for k, v in scored.items()}
        out["baseline_average_precision"] = {k: v["average_precision"] for k, v in scored.items()}
    out["seconds"] = time.perf_counter() - start
    return out


def gap_predictions(
    data: TrainingData,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    mc_samples: int = 20,
    mc_seed: int = 0,
    workers: int | None = None,
    gaps: tuple[int, ...] = (2, 3),
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Held-out predictions of every interior labelled slice at gaps of 2 and 3 spacings
    (:func:`gap_folds`).

    Each interior slice k is left out alone (the gap between the bracketing training slices is
    twice the spacing, G = 2) and with its next labelled slice (G = 3; the pairs cover every slice
    that has training slices on both sides of the pair; a slice in two pairs gets the mean of both).

    Returns
    -------
    {gap: (mean, spread, floor)} for ``gaps`` (2, 3 or both), each (G,) over all groups, NaN where
    not predicted (floor: the fit residual sd of the fold that predicted the group).
    """
    runs = gap_folds(data, gaps)
    helds = [held for _, held in runs]
    results = run_folds(data, helds, config, runtime, mc_samples, mc_seed, fold_workers(runtime, len(helds), workers))
    out = {
        gap: (np.full(data.n_groups, np.nan), np.full(data.n_groups, np.nan), np.full(data.n_groups, np.nan)) for gap in gaps
    }
    for (gap, _), (groups, m, sd, fold_floor) in zip(runs, results):
        mean, spread, floor = out[gap]
        seen = np.isfinite(mean[groups])
        mean[groups] = np.where(seen, 0.5 * (mean[groups] + m), m)
        spread[groups] = np.where(seen, 0.5 * (spread[groups] + sd), sd)
        floor[groups] = np.where(seen, 0.5 * (floor[groups] + fold_floor), fold_floor)
    return out
