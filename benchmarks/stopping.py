"""Stopping on what the user gets: the predicted field stops changing, against the loss's patience.

For each seed and kind of synthetic case (probability stacks; raw LGE intensities with a mask; a
biventricular mesh with LV-only LGE intensities), the same case is trained with today's rule (the
epoch loss's patience) and with ``stop_on_field`` at each tolerance. Printed: the true Dice (20 MC
passes, against the 3D truth), epochs, and the seconds of training + prediction. All in one run.

    .venv/bin/python benchmarks/stopping.py [--seeds 0 1 2 3 4] [--tols 0.002 0.004]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv

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
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)
KINDS = {
    "probability": {},
    "intensity": {"intensity": True},
    "biventricular": {"intensity": True, "biventricular": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tols", type=float, nargs="+", default=[0.002, 0.004])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    args = parser.parse_args()
    print(f"settings: {vars(args)}; load {os.getloadavg()[0]:.2f}")
    rules = {
        "loss (today)": TrainConfig(),
        **{f"field {t:g}": TrainConfig(stop_on_field=True, field_tol=t) for t in args.tols},
    }
    print("| kind | seed | " + " | ".join(f"{r}: Dice, epochs, s" for r in rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    worst = {r: 0.0 for r in rules}
    ratio = {r: [] for r in rules}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in args.seeds:
                case = synth(SynthConfig(seed=seed, n_nodes=args.nodes, **KINDS[kind]), Path(tmp) / f"{kind}{seed}")
                region = {"region_array": "is_LV"} if kind == "biventricular" else {}
                target = "probability" if kind == "probability" else "intensity"
                stack = StackConfig(path=case["image"], mask=case["mask"], slice_thickness=8.0, target=target)
                data = prepare(PrepareConfig(mesh=MeshConfig(path=case["mesh"], **region), stacks=[stack]))
                truth = np.asarray(pv.read(case["mesh"]).point_data["scar_truth"], np.float64)
                cells, base = [], None
                for name, config in rules.items():
                    t0 = time.perf_counter()
                    fitted = train(data, config, runtime=QUIET)
                    p = predict_nodes(fitted, data.points, 20, 0).probability
                    seconds = time.perf_counter() - t0
                    d = dice(p, truth)
                    if base is None:
                        base = (d, seconds)
                    worst[name] = min(worst[name], d - base[0])
                    ratio[name].append(seconds / base[1])
                    cells.append(f"{d:.3f}, {len(fitted.history)}, {seconds:.1f}")
                print(f"| {kind} | {seed} | " + " | ".join(cells) + " |", flush=True)
    for name in rules:
        print(f"{name}: worst Dice change {worst[name]:+.4f}; time / today's: median {np.median(ratio[name]):.2f}")


if __name__ == "__main__":
    main()
