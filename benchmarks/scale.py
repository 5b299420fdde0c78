"""Benchmark: prepare and predict on a mesh of millions of nodes; seconds and peak memory of each.

Generates a synthetic case of about 3,000,000 nodes (hexahedral LV wall), then runs each step as
its own ``scar-reconstruct`` process and reports its wall time and peak resident memory: prepare,
a short train (2 epochs: the model's quality does not matter for the cost of prediction), and
predict with 20 MC samples (reading the mesh, MC passes, writing the output mesh).
Targets (issue 5): under 4 GiB peak, prediction under a minute.

With ``--whole-run`` it times the whole ``scar-reconstruct run`` instead (default training to its
stop, 20 MC passes, the report; issue 31's figure at 1.4 million nodes), ``--repeats`` times, each
with the run's own line of stage times.

    .venv/bin/python benchmarks/scale.py [--nodes 3000000] [--mc-samples 20]
    .venv/bin/python benchmarks/scale.py --nodes 1400000 --whole-run [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pycemrg_scar_reconstruction import SynthConfig, synth

RUNNER = (
    "import resource, sys; from pycemrg_scar_reconstruction.cli import main; rc = main(sys.argv[1:]); "
    "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
)


def step(name: str, argv: list[str]) -> None:
    """Run one command in its own process; print its wall time, peak memory and (``run``) its stage line."""
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{name} failed: {out.stderr.strip()}")
    peak = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("PEAK_RSS_MB")][0]
    stages = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("time:")]
    extra = f"   {stages[-1]}" if stages else ""
    print(f"{name:8s} {seconds:7.1f} s   peak resident {float(peak):8.0f} MiB{extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3_000_000)
    parser.add_argument("--mc-samples", type=int, default=20)
    parser.add_argument("--whole-run", action="store_true", help="time `scar-reconstruct run` instead of each step")
    parser.add_argument("--repeats", type=int, default=1, help="whole runs (--whole-run)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the whole run (default: its own rule)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = synth(SynthConfig(seed=0, n_nodes=args.nodes), Path(tmp) / "case")
        print(f"settings: nodes~{args.nodes} mc_samples={args.mc_samples} (synth took {time.perf_counter() - t0:.0f} s)")
        inputs = [
            "--mesh",
            str(paths["mesh"]),
            "--image",
            str(paths["image"]),
            "--mask",
            str(paths["mask"]),
            "--slice-thickness",
            "8",
        ]
        if args.whole_run:
            threads = [] if args.threads is None else ["--threads", str(args.threads)]
            for k in range(args.repeats):
                run = ["run", *inputs, "--output", f"{tmp}/run{k}/out.vtu", "--threshold", "0.5", *threads]
                step("run", [*run, "--mc-samples", str(args.mc_samples)])
            return
        step("prepare", ["prepare", *inputs, "--output", f"{tmp}/data.npz"])
        step("train", ["train", "--data", f"{tmp}/data.npz", "--output", f"{tmp}/model.pt", "--max-epochs", "2", "-q"])
        step(
            "predict",
            [
                "predict",
                "--model",
                f"{tmp}/model.pt",
                "--mesh",
                str(paths["mesh"]),
                "--output",
                f"{tmp}/out.vtu",
                "--mc-samples",
                str(args.mc_samples),
            ],
        )


if __name__ == "__main__":
    main()
