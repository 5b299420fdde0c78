"""Per-patient choice of the Fourier scale by held-out error: does it beat the fixed default?

For each seed and kind of synthetic case, every candidate scale is trained on the whole case (its
true Dice against the 3D truth) and cross-validated over folds of whole slices (its held-out MAE).
The chosen scale is the one with the lowest held-out MAE. Printed per case: the true Dice of the
default, of the chosen scale and of the best scale in hindsight. The issue's rule: ship the choice
only if it improves the true Dice.

    .venv/bin/python benchmarks/choose_setting.py [--seeds 0 1 2] [--scales 0.25 0.5 1.0] [--folds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _cases import synthetic_data

from pycemrg_scar_reconstruction import (
    ModelConfig,
    RuntimeConfig,
    SynthConfig,
    TrainConfig,
    dice,
    train,
)
from pycemrg_scar_reconstruction.heldout import crossval
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)
DEFAULT_SCALE = ModelConfig().fourier_scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--kinds", nargs="+", default=["probability", "intensity"])
    args = parser.parse_args()
    print(f"settings: {vars(args)}; default scale {DEFAULT_SCALE}; load {os.getloadavg()[0]:.2f}")
    print("| kind | seed | true Dice per scale | held-out MAE per scale | chosen | Dice default / chosen / best |")
    print("|---|---|---|---|---|---|")
    gains = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in args.seeds:
                synth_config = SynthConfig(seed=seed, n_nodes=args.nodes, intensity=kind == "intensity")
                data, truth, _ = synthetic_data(synth_config, Path(tmp) / f"{kind}{seed}")
                true_dice, held_mae = {}, {}
                for scale in args.scales:
                    config = TrainConfig(model=ModelConfig(fourier_scale=scale))
                    p = predict_nodes(train(data, config, runtime=QUIET), data.points, 20, 0).probability
                    true_dice[scale] = dice(p, truth)
                    held_mae[scale] = crossval(data, config, QUIET, folds=args.folds, mc_samples=10)["holdout_mae"]
                chosen = min(held_mae, key=held_mae.__getitem__)
                best = max(true_dice, key=true_dice.__getitem__)
                gains.append(true_dice[chosen] - true_dice[DEFAULT_SCALE])
                print(
                    f"| {kind} | {seed} | {' / '.join(f'{true_dice[s]:.3f}' for s in args.scales)} | "
                    f"{' / '.join(f'{held_mae[s]:.4f}' for s in args.scales)} | {chosen} | "
                    f"{true_dice[DEFAULT_SCALE]:.3f} / {true_dice[chosen]:.3f} / {true_dice[best]:.3f} |",
                    flush=True,
                )
    print(f"chosen - default true Dice: mean {np.mean(gains):+.4f}, min {np.min(gains):+.4f}, max {np.max(gains):+.4f}")


if __name__ == "__main__":
    main()
