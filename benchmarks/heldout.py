"""Held-out accuracy against the truth: does leave-one-slice-out tell a user how right the scar is?

For each seed and kind of synthetic case (probability stacks; raw LGE intensities with a mask), the
case is reconstructed with the defaults and cross-validated (every slice left out once). Printed
per case: the true Dice/MAE of the reconstruction (against the 3D truth), the held-out Dice/MAE of
the network and of the neighbour-slice baselines on the same pixels, and the calibration of the
uncertainty as ``crossval`` reports it (:func:`calibration.calibration`: the recalibration is
fitted on the odd slices' pixels and checked on the even ones and back, so "after" is not judged
on the pixels it was fitted to).

    .venv/bin/python benchmarks/heldout.py [--seeds 0 1 2] [--nodes 75000] [--kinds probability intensity]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _cases import synthetic_data

from pycemrg_scar_reconstruction import (
    RuntimeConfig,
    SynthConfig,
    TrainConfig,
    dice,
    mae,
    train,
)
from pycemrg_scar_reconstruction.heldout import crossval
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--kinds", nargs="+", default=["probability", "intensity"])
    args = parser.parse_args()
    print(f"settings: seeds={args.seeds} nodes~{args.nodes} kinds={args.kinds}; load {os.getloadavg()[0]:.2f}")
    print(
        "| kind | seed | true Dice / MAE | held-out Dice / MAE (net) | nearest | linear | "
        "interior / end MAE | ECE before -> after (other half) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    config = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in args.seeds:
                t0 = time.perf_counter()
                synth_config = SynthConfig(seed=seed, n_nodes=args.nodes, intensity=kind == "intensity")
                data, truth, _ = synthetic_data(synth_config, Path(tmp) / f"{kind}{seed}")
                fitted = train(data, config, runtime=QUIET)
                p = predict_nodes(fitted, data.points, 20, 0).probability
                cv = crossval(data, config, QUIET, mc_samples=20)
                print(
                    f"| {kind} | {seed} | {dice(p, truth):.3f} / {mae(p, truth):.4f} | "
                    f"{cv['holdout_dice']:.3f} / {cv['holdout_mae']:.4f} | "
                    f"{cv['baseline_dice']['nearest']:.3f} / {cv['baseline_mae']['nearest']:.4f} | "
                    f"{cv['baseline_dice']['linear']:.3f} / {cv['baseline_mae']['linear']:.4f} | "
                    f"{cv['interior']['mae']:.4f} / {cv['end']['mae']:.4f} | "
                    f"{cv['calibration']['ece_before']:.3f} -> {cv['calibration']['ece_after']:.3f} | "
                    f"{time.perf_counter() - t0:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
