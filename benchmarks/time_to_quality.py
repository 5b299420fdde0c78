"""Benchmark: wall time until the reconstruction is good, ours vs the paper preset, in one run.

On a synthetic oblique case (about 75,000 nodes; about 1,400,000 with ``--large``; 10 mm spacing,
8 mm slices, noise 0.03) each preset trains until it stops or its budget runs out. After every
epoch the network (dropout off, one deterministic pass) is scored by Dice against the truth; the
time spent scoring is not counted. Reported per preset: training seconds until the Dice first
reaches the linear-interpolation baseline's Dice, until it first reaches 99% of its final Dice,
and the final Dice; then the ratio paper / ours. A preset that never got there is reported as such.

    .venv/bin/python benchmarks/time_to_quality.py [--large] [--budget 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv
import torch

from pycemrg_scar_reconstruction import MeshConfig, PrepareConfig, StackConfig, SynthConfig, prepare, synth, train_config
from pycemrg_scar_reconstruction.baselines import linear_between_slices
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.io import read_stack
from pycemrg_scar_reconstruction.train import fit
from pycemrg_scar_reconstruction.validate import dice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="about 1,400,000 nodes instead of 75,000")
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds allowed to each preset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_nodes = 1_400_000 if args.large else 75_000
    print(f"settings: nodes~{n_nodes} seed={args.seed} budget={args.budget:g} s per preset, threads={torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        paths = synth(SynthConfig(seed=args.seed, n_nodes=n_nodes), Path(tmp))
        truth = np.asarray(pv.read(paths["mesh"]).point_data["scar_truth"])
        stack_cfg = StackConfig(path=paths["image"], mask=paths["mask"], slice_thickness=8.0)
        data = prepare(PrepareConfig(mesh=MeshConfig(path=paths["mesh"]), stacks=[stack_cfg]))
        target_dice = dice(linear_between_slices(data.points, read_stack(stack_cfg)), truth)
    x = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
    print(f"nodes={data.n_nodes} memberships={data.n_members} linear-baseline Dice={target_dice:.3f}")

    results = {}
    for name, cfg in (("ours", train_config(quiet=True)), ("paper", train_config("paper", quiet=True))):
        curve: list[tuple[float, float]] = []  # (training seconds, Dice)
        eval_seconds = [0.0]
        t0 = time.perf_counter()

        def score(epoch: int, net) -> bool:
            e0 = time.perf_counter()
            with torch.no_grad():
                p = torch.cat([net(x[i:i + 262_144], dropout=False)[0] for i in range(0, len(x), 262_144)])
            curve.append((e0 - t0 - eval_seconds[0], dice(p.numpy(), truth)))
            eval_seconds[0] += time.perf_counter() - e0
            return curve[-1][0] >= args.budget

        fitted = fit(data, cfg, callback=score)
        times, dices = np.array([c[0] for c in curve]), np.array([c[1] for c in curve])
        final = float(dices[-1])
        reach = lambda level: float(times[np.argmax(dices >= level)]) if np.any(dices >= level) else None  # noqa: E731
        results[name] = {"to_baseline": reach(target_dice), "to_99": reach(0.99 * final), "final": final,
                         "seconds": float(times[-1]), "epochs": len(curve), "stop": fitted.stop_reason}
        r = results[name]
        fmt = lambda t: "not reached" if t is None else f"{t:.1f} s"  # noqa: E731
        print(f"{name:6s} to baseline Dice: {fmt(r['to_baseline'])}; to 99% of final: {fmt(r['to_99'])}; "
              f"final Dice {final:.3f} after {r['seconds']:.1f} s, {r['epochs']} epochs (stop: {r['stop']})", flush=True)

    ours, paper = results["ours"], results["paper"]
    if ours["to_baseline"] and paper["to_baseline"]:
        print(f"ratio paper/ours, time to the baseline's Dice: {paper['to_baseline'] / ours['to_baseline']:.1f}x")
    elif ours["to_baseline"]:
        print(f"paper did not reach the baseline's Dice in {args.budget:g} s (Dice {paper['final']:.3f}); "
              f"ratio > {args.budget / ours['to_baseline']:.1f}x")
    else:
        print("ours did not reach the baseline's Dice within the budget")


if __name__ == "__main__":
    main()
