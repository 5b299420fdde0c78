"""Fingerprint of a deterministic run through the CLI: the SHA-1 of every array it writes.

synth (seed 3, 8,000 nodes, one long-axis view) -> prepare (probabilities: both stacks; intensity:
the short axis with mixture) -> train (25 epochs, deterministic) -> predict. Prints one line per
array: identical output before and after a restructuring means results and file formats did not
change.

    .venv/bin/python benchmarks/fingerprint.py [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyvista as pv


def cli(*args: str) -> None:
    """One ``scar-reconstruct`` command in a child process (as a user runs it); stop on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "-q", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")


def sha(values: np.ndarray) -> str:
    """First 16 hex digits of the array's SHA-1 (text arrays by file name: the run's folder varies)."""
    if values.dtype.kind in "US":
        values = np.array([Path(str(v)).name for v in values.ravel()])
    return hashlib.sha1(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def fingerprint(work: Path) -> list[str]:
    """Run the chain in ``work``; return 'file:array sha' lines."""
    lines = []
    for kind, extra in (("probability", []), ("intensity", ["--intensity"])):
        case = work / kind
        cli("synth", "--output-dir", str(case), "--seed", "3", "--n-nodes", "8000", "--long-axis-views", "1", *extra)
        target = ["--target", "intensity", "--normalise", "mixture"] if extra else []
        images = ["--image", str(case / "lge.nii.gz")] + ([] if extra else ["--image", str(case / "lge_la1.nii.gz")])
        masks = ["--mask", str(case / "lge_mask.nii.gz")] + ([] if extra else ["--mask", str(case / "lge_la1_mask.nii.gz")])
        cli("prepare", "--mesh", str(case / "mesh.vtu"), *images, *masks, *target, "--output", str(case / "data.npz"))
        cli(
            "train",
            "--data",
            str(case / "data.npz"),
            "--max-epochs",
            "25",
            "--deterministic",
            "--output",
            str(case / "m.pt"),
        )
        cli("predict", "--model", str(case / "m.pt"), "--mesh", str(case / "mesh.vtu"), "--output", str(case / "out.vtu"))
        with np.load(case / "data.npz", allow_pickle=False) as npz:
            lines += [f"{kind}/data.npz:{k} {sha(npz[k])}" for k in sorted(npz.files)]
        mesh = pv.read(case / "out.vtu")
        lines += [f"{kind}/out.vtu:point:{k} {sha(np.asarray(mesh.point_data[k]))}" for k in sorted(mesh.point_data.keys())]
        lines += [f"{kind}/out.vtu:cell:{k} {sha(np.asarray(mesh.cell_data[k]))}" for k in sorted(mesh.cell_data.keys())]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for the run (default: a temporary one)")
    args = parser.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        lines = fingerprint(args.work)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            lines = fingerprint(Path(tmp))
    print("\n".join(lines))
    print(f"all: {hashlib.sha1(chr(10).join(lines).encode()).hexdigest()}")


if __name__ == "__main__":
    main()
