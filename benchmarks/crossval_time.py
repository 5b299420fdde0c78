"""Time of leave-one-slice-out cross-validation: folds one after another against folds in parallel.

One synthetic case (default 75,000 nodes, 10 mm spacing), default training settings, 20 MC
passes, ``--threads`` CPU threads in all (default 2). The same cross-validation runs one fold at a
time with all the threads, and with that many one-thread worker processes, in one run, so the
ratio holds under the machine's load. The issue's target: within 3 minutes on 2 cores.

    .venv/bin/python benchmarks/crossval_time.py [--nodes 75000] [--spacing 10] [--threads 2]
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
    parser.add_argument("--spacing", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = synth(
            SynthConfig(n_nodes=args.nodes, slice_spacing=args.spacing, slice_thickness=0.8 * args.spacing), Path(tmp)
        )
        stack = StackConfig(path=case["image"], slice_thickness=0.8 * args.spacing)
        data = prepare(PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=[stack]))
        runtime = RuntimeConfig(quiet=True, threads=args.threads)
        print(
            f"{data.n_nodes} nodes, {data.stacks[0].n_slices} slices; load {os.getloadavg()[0]:.2f}; "
            f"threads {args.threads} (the thread rule would give {thread_count(RuntimeConfig())})"
        )
        times = {}
        for label, workers in (("one after another", 1), ("in parallel", args.threads)):
            r = crossval(data, TrainConfig(), runtime, CrossvalConfig(workers=workers), mc_samples=20)
            times[label] = r["seconds"]
            print(
                f"{label:18s} workers {r['workers']}: {r['seconds']:6.1f} s  held-out Dice {r['holdout_dice']:.3f}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        print(f"ratio one after another / in parallel: {times['one after another'] / times['in parallel']:.2f}x")


if __name__ == "__main__":
    main()
