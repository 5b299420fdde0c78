"""Compare training configurations on synthetic cases under the same time budget (how defaults were chosen).

For each seed: a synthetic oblique case (about 75,000 nodes unless ``--nodes``, 10 mm spacing, 8 mm
thickness, noise 0.03); the slice baselines; then each configuration trained for at most ``budget`` seconds (or
until early stopping) and predicted with 20 MC samples. Prints epochs, stop reason, time, best
epoch loss, Dice and MAE against the truth.

    .venv/bin/python benchmarks/compare_configs.py --seeds 0 1 --budget 60 \\
        --config paper '{"preset": "paper"}' --config ff0.5 '{"model": {"fourier_scale": 0.5}}'
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv

from pycemrg_scar_reconstruction import MeshConfig, PrepareConfig, StackConfig, SynthConfig, TrainConfig, prepare, synth
from pycemrg_scar_reconstruction.baselines import linear_between_slices, nearest_slice
from pycemrg_scar_reconstruction.config import RuntimeConfig
from pycemrg_scar_reconstruction.io.images import read_stack
from pycemrg_scar_reconstruction.metrics import dice, mae
from pycemrg_scar_reconstruction.prediction import mc_predict
from pycemrg_scar_reconstruction.training import fit

QUIET = RuntimeConfig(quiet=True)  # no progress bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--nodes", type=int, default=75_000, help="approximate mesh nodes of each case")
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per configuration")
    parser.add_argument(
        "--config",
        nargs=2,
        action="append",
        metavar=("NAME", "JSON"),
        default=[],
        help="a configuration: name and JSON overrides (may hold 'preset')",
    )
    args = parser.parse_args()
    configs = args.config or [["default", "{}"], ["paper", '{"preset": "paper"}']]
    print(f"settings: seeds={args.seeds} nodes~{args.nodes} budget={args.budget:g} s configs={[c[0] for c in configs]}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            paths = synth(SynthConfig(seed=seed, n_nodes=args.nodes), Path(tmp) / str(seed))
            sc = StackConfig(path=paths["image"], mask=paths["mask"], slice_thickness=8.0)
            data = prepare(PrepareConfig(mesh=MeshConfig(path=paths["mesh"]), stacks=[sc]))
            truth = np.asarray(pv.read(paths["mesh"]).point_data["scar_truth"])
            stack = read_stack(sc)
            nb, lb = nearest_slice(data.points, stack), linear_between_slices(data.points, stack)
            print(
                f"seed {seed}: nearest Dice {dice(nb, truth):.3f} MAE {mae(nb, truth):.4f} | "
                f"linear Dice {dice(lb, truth):.3f} MAE {mae(lb, truth):.4f}",
                flush=True,
            )
            for name, raw in configs:
                overrides = json.loads(raw)
                preset = overrides.pop("preset", "default")
                cfg = TrainConfig.from_preset(preset, **{"max_time": args.budget, **overrides})
                t0 = time.perf_counter()
                fitted = fit(data, cfg, QUIET)
                seconds = time.perf_counter() - t0
                prob = mc_predict(fitted, data.points, 20, 0)[0]
                best = fitted.history[fitted.best_epoch - 1]["loss"]
                print(
                    f"  {name:14s} epochs={len(fitted.history):4d} best={fitted.best_epoch:4d} "
                    f"stop={fitted.stop_reason:9s} t={seconds:5.1f}s loss={best:.5f} "
                    f"Dice={dice(prob, truth):.3f} MAE={mae(prob, truth):.4f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
