"""Training folds: a training without some groups and its predictions of them, one fold or many
at once in spawned worker processes (used by :mod:`.heldout` and the calibration)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .config import RuntimeConfig, TrainConfig
from .data import TrainingData
from .progress import Ticker
from .training import fit


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
        registration=data.registration,
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
