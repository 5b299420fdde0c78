"""Benchmark: training-step throughput of the default model against the machine's matmul rate.

Prints memberships x MC samples per second for forward + backward + Adam step of the default
model on complete-group batches of a synthetic case, the floating-point rate that implies (model
FLOPs counted per layer: forward 2*in*out per row, backward twice that), the machine's dense
float32 matmul rate measured in the same run (2048 x 2048), and the share of it the step reaches
(the roofline for a small MLP). ``--compile`` also times the torch.compile'd model.

    .venv/bin/python benchmarks/throughput.py [--batch-size 16384] [--steps 60] [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch

from pycemrg_scar_reconstruction.batching import plan_epoch
from pycemrg_scar_reconstruction.config import SynthConfig, train_config
from pycemrg_scar_reconstruction.data import build_training_data
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.loss import group_loss
from pycemrg_scar_reconstruction.model import ScarMLP
from pycemrg_scar_reconstruction.stack import SliceStack
from pycemrg_scar_reconstruction.synthetic import make_case
from pycemrg_scar_reconstruction.train import cpu_cores


def matmul_rate(n: int = 2048, repeats: int = 10) -> float:
    """Dense float32 matmul FLOP/s (best of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def step_flops(net: ScarMLP, mc: int) -> float:
    """Forward + backward FLOPs per membership for ``mc`` MC samples (matmuls only; the fixed
    encoding is computed once before training and not counted)."""
    cfg = net.config
    n_in = net.encode.out_features if cfg.encoding == "fourier" else 3
    enc = 0
    widths = [n_in] + [cfg.width] * cfg.depth + [1]
    first_drop = net._dropout_after.index(True) if True in net._dropout_after else cfg.depth
    fwd = enc
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        fwd += 2 * a * b * (1 if i <= first_drop else mc)  # layers up to the first dropout run once
    return 3.0 * fwd  # backward ~ 2x forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--batch-size", type=int, default=None, help="memberships per batch (default: the default config's)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    torch.set_num_threads(cpu_cores())
    cfg = train_config()
    batch = args.batch_size or cfg.batch_size
    mc = cfg.mc_samples

    case = make_case(SynthConfig(seed=0, n_nodes=args.nodes))
    data = build_training_data(case.points, [SliceStack(values=case.values, affine=case.affine,
                                                        thickness=case.thickness, mask=case.mask)])
    x = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
    member_x = x[torch.as_tensor(data.member_node)]
    count = torch.as_tensor(data.group_count)
    plan = plan_epoch(count, torch.as_tensor(data.group_offset[:-1]), batch, torch.Generator().manual_seed(0))
    xs = member_x[plan.member_order]  # raw coordinates; encoded per variant below, as the trainer does
    gt = torch.as_tensor(data.group_target)[plan.group_order]
    gc = plan.group_size.float()
    batches = [(plan.member_bounds[b], plan.member_bounds[b + 1], plan.group_bounds[b], plan.group_bounds[b + 1])
               for b in range(plan.n_batches)]

    peak = matmul_rate()
    print(f"settings: nodes={data.n_nodes} memberships={data.n_members} batch={batch} mc={mc} "
          f"threads={torch.get_num_threads()} steps={args.steps}")
    print(f"dense matmul (2048^2, float32): {peak / 1e9:.1f} GFLOP/s")

    variants = [("eager", False)] + ([("compiled", True)] if args.compile else [])
    for name, compiled in variants:
        torch.manual_seed(0)
        net = ScarMLP(cfg.model)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        forward = torch.compile(net, dynamic=True) if compiled else net
        with torch.no_grad():
            enc = net.encode(xs)  # the trainer encodes every membership once (fixed encoding)

        def run(n: int) -> int:
            rows = 0
            for s in range(n):
                m0, m1, g0, g1 = batches[s % len(batches)]
                pred = forward(enc[m0:m1], samples=mc, encoded=True).mean(0)
                loss = group_loss(pred, plan.local_group[m0:m1], gt[g0:g1], gc[g0:g1])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rows += m1 - m0
            return rows

        t_warm = _timed(lambda: run(max(3, len(batches))))
        t0 = time.perf_counter()
        rows = run(args.steps)
        dt = time.perf_counter() - t0
        rate = rows * mc / dt
        flops = rows * step_flops(net, mc) / dt
        print(f"{name:8s} {rate:>12,.0f} memberships x MC / s  {flops / 1e9:6.1f} GFLOP/s  "
              f"= {100 * flops / peak:.0f}% of the matmul rate  (warm-up {t_warm:.1f} s)")


if __name__ == "__main__":
    main()
