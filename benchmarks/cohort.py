"""Cohort throughput: N synthetic patients with 1 and 2 Dask workers, and the machinery's overhead.

Every patient does the same fixed work (``--max-epochs E --patience E``: no early stop), so the
runs differ only in how they are scheduled. Timed, all in this one run (wall clock):

* ``plain run``: ``scar-reconstruct run --threads 1`` once per patient, one after another (what a
  user's shell loop does: a new process, and torch imported, per patient);
* ``cohort, 1 worker`` and ``cohort, 2 workers`` (one thread each), and ``cohort, 1 worker x 2
  threads``: ``scar-reconstruct cohort`` on the same manifest, fresh output folder each time.

Printed: seconds, patients per minute, the 2-worker speed-up over 1 worker, and the cohort's
per-patient overhead against plain ``run`` ((cohort 1 worker - plain) / plain: negative when the
cohort is faster, e.g. because torch is imported once per worker, not once per patient).

    .venv/bin/python benchmarks/cohort.py [--patients 8] [--nodes 20000] [--epochs 60]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "pycemrg_scar_reconstruction.cli"]


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    print(f"settings: patients={args.patients} nodes~{args.nodes} epochs={args.epochs} cores={os.cpu_count()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rows = []
        for i in range(args.patients):
            case = tmp / f"p{i}"
            _timed([*CLI, "synth", "--output-dir", str(case), "--seed", str(i), "--n-nodes", str(args.nodes)])
            rows.append(
                {
                    "id": f"p{i}",
                    "mesh": f"p{i}/mesh.vtu",
                    "image": f"p{i}/lge.nii.gz",
                    "slice_thickness": 8,
                    "max_epochs": args.epochs,
                    "patience": args.epochs,
                    "truth": "scar_truth",
                }
            )
        manifest = tmp / "manifest.csv"
        with open(manifest, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

        plain = 0.0
        for r in rows:
            plain += _timed(
                [
                    *CLI,
                    "run",
                    "--mesh",
                    str(tmp / r["mesh"]),
                    "--image",
                    str(tmp / r["image"]),
                    "--slice-thickness",
                    "8",
                    "--max-epochs",
                    str(args.epochs),
                    "--patience",
                    str(args.epochs),
                    "--threads",
                    "1",
                    "-q",
                    "--output",
                    str(tmp / "plain" / r["id"] / "scar.vtu"),
                ]
            )
        timings = {"plain run (1 thread)": plain}
        for label, extra in (
            ("cohort, 1 worker", ["--workers", "1", "--threads", "1"]),
            ("cohort, 2 workers", ["--workers", "2", "--threads", "1"]),
            ("cohort, 1 worker x 2 threads", ["--workers", "1", "--threads", "2"]),
        ):
            out = tmp / label.replace(" ", "_").replace(",", "")
            timings[label] = _timed([*CLI, "cohort", "--manifest", str(manifest), "--output-dir", str(out), *extra])
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        print("| schedule | seconds | patients per minute |\n|---|---|---|")
        for label, seconds in timings.items():
            print(f"| {label} | {seconds:.1f} | {60 * args.patients / seconds:.2f} |")
        one, two = timings["cohort, 1 worker"], timings["cohort, 2 workers"]
        print(f"2 workers vs 1 worker: {one / two:.2f}x the throughput (target >= 1.7)")
        print(f"2 workers vs 1 worker x 2 threads: {timings['cohort, 1 worker x 2 threads'] / two:.2f}x")
        print(f"cohort overhead per patient vs plain run: {100 * (one - plain) / plain:+.1f}% (target < 10%)")


if __name__ == "__main__":
    main()
