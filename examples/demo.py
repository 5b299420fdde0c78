"""The demo: generate a synthetic patient, then prepare its training data.

    make demo            # or: .venv/bin/python examples/demo.py --output-dir out/demo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pycemrg_scar_reconstruction.api import prepare, synth
from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, StackConfig, SynthConfig
from pycemrg_scar_reconstruction.data import summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("out/demo"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    case = synth(SynthConfig(seed=args.seed), args.output_dir)
    facts = json.loads(case["facts"].read_text())
    config = PrepareConfig(
        mesh=MeshConfig(path=case["mesh"]),
        stacks=[StackConfig(path=case["image"], mask=case["mask"], slice_thickness=facts["slice_thickness_mm"])],
    )
    data = prepare(config, output=args.output_dir / "training_data.npz")
    print(summary(data))
    print(f"outputs in {args.output_dir}/  ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
