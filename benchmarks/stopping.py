"""Stopping on what the user gets: the predicted field stops changing, against the loss's patience.

For each seed and kind of synthetic case (probability stacks; raw LGE intensities with a mask; a
biventricular mesh with LV-only LGE intensities), the same case is trained with today's rule (the
epoch loss's patience) and with ``stop_on_field`` at each agreement. Printed: the true Dice (20 MC
passes, against the 3D truth), epochs, and the seconds of the whole run (prepare + train + predict
with 20 MC passes). Issue 17's yardstick is timed on the same case in the same run: 20 epochs of
the published training step (``bench_train.py``'s re-implementation, its loop loss, batches of
10,000 memberships), one whole epoch timed (or ``--published-batches`` of it, extrapolated).

    .venv/bin/python benchmarks/stopping.py [--seeds 0 1 2 3 4] [--agreements 0.99 0.995]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _cases import synthetic_data
from bench_train import PublishedMLP, published_loss_loop

from pycemrg_scar_reconstruction import (
    RuntimeConfig,
    SynthConfig,
    TrainConfig,
    dice,
    train,
)
from pycemrg_scar_reconstruction.batching import plan_epoch
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.prediction import predict_nodes

QUIET = RuntimeConfig(quiet=True)
KINDS = {
    "probability": {},
    "intensity": {"intensity": True},
    "biventricular": {"intensity": True, "biventricular": True},
}


def published_epoch_seconds(data, batches: int, mc: int = 3, batch: int = 10_000) -> float:
    """Seconds of one epoch of the published step on ``data``, from ``batches`` timed batches."""
    x = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
    member_x, member_group = x[torch.as_tensor(data.member_node)], torch.as_tensor(data.member_group)
    member_target = torch.as_tensor(data.group_target)[member_group]
    count, offset = torch.as_tensor(data.group_count), torch.as_tensor(data.group_offset[:-1])
    net = PublishedMLP()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    plan = plan_epoch(count, offset, batch, torch.Generator().manual_seed(0))
    done, start = 0, time.perf_counter()
    for b in range(min(batches, plan.n_batches)):
        idx = plan.member_order[plan.member_bounds[b] : plan.member_bounds[b + 1]]
        pred = torch.stack([net(member_x[idx]) for _ in range(mc)]).mean(dim=0)
        loss = published_loss_loop(pred, member_group[idx], member_target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += len(idx)
    return (time.perf_counter() - start) * data.n_members / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--agreements", type=float, nargs="+", default=[0.99, 0.995])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument(
        "--published-batches",
        type=int,
        default=10_000,
        help="batches of the published step timed per case (default: a whole epoch)",
    )
    args = parser.parse_args()
    print(f"settings: {vars(args)}; load {os.getloadavg()[0]:.2f}")
    rules = {
        "loss (today)": TrainConfig(),
        **{f"field {a:g}": TrainConfig(stop_on_field=True, field_agreement=a) for a in args.agreements},
    }
    print("| kind | seed | " + " | ".join(f"{r}: Dice, epochs, s" for r in rules) + " | 20 published epochs, s |")
    print("|---|---|" + "---|" * (len(rules) + 1))
    worst = {r: 0.0 for r in rules}
    ratio = {r: [] for r in rules}
    published = {r: [] for r in rules}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in args.seeds:
                config = SynthConfig(seed=seed, n_nodes=args.nodes, **KINDS[kind])
                data, truth, prepare_s = synthetic_data(config, Path(tmp) / f"{kind}{seed}")
                cells, base = [], None
                for name, config in rules.items():
                    t0 = time.perf_counter()
                    fitted = train(data, config, runtime=QUIET)
                    p = predict_nodes(fitted, data.points, 20, 0).probability
                    seconds = prepare_s + time.perf_counter() - t0
                    d = dice(p, truth)
                    if base is None:
                        base = (d, seconds)
                    worst[name] = min(worst[name], d - base[0])
                    ratio[name].append(seconds / base[1])
                    cells.append(f"{d:.3f}, {len(fitted.history)}, {seconds:.1f}")
                    published[name].append(seconds)
                yardstick = 20 * published_epoch_seconds(data, args.published_batches)
                for name in rules:
                    published[name][-1] /= yardstick
                print(f"| {kind} | {seed} | " + " | ".join(cells) + f" | {yardstick:.0f} |", flush=True)
    for name in rules:
        print(
            f"{name}: worst Dice change {worst[name]:+.4f}; time / today's: median {np.median(ratio[name]):.2f}; "
            f"whole run / 20 published epochs: max {np.max(published[name]):.3f}"
        )


if __name__ == "__main__":
    main()
