"""Held-out accuracy from a patient's own data: cross-validation over whole slices (or views).

Each fold leaves out whole slices, trains on the rest with the same settings, and predicts the
left-out pixels (their groups' mean, with its MC-dropout spread over the same passes). A pixel's
error there says how right the reconstruction is *between* the slices it was trained on, which
the fit to the training pixels (the group check) cannot say.

The slice baselines are computed on the same left-out pixels from the pixels of the neighbouring
slices of the same stack (nearest: the slice before, or the one after at the stack's ends;
linear: the mean of the two, or the one there is at the ends).

Folds are independent trainings: :func:`run_folds` runs them one after another or in spawned
worker processes. :func:`simulated_accuracy` is a different estimate of the 3D accuracy: a
retraining on the pixels the reconstruction itself would give, scored against it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .calibration import calibration
from .config import RuntimeConfig, TrainConfig
from .data import TrainingData
from .metrics import dice
from .progress import Ticker
from .training import fit

logger = logging.getLogger(__name__)


def slice_folds(data: TrainingData, folds: int | None = None) -> np.ndarray:
    """(G,) fold of each group: every (stack, slice) its own fold (leave-one-slice-out), or with
    ``folds`` the slices dealt round-robin into that many folds (neighbouring slices apart)."""
    _, index = np.unique(np.column_stack([data.group_stack, data.group_slice]), axis=0, return_inverse=True)
    index = np.asarray(index).ravel()
    return index if folds is None else index % folds


def view_folds(data: TrainingData) -> np.ndarray:
    """(G,) fold of each group: its stack (each view left out whole)."""
    return np.asarray(data.group_stack, np.int64)


def subset(data: TrainingData, keep: np.ndarray) -> TrainingData:
    """The training data of the groups where ``keep`` ((G,) bool) is True, memberships re-indexed."""
    keep = np.asarray(keep, bool)
    new_index = np.cumsum(keep) - 1
    members = keep[data.member_group]
    return TrainingData(
        points=data.points,
        member_node=data.member_node[members],
        member_group=new_index[data.member_group[members]],
        group_target=data.group_target[keep],
        group_count=data.group_count[keep],
        group_voxel=data.group_voxel[keep],
        group_stack=data.group_stack[keep],
        group_slice=data.group_slice[keep],
        norm_center=data.norm_center,
        norm_scale=data.norm_scale,
        stacks=data.stacks,
        stack_names=data.stack_names,
        stack_mapping=data.stack_mapping,
        measured_offsets=data.measured_offsets,
    )


def heldout_group_means(
    fitted: Any, data: TrainingData, groups: np.ndarray, samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """MC-dropout mean and spread of the group means of ``groups`` (indices into ``data``).

    Each pass predicts the groups' nodes with one dropout mask; a group's mean is taken per pass,
    and its mean and standard deviation over the passes are returned ((g,) each).
    """
    sel = np.isin(data.member_group, groups)
    nodes, local = data.member_node[sel], np.searchsorted(groups, data.member_group[sel])
    net = fitted.net.cpu().eval()
    x = torch.as_tensor(fitted.normalised(data.points[nodes]), dtype=torch.float32)
    masks = net.sample_masks(samples, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        p = net(x, samples=samples, dropout=samples > 1, masks=masks).numpy().astype(np.float64)  # (T, M)
    sums = np.zeros((samples, len(groups)))
    np.add.at(sums.T, local, p.T)  # per pass and group: the sum over its memberships
    means = sums / np.bincount(local, minlength=len(groups))[None, :]
    return means.mean(axis=0), means.std(axis=0)


def residual_sd(data: TrainingData, group_means: np.ndarray) -> float:
    """RMS of ``data``'s targets minus a fit's group means ((G,)): the part of a pixel the model
    does not explain even where it was trained (pixel noise, and what the network could not fit)."""
    return float(np.sqrt(np.mean((data.group_target - group_means) ** 2)))


def fit_residual_sd(fitted: Any, data: TrainingData, samples: int, seed: int) -> float:
    """:func:`residual_sd` of a fitted model's MC-mean group means over all groups of ``data``."""
    return residual_sd(data, heldout_group_means(fitted, data, np.arange(data.n_groups), samples, seed)[0])


def predict_held_out(
    data: TrainingData, held: np.ndarray, config: TrainConfig, runtime: RuntimeConfig, mc_samples: int, mc_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Train without the ``held`` groups ((G,) bool) and predict them.

    Returns (group indices, MC mean, spread, the fold's fit residual sd (:func:`fit_residual_sd`)).
    """
    train = subset(data, ~held)
    fitted = fit(train, config, runtime, progress=False)
    groups = np.flatnonzero(held)
    mean, spread = heldout_group_means(fitted, data, groups, mc_samples, mc_seed)
    return groups, mean, spread, fit_residual_sd(fitted, train, mc_samples, mc_seed)


#: The training data of a worker process (set once by :func:`_start_worker`, not sent per fold).
_WORKER_DATA: TrainingData | None = None


def _start_worker(data: TrainingData, threads: int) -> None:
    global _WORKER_DATA
    torch.set_num_threads(threads)
    _WORKER_DATA = data


def _worker_fold(
    held: np.ndarray, config: TrainConfig, runtime: RuntimeConfig, mc_samples: int, mc_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    assert _WORKER_DATA is not None
    return predict_held_out(_WORKER_DATA, held, config, runtime, mc_samples, mc_seed)


def fold_workers(runtime: RuntimeConfig, n_folds: int, workers: int | None = None) -> int:
    """Folds trained at once: ``workers`` when given, else one per CPU thread the runtime allows
    (:func:`.device.thread_count`; each worker then runs one thread), and 1 on a GPU or inside a
    daemon process (a cohort's Dask worker), which may not start processes."""
    import multiprocessing

    from .device import resolve_device, thread_count

    if multiprocessing.current_process().daemon:  # e.g. a Dask worker: it may not start processes
        return 1
    if workers is None:
        workers = 1 if resolve_device(runtime.device).type != "cpu" else thread_count(runtime)
    return max(1, min(workers, n_folds))


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start spawned workers without running the caller's script again.

    A spawned process re-runs the ``__main__`` module it finds by ``__spec__`` or ``__file__``, so
    a user's script without an ``if __name__ == "__main__":`` guard would run its top level (and
    this cross-validation) once more in every worker. The workers need only this package, so both
    are hidden while they start (an interactive session has neither).
    """
    main = sys.modules.get("__main__")
    if main is None or not hasattr(main, "__file__"):
        yield
        return
    path, spec = main.__file__, getattr(main, "__spec__", None)
    del main.__file__
    main.__spec__ = None
    try:
        yield
    finally:
        main.__file__, main.__spec__ = path, spec


def run_folds(
    data: TrainingData,
    helds: list[np.ndarray],
    config: TrainConfig,
    runtime: RuntimeConfig,
    mc_samples: int,
    mc_seed: int,
    workers: int = 1,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """:func:`predict_held_out` of every ``helds`` mask ((G,) bool each), in order.

    With ``workers`` > 1 the folds train at once in that many spawned processes (the data are sent
    once per process), each with ``threads // workers`` torch threads (at least 1). A small
    network does not use many threads well, so on many free cores each fold gets its own; on a
    loaded 2-core machine it gained nothing (docs/decisions.md).
    """
    from tqdm.auto import tqdm

    from .device import thread_count

    ticker = Ticker()
    bar = tqdm(total=len(helds), unit="fold", disable=True if runtime.quiet else None, leave=False, dynamic_ncols=True)
    results: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []

    def done(result: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> None:
        results.append(result)
        bar.update()
        ticker.tick("cross-validation: %d of %d folds, %.0f s", len(results), len(helds), ticker.elapsed)

    try:
        if workers <= 1:
            for held in helds:  # each fold a whole training
                done(predict_held_out(data, held, config, runtime, mc_samples, mc_seed))
            return results
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, thread_count(runtime) // workers)
        quiet = runtime.model_copy(update={"threads": threads, "quiet": True})
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker, initargs=(data, threads)
        ) as pool:
            with _main_not_reimported():  # the workers start at the first submits
                futures = [pool.submit(_worker_fold, held, config, quiet, mc_samples, mc_seed) for held in helds]
            try:
                for future in futures:  # in order: the results line up with ``helds``
                    done(future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return results
    finally:
        bar.close()


def neighbour_baselines(data: TrainingData, held: np.ndarray) -> dict[str, np.ndarray]:
    """Nearest-slice and linear predictions of the ``held`` groups ((G,) bool) from the other
    slices' pixels at the same in-plane position of the same stack (NaN where neither neighbour
    slice has that pixel)."""
    out = {"nearest": np.full(int(held.sum()), np.nan), "linear": np.full(int(held.sum()), np.nan)}
    train = ~held
    for s, g in enumerate(data.stacks):  # a handful of stacks
        values = np.full(g.shape, np.nan)
        mine = train & (data.group_stack == s)
        values[tuple(data.group_voxel[mine].T)] = data.group_target[mine]
        idx = np.flatnonzero(held[held] & (data.group_stack[held] == s))
        if not len(idx):
            continue
        vox = data.group_voxel[held][idx]
        k = vox[:, g.axis]
        neighbours = []
        for dk in (-1, 1):
            kk = k + dk
            inside = (kk >= 0) & (kk < g.n_slices)
            v = np.full(len(idx), np.nan)
            look = vox[inside].copy()
            look[:, g.axis] = kk[inside]
            v[inside] = values[tuple(look.T)]
            neighbours.append(v)
        before, after = neighbours
        out["nearest"][idx] = np.where(np.isfinite(before), before, after)
        both = np.stack([before, after])
        count = np.isfinite(both).sum(axis=0)
        out["linear"][idx] = np.where(count > 0, np.nansum(both, axis=0) / np.maximum(count, 1), np.nan)
    return out


def _scores(target: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(predicted)
    t, p = target[ok], predicted[ok]
    if not len(t):
        return {"pixels": 0, "mae": float("nan"), "rmse": float("nan"), "dice": float("nan")}
    return {
        "pixels": int(len(t)),
        "mae": float(np.mean(np.abs(p - t))),
        "rmse": float(np.sqrt(np.mean((p - t) ** 2))),
        "dice": float(dice(p, t)),
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
    dict with ``holdout_dice``, ``holdout_mae``, ``holdout_rmse`` (all held-out pixels),
    ``interior`` and ``end`` (the same for folds inside a stack and at its first or last slice:
    extrapolation), ``baseline_dice`` / ``baseline_mae`` per baseline (slices only),
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
    first_last = {(s, 0) for s in range(len(data.stacks))} | {(s, g.n_slices - 1) for s, g in enumerate(data.stacks)}
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
        "pixels": everything["pixels"],
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
    """Held-out predictions of every interior slice at gaps of 2 and 3 spacings.

    Each interior slice k is left out alone (the gap between the bracketing training slices is
    twice the spacing, G = 2) and with a neighbour (G = 3; the pairs (k, k + 1) cover every slice
    that has training slices on both sides of the pair; a slice in two pairs gets the mean of both).

    Returns
    -------
    {gap: (mean, spread, floor)} for ``gaps`` (2, 3 or both), each (G,) over all groups, NaN where
    not predicted (floor: the fit residual sd of the fold that predicted the group).
    """
    pairs = np.column_stack([data.group_stack, data.group_slice])
    runs: list[tuple[int, np.ndarray]] = []
    for s, g in enumerate(data.stacks):  # a handful of stacks, about two trainings per slice
        for gap, chosen in (
            (2, [(k,) for k in range(1, g.n_slices - 1)]),
            (3, [(k, k + 1) for k in range(1, g.n_slices - 2)]),
        ):
            for slices in chosen if gap in gaps else []:
                held = (pairs[:, 0] == s) & np.isin(pairs[:, 1], slices)
                if held.any() and not held.all():
                    runs.append((gap, held))
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
