"""Start-up time of the command line: ``--help``, ``run --help``, ``--version`` and the bare import,
against an empty Python start, and the first optimiser step training pays (torch's Adam against
``optimiser.Adam``), all in this one run (median of N runs each, wall clock).

    .venv/bin/python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

_STEP = (
    "import torch\n"
    "p = torch.nn.Parameter(torch.zeros(3))\n"
    "opt = {}([p], lr=1e-3)\n"
    "p.grad = torch.ones(3)\n"
    "opt.step()\n"
    "opt.zero_grad()\n"
)
CASES = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "import pycemrg_scar_reconstruction": [sys.executable, "-c", "import pycemrg_scar_reconstruction"],
    "import pycemrg_scar_reconstruction.api (every command)": [
        sys.executable,
        "-c",
        "import pycemrg_scar_reconstruction.api",
    ],
    "scar-reconstruct --version": [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "--version"],
    "scar-reconstruct --help": [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "--help"],
    "scar-reconstruct run --help": [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "run", "--help"],
    "import torch (for scale)": [sys.executable, "-c", "import torch"],
    # what training pays before its first epoch: torch's Adam imports torch._dynamo, ours does not
    "import torch; one step of torch.optim.Adam": [sys.executable, "-c", _STEP.format("torch.optim.Adam")],
    "import torch; one step of optimiser.Adam (training's)": [
        sys.executable,
        "-c",
        "from pycemrg_scar_reconstruction.optimiser import Adam\n" + _STEP.format("Adam"),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; median of {args.runs} runs")
    print("| command | seconds |\n|---|---|")
    for label, cmd in CASES.items():
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
        print(f"| {label} | {statistics.median(times):.3f} |")


if __name__ == "__main__":
    main()
