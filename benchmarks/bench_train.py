"""Benchmark: training-step throughput, ours against a plain re-implementation of the published step.

Throughput = memberships processed per second by forward, backward and Adam step (and the same
times the MC samples per step), over whole epochs of complete-group batches on a synthetic case;
the ratios are of memberships per second (what sets the time of an epoch). Measured in one run, for:

* ours (default model and step: deterministic layers once, M = 32 passes with per-step masks
  folded into the output weights, scatter-mean loss with known group counts, data resident on
  the device);
* ours with the paper's model and dropout (4 x 128, raw xyz, per-row dropout after every layer,
  M = 3 on the repeated batch): the same step on the published setup, to separate step
  efficiency from model size;
* published step: M serial forward passes stacked and averaged, ``torch.unique`` per batch and the
  published loss (a Python loop over the batch's groups);
* published step + scatter: the same, with the loop replaced by its own suggested scatter-mean.

    .venv/bin/python benchmarks/bench_train.py [--nodes 75000] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from pycemrg_scar_reconstruction.batching import plan_epoch
from pycemrg_scar_reconstruction.config import SynthConfig, TrainConfig
from pycemrg_scar_reconstruction.data import build_training_data
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.loss import group_loss, scatter_mean
from pycemrg_scar_reconstruction.model import ScarMLP, n_parameters
from pycemrg_scar_reconstruction.synthetic import make_case


class PublishedMLP(torch.nn.Module):
    """The published network: Linear/ReLU/Dropout blocks, module dropout, raw xyz."""

    def __init__(self, width: int = 128, depth: int = 4, p: float = 0.1) -> None:
        super().__init__()
        layers, n_in = [], 3
        for _ in range(depth):
            layers += [torch.nn.Linear(n_in, width), torch.nn.ReLU(), torch.nn.Dropout(p)]
            n_in = width
        layers += [torch.nn.Linear(n_in, 1), torch.nn.Sigmoid()]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def published_loss_loop(pred, group_ids, targets):
    unique_groups = torch.unique(group_ids)
    losses = []
    for g in unique_groups:  # the published loss: one masked mean per group
        mask = group_ids == g
        losses.append((targets[mask][0] - pred[mask].mean()) ** 2)
    return torch.stack(losses).mean()


def published_loss_scatter(pred, group_ids, targets):
    uniq, inverse = torch.unique(group_ids, return_inverse=True)
    means = scatter_mean(pred, inverse, uniq.shape[0])
    first = torch.zeros(uniq.shape[0], dtype=torch.long).scatter_(0, inverse, torch.arange(len(inverse)))
    return ((targets[first] - means) ** 2).mean()


def tensors(data) -> tuple[torch.Tensor, ...]:
    """(member_x, target, count, offset, member_group) of training data, as the steps take them."""
    x = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
    return (
        x[torch.as_tensor(data.member_node)],
        torch.as_tensor(data.group_target),
        torch.as_tensor(data.group_count),
        torch.as_tensor(data.group_offset[:-1]),
        torch.as_tensor(data.member_group),
    )


def ours(cfg: TrainConfig, member_x: torch.Tensor, target: torch.Tensor, count: torch.Tensor, offset: torch.Tensor):
    """Our training step with ``cfg``'s model: (network, epoch(max_batches=None) -> memberships done, M)."""
    net = ScarMLP(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    mc, batch = cfg.mc_samples, cfg.batch_size

    def epoch(max_batches=None) -> int:
        plan = plan_epoch(count, offset, batch, gen)
        xs, gt, gc = member_x[plan.member_order], target[plan.group_order], plan.group_size.float()
        done = 0
        for b in range(plan.n_batches if max_batches is None else min(max_batches, plan.n_batches)):
            m0, m1 = plan.member_bounds[b], plan.member_bounds[b + 1]
            g0, g1 = plan.group_bounds[b], plan.group_bounds[b + 1]
            masks = net.sample_masks(mc, gen) if cfg.dropout_masks == "step" else None
            pred = net(xs[m0:m1], samples=mc, masks=masks).mean(0)
            loss = group_loss(pred, plan.local_group[m0:m1], gt[g0:g1], gc[g0:g1])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += m1 - m0
        return done

    return net, epoch, mc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed per variant (after one warm-up epoch)")
    parser.add_argument("--loop-batches", type=int, default=3, help="batches timed for the slow loop variant")
    args = parser.parse_args()
    torch.manual_seed(0)

    case = make_case(SynthConfig(seed=0, n_nodes=args.nodes))
    stack = case.stack
    data = build_training_data(case.points, [stack])
    member_x, target, count, offset, member_group = tensors(data)
    member_target = target[member_group]
    print(
        f"settings: nodes={data.n_nodes} memberships={data.n_members} groups={data.n_groups} "
        f"threads={torch.get_num_threads()} epochs={args.epochs}"
    )

    def published(loss_fn, mc: int = 3, batch: int = 10_000):
        net = PublishedMLP()
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)

        def epoch(max_batches=None) -> int:
            plan = plan_epoch(count, offset, batch, gen)
            done = 0
            for b in range(plan.n_batches if max_batches is None else min(max_batches, plan.n_batches)):
                idx = plan.member_order[plan.member_bounds[b] : plan.member_bounds[b + 1]]
                xb, gb, tb = member_x[idx], member_group[idx], member_target[idx]  # copies per step
                pred = torch.stack([net(xb) for _ in range(mc)]).mean(dim=0)  # serial MC passes
                loss = loss_fn(pred, gb, tb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += len(idx)
            return done

        return net, epoch, mc

    default = TrainConfig.from_preset()
    paper = TrainConfig.from_preset("paper")
    variants = [
        ("ours, default model", *ours(default, member_x, target, count, offset), None),
        ("ours, paper model", *ours(paper, member_x, target, count, offset), None),
        ("published step + scatter", *published(published_loss_scatter), None),
        ("published step (loop loss)", *published(published_loss_loop), args.loop_batches),
    ]
    rates = {}
    for name, net, epoch, mc, max_batches in variants:
        epoch(1)  # warm-up
        t0 = time.perf_counter()
        done = sum(epoch(max_batches) for _ in range(args.epochs if max_batches is None else 1))
        dt = time.perf_counter() - t0
        rates[name] = done / dt
        print(
            f"{name:28s} params={n_parameters(net):6d} M={mc:2d}  {rates[name]:>10,.0f} memberships / s "
            f"({rates[name] * mc:>12,.0f} x MC)  ({dt:.2f} s)"
        )
    base = rates["published step (loop loss)"]
    base2 = rates["published step + scatter"]
    for name in ("ours, default model", "ours, paper model"):
        print(
            f"ratio {name} / published step: {rates[name] / base:.1f}x;  / published + scatter: {rates[name] / base2:.2f}x"
        )


if __name__ == "__main__":
    main()
