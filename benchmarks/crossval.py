"""Held-out Dice against the true Dice on varied cases, raw and extrapolated to the real spacing.

Cases vary the seed, slice spacing (8-12 mm), noise, breath-hold shift and input kind. For each:
the true Dice of the default reconstruction (against the 3D truth); the held-out Dice with one
interior slice left out (gap 2 spacings) and with two adjacent ones (gap 3); and the estimate at
the real spacing, ``2 x gap2 - gap3`` (:func:`heldout.gap_estimate`). Printed: the table, and for
the raw and the extrapolated estimate the rank correlation with the true Dice (target >= 0.9)
and the mean absolute difference (target <= 0.1).

    .venv/bin/python benchmarks/crossval.py [--nodes 40000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pyvista as pv
from scipy.stats import spearmanr

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    dice,
    prepare,
    synth,
    train,
)
from pycemrg_scar_reconstruction.heldout import gap_estimate
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)
#: (seed, spacing mm, noise sd, shift sd mm, intensity)
CASES = [
    (0, 10.0, 0.03, 0.0, False),
    (1, 8.0, 0.03, 0.0, False),
    (2, 12.0, 0.03, 0.0, False),
    (3, 10.0, 0.08, 0.0, False),
    (4, 10.0, 0.03, 2.0, False),
    (5, 8.0, 0.03, 0.0, True),
    (6, 12.0, 0.03, 0.0, True),
    (7, 10.0, 0.03, 0.0, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40_000)
    args = parser.parse_args()
    print(f"nodes~{args.nodes}; load {os.getloadavg()[0]:.2f}")
    print("| seed | spacing mm | noise | shift mm | kind | true Dice | held-out gap 2 / gap 3 | at the spacing |")
    print("|---|---|---|---|---|---|---|---|")
    true, raw, est = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, spacing, noise, shift, intensity in CASES:
            synth_config = SynthConfig(
                seed=seed,
                n_nodes=args.nodes,
                slice_spacing=spacing,
                slice_thickness=0.8 * spacing,
                noise=noise,
                shift=shift,
                intensity=intensity,
            )
            case = synth(synth_config, Path(tmp) / str(seed))
            kind = "intensity" if intensity else "probability"
            stack = StackConfig(path=case["image"], mask=case["mask"], slice_thickness=0.8 * spacing, target=kind)
            data = prepare(PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=[stack]))
            truth = np.asarray(pv.read(case["mesh"]).point_data["scar_truth"], np.float64)
            config = TrainConfig()
            p = predict_nodes(train(data, config, runtime=QUIET), data.points, 20, 0).probability
            g = gap_estimate(data, config, QUIET, mc_samples=10)
            true.append(dice(p, truth))
            raw.append(g["dice_gap2"])
            est.append(g["dice_at_spacing"])
            print(
                f"| {seed} | {spacing:g} | {noise:g} | {shift:g} | {kind} | {true[-1]:.3f} | "
                f"{g['dice_gap2']:.3f} / {g['dice_gap3']:.3f} | {g['dice_at_spacing']:.3f} |",
                flush=True,
            )
    for name, values in (("held-out (gap 2)", raw), ("extrapolated to the spacing", est)):
        rho = spearmanr(values, true).statistic
        mad = float(np.mean(np.abs(np.asarray(values) - np.asarray(true))))
        print(f"{name}: Spearman with the true Dice {rho:.2f} (target >= 0.9); mean |difference| {mad:.3f} (target <= 0.1)")


if __name__ == "__main__":
    main()
