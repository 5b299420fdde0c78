"""Benchmark: training-step throughput of the default model against the machine's matmul rate.

Prints memberships (and memberships x MC samples) per second for forward + backward + Adam step
of the default model on complete-group batches of a synthetic case, the floating-point rate that
implies (matmul FLOPs per layer and row: 2*in*out forward, as much for the weight gradient and,
except for the first layer, for the input gradient), the machine's dense float32 matmul rate
measured in the same run (2048 x 2048), and the share of it the step reaches (the roofline for a
small MLP). Beside it, the rate of the step's own matmul shapes timed alone: what the step would
reach if nothing else cost time. The previous default (per-row dropout masks, 2 MC samples) is
timed in the same run for the ratio. ``--compile`` also times the torch.compile'd model; ``--bf16``
the step under bf16 autocast, against the bf16 matmul rate.

    .venv/bin/python benchmarks/throughput.py [--batch-size 16384] [--steps 60] [--compile] [--bf16]
        [--mc-samples M] [--dropout-masks row|step]
"""

from __future__ import annotations

import argparse
import time

import torch

from pycemrg_scar_reconstruction.batching import plan_epoch
from pycemrg_scar_reconstruction.config import SynthConfig, TrainConfig
from pycemrg_scar_reconstruction.data import build_training_data
from pycemrg_scar_reconstruction.device import cpu_cores
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.loss import group_loss
from pycemrg_scar_reconstruction.model import ScarMLP
from pycemrg_scar_reconstruction.synthetic import make_case


def matmul_rate(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Dense matmul FLOP/s (best of ``repeats``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def layer_shapes(net: ScarMLP, rows: int, mc: int, masks: str = "row") -> list[tuple[int, int, int, bool]]:
    """(rows, in, out, needs input gradient) of every linear layer of one step on ``rows`` memberships.

    Layers up to the first dropout run once; with per-row masks the rest run on the M-times repeated
    batch; with per-step masks the layer after the first dropout runs once with M stacked weight
    copies (``out * M`` columns) and any later ones per pass. The FLOPs are the same either way.
    """
    cfg = net.config
    n_in = net.encode.out_features if cfg.encoding == "fourier" else 3
    widths = [n_in] + [cfg.width] * cfg.depth + [1]
    first_drop = net._dropout_after.index(True) if True in net._dropout_after else cfg.depth
    shapes = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i <= first_drop:
            shapes.append((rows, a, b, i > 0))
        elif masks == "step" and i == first_drop + 1:
            shapes.append((rows, a, b * mc, True))
        else:
            shapes.append((rows * mc, a, b, True))
    return shapes


def step_flops(net: ScarMLP, mc: int, masks: str = "row") -> float:
    """Forward + backward matmul FLOPs per membership for ``mc`` MC samples (the fixed encoding is
    computed once before training and not counted)."""
    return sum(2 * r * a * b * (3 if grad_in else 2) for r, a, b, grad_in in layer_shapes(net, 1, mc, masks))


def matmuls_alone(net: ScarMLP, rows: int, mc: int, masks: str, dtype: torch.dtype, repeats: int = 20) -> float:
    """FLOP/s of the step's own matmuls (forward, input and weight gradients) timed without the rest."""
    ops = []
    for r, a, b, grad_in in layer_shapes(net, rows, mc, masks):
        x, w, g = torch.randn(r, a, dtype=dtype), torch.randn(b, a, dtype=dtype), torch.randn(r, b, dtype=dtype)
        ops.append((lambda x=x, w=w: x @ w.T, 2 * r * a * b))  # forward
        ops.append((lambda g=g, x=x: g.T @ x, 2 * r * a * b))  # weight gradient
        if grad_in:
            ops.append((lambda g=g, w=w: g @ w, 2 * r * a * b))  # input gradient
    flops = sum(f for _, f in ops)
    for fn, _ in ops:
        fn()
    best = min(_timed(lambda: [fn() for fn, _ in ops]) for _ in range(repeats))
    return flops / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--batch-size", type=int, default=None, help="memberships per batch (default: the default config's)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--bf16", action="store_true", help="also time the step under bf16 autocast (--amp bf16)")
    parser.add_argument("--mc-samples", type=int, default=None, help="MC samples per step (default: the default config's)")
    parser.add_argument("--dropout-masks", choices=["row", "step"], default=None, help="(default: the default config's)")
    args = parser.parse_args()
    torch.set_num_threads(cpu_cores())
    overrides = {"mc_samples": args.mc_samples, "dropout_masks": args.dropout_masks}
    cfg = TrainConfig.from_preset(**{k: v for k, v in overrides.items() if v is not None})
    batch = args.batch_size or cfg.batch_size
    mc = cfg.mc_samples

    case = make_case(SynthConfig(seed=0, n_nodes=args.nodes))
    data = build_training_data(case.points, [case.stack])
    x = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
    member_x = x[torch.as_tensor(data.member_node)]
    count = torch.as_tensor(data.group_count)
    plan = plan_epoch(count, torch.as_tensor(data.group_offset[:-1]), batch, torch.Generator().manual_seed(0))
    xs = member_x[plan.member_order]  # raw coordinates; encoded per variant below, as the trainer does
    gt = torch.as_tensor(data.group_target)[plan.group_order]
    gc = plan.group_size.float()
    batches = [
        (plan.member_bounds[b], plan.member_bounds[b + 1], plan.group_bounds[b], plan.group_bounds[b + 1])
        for b in range(plan.n_batches)
    ]

    print(
        f"settings: nodes={data.n_nodes} memberships={data.n_members} batch={batch} mc={mc} masks={cfg.dropout_masks} "
        f"threads={torch.get_num_threads()} steps={args.steps}"
    )
    net = ScarMLP(cfg.model)
    peaks = {}
    for dtype in [torch.float32] + ([torch.bfloat16] if args.bf16 else []):
        name = str(dtype).removeprefix("torch.")
        peaks[dtype] = matmul_rate(dtype=dtype)
        alone = matmuls_alone(net, batch, mc, cfg.dropout_masks, dtype)
        print(
            f"dense matmul (2048^2, {name}): {peaks[dtype] / 1e9:.1f} GFLOP/s;  the step's own matmul shapes "
            f"alone: {alone / 1e9:.1f} GFLOP/s = {100 * alone / peaks[dtype]:.0f}% of it"
        )

    # (name, compiled, dtype, dropout masks, MC samples); "row-m2" is the previous default
    variants = [("eager", False, torch.float32, cfg.dropout_masks, mc), ("row-m2", False, torch.float32, "row", 2)]
    variants += [("compiled", True, torch.float32, cfg.dropout_masks, mc)] if args.compile else []
    variants += [("bf16", False, torch.bfloat16, cfg.dropout_masks, mc)] if args.bf16 else []
    for name, compiled, dtype, mask_mode, mc in variants:
        torch.manual_seed(0)
        net = ScarMLP(cfg.model)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        mask_gen = torch.Generator().manual_seed(0)
        forward = torch.compile(net, dynamic=True) if compiled else net
        with torch.no_grad():
            enc = net.encode(xs)  # the trainer encodes every membership once (fixed encoding)
        amp = dtype != torch.float32

        def run(n: int) -> int:
            rows = 0
            for s in range(n):
                m0, m1, g0, g1 = batches[s % len(batches)]
                with torch.autocast("cpu", dtype=dtype, enabled=amp):
                    masks = net.sample_masks(mc, mask_gen) if mask_mode == "step" else None
                    pred = forward(enc[m0:m1], samples=mc, masks=masks, encoded=True).mean(0)
                loss = group_loss(pred.float(), plan.local_group[m0:m1], gt[g0:g1], gc[g0:g1])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rows += m1 - m0
            return rows

        t_warm = _timed(lambda: run(max(3, len(batches))))
        t0 = time.perf_counter()
        rows = run(args.steps)
        dt = time.perf_counter() - t0
        flops = rows * step_flops(net, mc, mask_mode) / dt
        print(
            f"{name:8s} {mask_mode} masks, M={mc:2d}: {rows / dt:>10,.0f} memberships / s "
            f"({rows * mc / dt:>12,.0f} x MC)  {flops / 1e9:6.1f} GFLOP/s  "
            f"= {100 * flops / peaks[dtype]:.0f}% of the {str(dtype).removeprefix('torch.')} matmul rate  "
            f"(warm-up {t_warm:.1f} s)"
        )


if __name__ == "__main__":
    main()
