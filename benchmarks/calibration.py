"""Calibration of the uncertainty on held-out pixels: the MC spread as it is, one scale, the shipped map.

On the ten cases of ``crossval.py`` and the eight fresh ones of ``simulated.py`` (seeds, spacing
8-12 mm, noise, uncorrected breath-hold shifts, raw intensities, scar sizes, biventricular meshes),
every slice is left out once with the defaults (as ``crossval`` does) and its pixels predicted.
The expected calibration error (ECE, central intervals at levels 0.1-0.9) is printed:

- before: the MC spread as a Gaussian standard deviation;
- one scale: the spread times one robust factor (the recalibration shipped before the map);
- shipped: :func:`heldout.calibration`: the fold's fit residual sd added to the spread, and the
  held-out quantile map. Both recalibrations are fitted on one half of the slices and checked on
  the other (odd / even slices as ``crossval`` reports it, and the harder lower / upper half of
  each stack), so "after" is never judged on the pixels it was fitted to;
- rank: Spearman of the shipped sigma with the held-out |error| (what the ECE cannot show).

Issue 17's target is an ECE <= 0.05 after recalibration.

    .venv/bin/python benchmarks/calibration.py [--nodes 40000] [--cases crossval fresh] [--seeds ...] [--save DIR]

``--save`` keeps each case's held-out error, spread, floor and slice of every pixel (one ``.npz``
each), so other recalibrations can be compared without training again.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _cases import synthetic_data, varied_case
from crossval import CASES as TUNING_CASES
from scipy.stats import norm
from simulated import CASES as FRESH_CASES

from pycemrg_scar_reconstruction import RuntimeConfig, TrainConfig
from pycemrg_scar_reconstruction.heldout import (
    CALIBRATION_LEVELS,
    calibration,
    fold_workers,
    run_folds,
    slice_folds,
)

QUIET = RuntimeConfig(quiet=True)


def one_scale_ece(error: np.ndarray, spread: np.ndarray, half: np.ndarray) -> float:
    """ECE of the spread times ``median(|error| / spread) / z(0.75)`` fitted on the other half."""
    z = norm.ppf(0.5 + CALIBRATION_LEVELS / 2)
    e, s = np.abs(error), np.maximum(spread, 1e-6)
    eces = []
    for fit_on, check_on in ((half, ~half), (~half, half)):  # each direction alone, as calibration() does
        scale = np.median(e[fit_on] / s[fit_on]) / norm.ppf(0.75)
        coverage = np.array([np.mean(e[check_on] <= zq * scale * s[check_on]) for zq in z])
        eces.append(np.mean(np.abs(coverage - CALIBRATION_LEVELS)))
    return float(np.mean(eces))


def held_out(data, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-slice-out: (error, spread, floor) of every group."""
    fold = slice_folds(data)
    helds = [fold == f for f in np.unique(fold)]
    n = data.n_groups
    error, spread, floor = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for groups, m, sd, fold_floor in run_folds(data, helds, config, QUIET, 20, 0, fold_workers(QUIET, len(helds))):
        error[groups], spread[groups], floor[groups] = m - data.group_target[groups], sd, fold_floor
    return error, spread, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40_000)
    parser.add_argument("--cases", nargs="+", choices=("crossval", "fresh"), default=["crossval", "fresh"])
    parser.add_argument("--seeds", type=int, nargs="+", help="only the cases of these seeds")
    parser.add_argument("--save", type=Path, help="keep each case's per-pixel figures here")
    args = parser.parse_args()
    print(f"nodes~{args.nodes}; load {os.getloadavg()[0]:.2f}")
    rows = [(*row, False) for row in TUNING_CASES] if "crossval" in args.cases else []
    rows += FRESH_CASES if "fresh" in args.cases else []
    rows = [row for row in rows if args.seeds is None or row[0] in args.seeds]
    print(
        "| seed | shift | kind | scar scale | BiV | ECE before | one scale (odd/even) | shipped (odd/even) | "
        "shipped (lower/upper) | floor | factor | rank | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    config = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for seed, spacing, noise, shift, intensity, scale, biv in rows:
            start = time.perf_counter()
            case = varied_case(seed, spacing, noise, shift, intensity, scale, args.nodes, biv)
            data, _, _ = synthetic_data(case, Path(tmp) / str(seed))
            error, spread, floor = held_out(data, config)
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                np.savez(
                    args.save / f"case{seed:02d}.npz",
                    error=error,
                    spread=spread,
                    floor=floor,
                    stack=data.group_stack,
                    slice=data.group_slice,
                    target=data.group_target,
                )
            k = data.group_slice
            lower = np.zeros(data.n_groups, bool)
            for s, g in enumerate(data.stacks):
                lower |= (data.group_stack == s) & (k < g.n_slices / 2)
            odd = calibration(error, spread, floor, k % 2 == 1)
            halves = calibration(error, spread, floor, lower)
            scaled = one_scale_ece(error, spread, k % 2 == 1)
            results.append((odd["ece_before"], scaled, odd["ece_after"], halves["ece_after"], odd["rank_correlation"]))
            kind = "intensity" if intensity else "probability"
            print(
                f"| {seed} | {shift:g} | {kind} | {scale:g} | {'yes' if biv else 'no'} | {odd['ece_before']:.3f} | "
                f"{scaled:.3f} | {odd['ece_after']:.3f} | {halves['ece_after']:.3f} | {odd['floor']:.3f} | "
                f"{odd['factor']:.2f} | {odd['rank_correlation']:.2f} | {time.perf_counter() - start:.0f} |",
                flush=True,
            )
    v = np.asarray(results)
    for i, name in enumerate(("before", "one scale (odd/even)", "shipped (odd/even)", "shipped (lower/upper)")):
        print(f"{name}: mean ECE {v[:, i].mean():.3f}, at most 0.05 on {int((v[:, i] <= 0.05).sum())} of {len(v)} cases")
    print(f"rank correlation of sigma with |error|: {v[:, 4].min():.2f}-{v[:, 4].max():.2f}")


if __name__ == "__main__":
    main()
