"""How much the Dice of one case moves with the training seed alone: the noise floor under any
"within 0.01 Dice" comparison of two runs.

For every seed and kind, the synthetic case is prepared once (as a user would; with
``--register rigid`` as well when ``--registered``) and trained with each training seed
(``TrainConfig.seed``: initialisation, shuffling, dropout); printed: the Dice against the 3D truth
(20 MC samples) for each, and their spread.

    .venv/bin/python benchmarks/training_noise.py [--seeds 0 1] [--training-seeds 0 1 2]
        [--lv-irregularity 1] [--long-axis 2] [--registered]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _cases import add_case_options, synthetic_data

from pycemrg_scar_reconstruction import RuntimeConfig, SynthConfig, TrainConfig, dice, predict_nodes
from pycemrg_scar_reconstruction.training import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser, seeds=(0, 1))
    parser.add_argument("--training-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--long-axis", type=int, default=0, help="long-axis views with masks")
    parser.add_argument("--registered", action="store_true", help="also prepared with --register rigid")
    args = parser.parse_args()
    print("| seed | kind | registration | Dice per training seed | spread |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        for intensity in (False, True):
            config = SynthConfig(
                seed=seed,
                n_nodes=args.nodes,
                intensity=intensity,
                long_axis_views=args.long_axis,
                lv_irregularity=args.lv_irregularity,
            )
            for register in [None, "rigid"] if args.registered else [None]:
                with tempfile.TemporaryDirectory() as tmp:
                    data, truth, _ = synthetic_data(config, Path(tmp) / "case", study_registration=register)
                scores = []
                for training_seed in args.training_seeds:
                    fitted = fit(data, TrainConfig(seed=training_seed), RuntimeConfig(quiet=True), progress=False)
                    scores.append(dice(predict_nodes(fitted, data.points, 20, 0).probability, truth))
                kind = "intensity" if intensity else "probability"
                cells = " ".join(f"{s:.3f}" for s in scores)
                spread = max(scores) - min(scores)
                print(f"| {seed} | {kind} | {register or 'measured'} | {cells} | {spread:.3f} |", flush=True)


if __name__ == "__main__":
    main()
