"""Held-out Dice against the true Dice on varied cases: which estimator tracks the truth.

Cases vary the seed, scar size, slice spacing (8-12 mm), noise, breath-hold shift and input kind.
For each case the default reconstruction is trained on all slices and its true Dice (against the
3D truth) measured. Then every interior slice is predicted left out alone (a gap of 2 spacings)
and left out with a neighbour (gap 3) (:func:`heldout.gap_predictions`), and the fit of the full
model to its own pixels is kept (gap "0"). Each estimator of the true Dice is scored by its rank
correlation with the true Dice (target >= 0.9) and the mean absolute difference (target <= 0.1).
The simulated accuracy (:func:`heldout.simulated_accuracy`) is run with the slices' offsets
measured from their masks against the mesh (``measure_offsets``, as a user would prepare) and, for
comparison, taking the slices as registered. Then the calibration of the uncertainty on the gap-2
pixels (:func:`calibration_row`; ``calibration.py`` checks it on the folds ``crossval`` uses).

    .venv/bin/python benchmarks/crossval.py [--nodes 40000] [--save DIR]
    .venv/bin/python benchmarks/crossval.py --load DIR     # re-score saved cases

``--save`` keeps every case's per-pixel figures (one ``.npz`` each), so estimators can be
compared without training again.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _cases import score_line, synthetic_data, varied_case

from pycemrg_scar_reconstruction import (
    RuntimeConfig,
    TrainConfig,
    dice,
    train,
)
from pycemrg_scar_reconstruction.calibration import calibration
from pycemrg_scar_reconstruction.folds import heldout_group_means
from pycemrg_scar_reconstruction.heldout import gap_predictions
from pycemrg_scar_reconstruction.prediction import predict_nodes
from pycemrg_scar_reconstruction.simulated import simulated_accuracy, simulated_targets

QUIET = RuntimeConfig(quiet=True)
#: (seed, spacing mm, noise sd, shift sd mm, intensity, scar scale)
CASES = [
    (0, 10.0, 0.03, 0.0, False, 1.0),
    (1, 8.0, 0.03, 0.0, False, 0.5),
    (2, 12.0, 0.03, 0.0, False, 0.7),
    (3, 10.0, 0.08, 0.0, False, 0.5),
    (4, 10.0, 0.03, 2.0, False, 1.0),
    (5, 8.0, 0.03, 0.0, True, 1.3),
    (6, 12.0, 0.03, 0.0, True, 0.5),
    (7, 10.0, 0.03, 0.0, True, 0.7),
    (8, 12.0, 0.08, 0.0, False, 1.3),
    (9, 10.0, 0.03, 2.0, True, 0.7),
]


def _rates(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """[true positive, false positive, false negative] shares of the pixels (threshold 0.5)."""
    p, t = predicted >= 0.5, target >= 0.5
    return np.array([np.mean(p & t), np.mean(p & ~t), np.mean(~p & t)])


def _dice_of(rates: np.ndarray) -> float:
    tp, fp, fn = np.maximum(rates, 0.0)
    return 1.0 if 2 * tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))


def estimators(case: dict[str, np.ndarray]) -> dict[str, float]:
    """Candidate estimates of the true Dice from one case's saved figures (see the module docstring)."""
    target, fit = case["target"], case["fit_mean"]
    gaps = {2: case["gap2_mean"], 3: case["gap3_mean"]}
    spacing, thickness = float(case["spacing"]), float(case["thickness"])
    both = np.isfinite(gaps[2]) & np.isfinite(gaps[3])
    r_fit = _rates(target, fit)
    r2, r3 = _rates(target[both], gaps[2][both]), _rates(target[both], gaps[3][both])
    inside = thickness / spacing  # share of the volume inside a slice's prism
    out = {
        "gap2": _dice_of(r2),
        "2*gap2-gap3": float(np.clip(2 * _dice_of(r2) - _dice_of(r3), 0, 1)),
        "fit": _dice_of(r_fit),
        "fit+gap rates": _dice_of(inside * r_fit + (1 - inside) * np.maximum(2 * r2 - r3, 0)),
        "fit+gap2 rates": _dice_of(inside * r_fit + (1 - inside) * r2),
        "fit/gap2 mean": 0.5 * (_dice_of(r_fit) + _dice_of(r2)),
    }
    if "simulated_dice" in case:
        sim = float(case["simulated_dice"])
        out["simulated"] = sim
    if "registered_dice" in case:  # the simulation taking the slices as registered
        out["simulated, registered"] = float(case["registered_dice"])
    if "sim_gap2_mean" in case:  # the simulation's own held-out Dice, on the same pixels
        sim_ho = _dice_of(_rates(case["sim_target"][both], case["sim_gap2_mean"][both]))
        real_ho = _dice_of(r2)
        out["sim x held-out ratio"] = float(np.clip(1 - (1 - sim) * (1 - real_ho) / max(1 - sim_ho, 1e-3), 0, 1))
        out["sim - held-out gap"] = float(np.clip(sim - (sim_ho - real_ho), 0, 1))
    return out


def calibration_row(case: dict[str, np.ndarray]) -> str:
    """ECE of the gap-2 held-out pixels: the spread as it is, and :func:`calibration.calibration`'s
    recalibration fitted on the other half of the slices (odd / even), overall and per band of
    probability; the rank correlation of the uncertainty with the error.
    Cases saved before the folds' floors were kept use the full fit's residual sd."""
    ok = np.isfinite(case["gap2_mean"])
    floor = case["gap2_floor"][ok] if "gap2_floor" in case else float(case["noise_sd"])
    mean = case["gap2_mean"][ok]
    cal = calibration(mean - case["target"][ok], case["gap2_spread"][ok], floor, mean, case["slice"][ok] % 2 == 1)
    bands = " / ".join("-" if v != v else f"{v:.3f}" for v in cal["ece_by_band"].values())
    return f"{cal['ece_before']:.3f} | {cal['ece_after']:.3f} | {bands} | {cal['rank_correlation']:.2f}"


def run_case(case_row: tuple, nodes: int, tmp: Path) -> dict[str, np.ndarray]:
    """Train, score and predict at the held-out gaps one case; its per-pixel figures."""
    seed, spacing = case_row[:2]
    config = varied_case(*case_row, nodes=nodes)
    data, truth, _ = synthetic_data(config, tmp / str(seed), measure_offsets=True)
    train_config = TrainConfig()
    start = time.perf_counter()
    fitted = train(data, train_config, runtime=QUIET)
    p = predict_nodes(fitted, data.points, 20, 0).probability
    fit_mean, fit_spread = heldout_group_means(fitted, data, np.arange(data.n_groups), 20, 0)
    simulated = simulated_accuracy(data, fitted, train_config, QUIET)  # with the measured offsets
    registered = simulated_accuracy(replace(data, measured_offsets=None), fitted, train_config, QUIET)
    _, sim_targets, _ = simulated_targets(data, fitted)  # the same targets simulated_accuracy trained on
    sim_gap2 = gap_predictions(replace(data, group_target=sim_targets), train_config, QUIET, mc_samples=20, gaps=(2,))
    gaps = gap_predictions(data, train_config, QUIET, mc_samples=20)
    return {
        "row": np.asarray(case_row, np.float64),
        "true_dice": np.float64(dice(p, truth)),
        "simulated_dice": np.float64(simulated["dice"]),
        "registered_dice": np.float64(registered["dice"]),
        "misregistration_mm": np.float64(simulated["misregistration_mm"]),
        "noise_sd": np.float64(simulated["noise_sd"]),
        "sim_target": sim_targets,
        "sim_gap2_mean": sim_gap2[2][0],
        "target": data.group_target,
        "slice": data.group_slice,
        "fit_mean": fit_mean,
        "fit_spread": fit_spread,
        "gap2_mean": gaps[2][0],
        "gap2_spread": gaps[2][1],
        "gap2_floor": gaps[2][2],
        "gap3_mean": gaps[3][0],
        "gap3_spread": gaps[3][1],
        "spacing": np.float64(spacing),
        "thickness": np.float64(config.slice_thickness),
        "seconds": np.float64(time.perf_counter() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40_000)
    parser.add_argument("--save", type=Path, help="keep each case's per-pixel figures here")
    parser.add_argument("--load", type=Path, help="re-score the cases saved here (no training)")
    args = parser.parse_args()
    print(f"nodes~{args.nodes}; load {os.getloadavg()[0]:.2f}")
    cases = []
    if args.load:
        cases = [dict(np.load(f)) for f in sorted(args.load.glob("case*.npz"))]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for row in CASES:
                cases.append(run_case(row, args.nodes, Path(tmp)))
                c = cases[-1]
                print(
                    f"case {row}: true Dice {c['true_dice']:.3f}, measured misregistration "
                    f"{c['misregistration_mm']:.2f} mm RMS, {c['seconds']:.0f} s",
                    flush=True,
                )
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    np.savez(args.save / f"case{int(row[0]):02d}.npz", **cases[-1])
    names = None
    table = []
    for c in cases:
        est = estimators(c)
        names = names or list(est)
        table.append([float(c["true_dice"])] + [est[n] for n in names])
    assert names is not None
    values = np.asarray(table)
    print("| seed | spacing | noise | shift | kind | scar scale | true Dice | " + " | ".join(names) + " |")
    print("|" + "---|" * (7 + len(names)))
    for c, v in zip(cases, values):
        seed, spacing, noise, shift, intensity, scale = c["row"]
        kind = "intensity" if intensity else "probability"
        cells = " | ".join(f"{x:.3f}" for x in v)
        print(f"| {int(seed)} | {spacing:g} | {noise:g} | {shift:g} | {kind} | {scale:g} | {cells} |")
    print()
    print("| seed | ECE before | ECE after (fitted on the other half) | by band: background / border / scar | rank |")
    print("|---|---|---|---|---|")
    for c in cases:
        print(f"| {int(c['row'][0])} | {calibration_row(c)} |")
    print()
    for i, name in enumerate(names, start=1):
        print(score_line(name, values[:, i], values[:, 0]))


if __name__ == "__main__":
    main()
