"""Benchmark: map 1,000,000 mesh nodes against a 12-slice 256 x 256 oblique stack.

Prints nodes per second for the prism mapping alone and for the whole grouping
(``build_training_data``: mapping, target lookup, group ids, sorting by group).
Target (issue 2): at least 1,000,000 nodes/s on a 2-core CPU.

    .venv/bin/python benchmarks/bench_prepare.py [--nodes 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pycemrg_scar_reconstruction.data import build_training_data
from pycemrg_scar_reconstruction.forward import prism_memberships
from pycemrg_scar_reconstruction.geometry import index_to_world
from pycemrg_scar_reconstruction.stack import SliceStack, StackGeometry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (256, 256, 12)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3] = q * np.sign(np.diag(r)) @ np.diag([1.4, 1.4, 10.0])
    affine[:3, 3] = [-100.0, 50.0, 20.0]
    stack = SliceStack(values=rng.uniform(0, 1, shape), geometry=StackGeometry(affine, shape, 8.0), name="bench")
    # nodes spread through the stack's volume (the myocardium of a real case is a subset)
    points = index_to_world(rng.uniform(-0.5, np.array(shape) - 0.5, size=(args.nodes, 3)), affine)

    def best(fn) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_map = best(lambda: prism_memberships(points, stack.geometry))
    t_all = best(lambda: build_training_data(points, [stack]))
    data = build_training_data(points, [stack])
    print(f"settings: nodes={args.nodes} stack={shape} thickness=8 mm spacing=10 mm repeats={args.repeats} (best)")
    print(f"memberships={data.n_members} groups={data.n_groups}")
    print(f"prism mapping:        {t_map:.3f} s  {args.nodes / t_map:,.0f} nodes/s")
    print(f"build_training_data:  {t_all:.3f} s  {args.nodes / t_all:,.0f} nodes/s  (target >= 1,000,000)")


if __name__ == "__main__":
    main()
