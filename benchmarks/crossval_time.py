"""Time of leave-one-slice-out cross-validation: folds one after another against folds in parallel.

One synthetic case (default 75,000 nodes, 12 mm spacing: 7 short-axis slices), default training
settings, 20 MC passes. The same cross-validation runs with ``workers`` 1 (all threads on one
fold at a time) and with the default (one one-thread worker process per free thread), in one run,
so the ratio holds under the machine's load. The issue's target: within 3 minutes on 2 cores.

    .venv/bin/python benchmarks/crossval_time.py [--nodes 75000] [--spacing 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pycemrg_scar_reconstruction import (
    CrossvalConfig,
    MeshConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    crossval,
    prepare,
    synth,
)
from pycemrg_scar_reconstruction.device import thread_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--spacing", type=float, default=12.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = synth(
            SynthConfig(n_nodes=args.nodes, slice_spacing=args.spacing, slice_thickness=0.8 * args.spacing), Path(tmp)
        )
        stack = StackConfig(path=case["image"], slice_thickness=0.8 * args.spacing)
        data = prepare(PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=[stack]))
        runtime = RuntimeConfig(quiet=True)
        print(
            f"{data.n_nodes} nodes, {data.stacks[0].n_slices} slices; load {os.getloadavg()[0]:.2f}; "
            f"threads by the rule {thread_count(runtime)}"
        )
        times = {}
        for label, workers in (("one after another", 1), ("default", None)):
            r = crossval(data, TrainConfig(), runtime, CrossvalConfig(workers=workers), mc_samples=20)
            times[label] = r["seconds"]
            print(
                f"{label:18s} workers {r['workers']}: {r['seconds']:6.1f} s  held-out Dice {r['holdout_dice']:.3f}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        print(f"ratio one after another / default: {times['one after another'] / times['default']:.2f}x")


if __name__ == "__main__":
    main()
