"""Calibration of the uncertainty on held-out pixels: the MC spread, one scale, a floor, the shipped recalibration.

On the ten cases of ``crossval.py`` and the eight fresh ones of ``simulated.py`` (seeds, spacing
8-12 mm, noise, uncorrected breath-hold shifts, raw intensities, scar sizes, biventricular meshes),
every slice is left out once with the defaults (as ``crossval`` does) and its pixels predicted.
The expected calibration error (ECE, central intervals at levels 0.1-0.9) is printed:

- before: the MC spread as a Gaussian sd;
- one scale: the spread times one robust factor (the recalibration shipped before);
- floor + map: the fold's fit residual sd added to the spread and one held-out quantile map;
- shipped: :func:`calibration.calibration`: the floor, a border term ``c sqrt(p (1 - p))`` of the
  predicted probability and a quantile map per band of probability; overall and per band
  (background / border / scar; "-" where a band has too few pixels to judge).
All recalibrations are fitted on one half of the slices and checked on the other, both ways, and
the two ECEs averaged: odd against even slices (as ``crossval`` reports it), and for the shipped one
also the lower against the upper half of the stack. "rank" is Spearman of the uncertainty with the
held-out |error| (what the ECE cannot show), for floor + map and shipped.

Issue 17's target is an ECE <= 0.05 after recalibration.

    .venv/bin/python benchmarks/calibration.py [--nodes 40000] [--cases crossval fresh] [--seeds ...] [--save DIR]
    .venv/bin/python benchmarks/calibration.py --load DIR     # re-score saved cases

``--save`` keeps each case's held-out error, spread, floor and slice of every pixel (one ``.npz``
each), so recalibrations can be compared without training again.
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
from scipy.stats import norm, spearmanr
from simulated import CASES as FRESH_CASES

from pycemrg_scar_reconstruction import RuntimeConfig, TrainConfig
from pycemrg_scar_reconstruction.calibration import (
    CALIBRATION_LEVELS,
    MAP_LEVELS,
    calibration,
    interval_multipliers,
)
from pycemrg_scar_reconstruction.folds import fold_workers, run_folds
from pycemrg_scar_reconstruction.heldout import slice_folds

QUIET = RuntimeConfig(quiet=True)
#: (seed, spacing mm, noise sd, shift sd mm, intensity, scar scale, biventricular)
ALL_CASES = [(*row, False) for row in TUNING_CASES] + list(FRESH_CASES)


def _ece(error: np.ndarray, sigma: np.ndarray, multipliers: np.ndarray) -> float:
    coverage = np.array([np.mean(error <= m * sigma) for m in multipliers])
    return float(np.mean(np.abs(coverage - CALIBRATION_LEVELS)))


def one_scale_ece(error: np.ndarray, spread: np.ndarray, half: np.ndarray) -> float:
    """ECE of the spread times ``median(|error| / spread) / z(0.75)`` fitted on the other half."""
    z = norm.ppf(0.5 + CALIBRATION_LEVELS / 2)
    e, s = np.abs(error), np.maximum(spread, 1e-6)
    eces = []
    for fit_on, check_on in ((half, ~half), (~half, half)):  # each direction alone, as calibration() does
        scale = np.median(e[fit_on] / s[fit_on]) / norm.ppf(0.75)
        eces.append(_ece(e[check_on], s[check_on], scale * z))
    return float(np.mean(eces))


def floor_map(error: np.ndarray, spread: np.ndarray, floor: np.ndarray, half: np.ndarray) -> tuple[float, float]:
    """(ECE on the other half, rank) of ``sqrt(floor^2 + spread^2)`` with one quantile map."""
    e, sigma = np.abs(error), np.sqrt(floor**2 + np.maximum(spread, 1e-6) ** 2)
    eces = []
    for fit_on, check_on in ((half, ~half), (~half, half)):
        m = np.interp(CALIBRATION_LEVELS, MAP_LEVELS, interval_multipliers(e[fit_on], sigma[fit_on]))
        eces.append(_ece(e[check_on], sigma[check_on], m))
    return float(np.mean(eces)), float(spearmanr(sigma, e)[0])


def held_out(data, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-slice-out: (error, spread, floor) of every group (the prediction is error + target)."""
    fold = slice_folds(data)
    helds = [fold == f for f in np.unique(fold)]
    n = data.n_groups
    error, spread, floor = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for groups, m, sd, fold_floor in run_folds(data, helds, config, QUIET, 20, 0, fold_workers(QUIET, len(helds))):
        error[groups], spread[groups], floor[groups] = m - data.group_target[groups], sd, fold_floor
    return error, spread, floor


def run_case(row: tuple, nodes: int, tmp: Path) -> dict[str, np.ndarray]:
    """Leave-one-slice-out of one case: its per-pixel figures."""
    start = time.perf_counter()
    data, _, _ = synthetic_data(varied_case(*row[:6], nodes, row[6]), tmp / str(row[0]))
    error, spread, floor = held_out(data, TrainConfig())
    lower = np.zeros(data.n_groups, bool)
    for s, g in enumerate(data.stacks):
        lower |= (data.group_stack == s) & (data.group_slice < g.n_slices / 2)
    return {
        "row": np.asarray(row, np.float64),
        "error": error,
        "spread": spread,
        "floor": floor,
        "target": data.group_target,
        "slice": data.group_slice,
        "lower": lower,
        "seconds": np.float64(time.perf_counter() - start),
    }


def score(case: dict[str, np.ndarray]) -> tuple[str, list[float]]:
    """One table row of a case, and its figures for the summary."""
    seed, _, _, shift, intensity, scale, biv = case["row"]
    error, spread, floor = case["error"], case["spread"], case["floor"]
    mean, odd = error + case["target"], case["slice"] % 2 == 1
    shipped = calibration(error, spread, floor, mean, odd)
    halves = calibration(error, spread, floor, mean, case["lower"])
    scaled = one_scale_ece(error, spread, odd)
    plain_ece, plain_rank = floor_map(error, spread, floor, odd)
    bands = " / ".join("-" if v != v else f"{v:.3f}" for v in shipped["ece_by_band"].values())
    factors = " / ".join(f"{f:.2f}" for f in shipped["factors"])
    line = (
        f"| {int(seed)} | {shift:g} | {'intensity' if intensity else 'probability'} | {scale:g} | "
        f"{'yes' if biv else 'no'} | {shipped['ece_before']:.3f} | {scaled:.3f} | {plain_ece:.3f} | "
        f"{shipped['ece_after']:.3f} | {bands} | {halves['ece_after']:.3f} | {shipped['floor']:.3f} | "
        f"{shipped['border']:.3f} | {factors} | {plain_rank:.2f} / {shipped['rank_correlation']:.2f} | "
        f"{float(case['seconds']):.0f} |"
    )
    figures = [shipped["ece_before"], scaled, plain_ece, shipped["ece_after"], *shipped["ece_by_band"].values()]
    return line, [*figures, halves["ece_after"], plain_rank, shipped["rank_correlation"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40_000)
    parser.add_argument("--cases", nargs="+", choices=("crossval", "fresh"), default=["crossval", "fresh"])
    parser.add_argument("--seeds", type=int, nargs="+", help="only the cases of these seeds")
    parser.add_argument("--save", type=Path, help="keep each case's per-pixel figures here")
    parser.add_argument("--load", type=Path, help="re-score the cases saved here (no training)")
    args = parser.parse_args()
    print(f"nodes~{args.nodes}; load {os.getloadavg()[0]:.2f}")
    rows = ALL_CASES[: len(TUNING_CASES)] if "crossval" in args.cases else []
    rows += ALL_CASES[len(TUNING_CASES) :] if "fresh" in args.cases else []
    rows = [row for row in rows if args.seeds is None or row[0] in args.seeds]
    print(
        "| seed | shift | kind | scar scale | BiV | ECE before | one scale | floor + map | shipped | "
        "shipped by band: background / border / scar | shipped (lower/upper) | floor | border c | "
        "factors by band | rank: floor + map / shipped | s |"
    )
    print("|" + "---|" * 16)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            saved = args.load / f"case{row[0]:02d}.npz" if args.load else None
            if saved is not None and not saved.exists():
                continue
            case = dict(np.load(saved)) if saved is not None else run_case(row, args.nodes, Path(tmp))
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                np.savez(args.save / f"case{row[0]:02d}.npz", **case)
            line, figures = score(case)
            print(line, flush=True)
            results.append(figures)
    v = np.asarray(results)
    names = ("before", "one scale", "floor + map", "shipped", "shipped, background", "shipped, border", "shipped, scar")
    for i, name in enumerate([*names, "shipped (lower/upper)"]):
        x = v[:, i][np.isfinite(v[:, i])]
        print(f"{name}: mean ECE {x.mean():.3f}, at most 0.05 on {int((x <= 0.05).sum())} of {len(x)} cases")
    for i, name in ((8, "floor + map"), (9, "shipped")):
        print(f"rank correlation of the uncertainty with |error|, {name}: {v[:, i].min():.2f}-{v[:, i].max():.2f}")


if __name__ == "__main__":
    main()
