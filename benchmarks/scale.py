"""Benchmark: prepare and predict on a mesh of millions of nodes; seconds and peak memory of each.

Generates a synthetic case of about 3,000,000 nodes (hexahedral LV wall), then runs each step as
its own ``scar-reconstruct`` process and reports its wall time and peak resident memory: prepare,
a short train (2 epochs: the model's quality does not matter for the cost of prediction), and
predict with 20 MC samples (reading the mesh, MC passes, writing the output mesh).
Targets (issue 5): under 4 GiB peak, prediction under a minute.

    .venv/bin/python benchmarks/scale.py [--nodes 3000000] [--mc-samples 20]
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
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{name} failed: {out.stderr.strip()}")
    peak = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("PEAK_RSS_MB")][0]
    print(f"{name:8s} {seconds:7.1f} s   peak resident {float(peak):8.0f} MiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3_000_000)
    parser.add_argument("--mc-samples", type=int, default=20)
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
