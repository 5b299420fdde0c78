"""Check a reconstruction against the pixels it was fitted to, with the Python API.

For every group (the mesh nodes inside one pixel's prism) compare the mean predicted probability
with the pixel value; report the RMSE and the share of groups within a tolerance.

    .venv/bin/python examples/validate_group_constraints.py out/demo/reconstruction_data.npz \\
        out/demo/reconstruction.vtu
"""

from __future__ import annotations

import sys
from pathlib import Path

from pycemrg_scar_reconstruction.api import validate
from pycemrg_scar_reconstruction.config import MeshConfig, ValidateConfig
from pycemrg_scar_reconstruction.metrics import format_report


def main(data: Path, mesh: Path) -> int:
    report = validate(data, ValidateConfig(tolerance=0.1, min_share=0.9), mesh=MeshConfig(path=mesh))
    print(format_report(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} TRAINING_DATA.npz RECONSTRUCTION.vtu")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
