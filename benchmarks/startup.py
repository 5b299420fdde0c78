"""Start-up time of the command line: ``--help``, ``run --help``, ``--version`` and the bare import,
against an empty Python start, all in this one run (median of N runs each, wall clock).

    .venv/bin/python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

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
