"""Quality table: our defaults vs the paper preset vs the slice baselines, against the known truth.

For each seed: a synthetic oblique case (about 75,000 nodes, 10 mm spacing, 8 mm thickness,
noise 0.03), then the whole patient (prepare + train + predict with 20 MC samples) with our
defaults, the same with ``--preset paper`` (under a time budget: it needs thousands of epochs),
and the nearest-slice and linear-between-slices baselines. Dice at 0.5 and MAE against
``scar_truth``; wall time of the whole run. Prints a Markdown table.

    .venv/bin/python benchmarks/quality.py [--seeds 0 1 2 3 4] [--paper-budget 120]
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
from pycemrg_scar_reconstruction.prediction import predict_nodes
from pycemrg_scar_reconstruction.training import fit

QUIET = RuntimeConfig(quiet=True)  # no progress bar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--paper-budget", type=float, default=120.0, help="training seconds allowed to the paper preset")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    print(
        f"settings: seeds={args.seeds} nodes~{args.nodes} spacing=10 mm thickness=8 mm noise=0.03 oblique "
        f"mc_samples(predict)=20 paper_budget={args.paper_budget:g} s"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            paths = synth(SynthConfig(seed=seed, n_nodes=args.nodes), Path(tmp) / str(seed))
            truth = np.asarray(pv.read(paths["mesh"]).point_data["scar_truth"])
            stack_cfg = StackConfig(path=paths["image"], mask=paths["mask"], slice_thickness=8.0)
            config = PrepareConfig(mesh=MeshConfig(path=paths["mesh"]), stacks=[stack_cfg])
            row = {"seed": seed, "truth_share": float(truth.mean())}
            for name, cfg in (
                ("ours", TrainConfig.from_preset()),
                ("paper", TrainConfig.from_preset("paper", max_time=args.paper_budget)),
            ):
                t0 = time.perf_counter()
                data = prepare(config)
                fitted = fit(data, cfg, QUIET)
                prob = predict_nodes(fitted, data.points, 20, 0).probability
                row[name] = {
                    "dice": dice(prob, truth),
                    "mae": mae(prob, truth),
                    "seconds": time.perf_counter() - t0,
                    "epochs": len(fitted.history),
                    "stop": fitted.stop_reason,
                }
            stack = read_stack(stack_cfg)
            for name, fn in (("nearest", nearest_slice), ("linear", linear_between_slices)):
                t0 = time.perf_counter()
                values = fn(data.points, stack)
                row[name] = {"dice": dice(values, truth), "mae": mae(values, truth), "seconds": time.perf_counter() - t0}
            rows.append(row)
            print(json.dumps(row), flush=True)

    print(
        "\n| seed | ours Dice | ours MAE | ours s (epochs) | paper Dice | paper MAE | paper s (epochs, stop) "
        "| nearest Dice | nearest MAE | linear Dice | linear MAE |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, p, n, li = r["ours"], r["paper"], r["nearest"], r["linear"]
        print(
            f"| {r['seed']} | {o['dice']:.3f} | {o['mae']:.4f} | {o['seconds']:.0f} ({o['epochs']}) | {p['dice']:.3f} "
            f"| {p['mae']:.4f} | {p['seconds']:.0f} ({p['epochs']}, {p['stop']}) | {n['dice']:.3f} | {n['mae']:.4f} "
            f"| {li['dice']:.3f} | {li['mae']:.4f} |"
        )
    beats = all(r["ours"]["dice"] > max(r["nearest"]["dice"], r["linear"]["dice"]) for r in rows)
    print(f"\nours beats both baselines in Dice on every seed: {beats}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
