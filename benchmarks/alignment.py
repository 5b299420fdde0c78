"""Breath-hold misregistration: Dice without and with slice alignment, and the offsets' error.

For each seed and shift (standard deviation of the per-slice offsets in plane; half of it through
plane), a synthetic case is made with ``synth --shift`` and reconstructed with the defaults,
without alignment and with ``align_slices`` (in-plane offsets from each slice's mask). Printed:
Dice against the truth, and the RMS error of the estimated offsets (in plane; through plane the
error is the true offset, since it is not estimated).

    .venv/bin/python benchmarks/alignment.py --seeds 0 1 2 3 4 --shifts 0 2 4 [--intensity]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    dice,
    predict,
    prepare,
    synth,
    train,
)

QUIET = RuntimeConfig(quiet=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 2.0, 4.0])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--intensity", action="store_true", help="raw LGE intensities plus a mask")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"settings: seeds={args.seeds} shifts={args.shifts} nodes~{args.nodes} intensity={args.intensity}")
    variants = {
        "none": {},
        "align": {"align_slices": True},
        "align in-plane": {"align_slices": True, "align_max_normal_mm": 0},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shift in args.shifts:
            for seed in args.seeds:
                case = synth(
                    SynthConfig(seed=seed, n_nodes=args.nodes, shift=shift, intensity=args.intensity),
                    Path(tmp) / f"{seed}_{shift}",
                )
                facts = json.loads(case["facts"].read_text())
                truth = np.asarray(pv.read(case["mesh"]).point_data["scar_truth"], dtype=np.float64)
                true = np.asarray(facts.get("slice_offsets_mm", {}).get("lge", np.zeros((facts["image_shape"][2], 3))))
                mesh = MeshConfig(path=case["mesh"])
                stack = StackConfig(
                    path=case["image"],
                    mask=case["mask"],
                    slice_thickness=facts["slice_thickness_mm"],
                    target="intensity" if args.intensity else "probability",
                )
                row: dict = {"shift": shift, "seed": seed}
                for name, extra in variants.items():
                    t0 = time.perf_counter()
                    data = prepare(PrepareConfig(mesh=mesh, stacks=[stack], **extra))
                    t_prep = time.perf_counter() - t0
                    fitted = train(data, TrainConfig(), runtime=QUIET)
                    p = predict(fitted, mesh, None, PredictConfig()).probability
                    row[name] = round(dice(p, truth), 3)
                    row[f"{name} prepare s"] = round(t_prep, 1)
                    row[f"{name} train s"] = round(fitted.seconds, 1)
                    est = data.stacks[0].slice_offsets
                    if extra:
                        est = np.zeros_like(true) if est is None else est
                        row[f"{name} rms in-plane mm"] = round(float(np.sqrt(np.mean((est[:, :2] - true[:, :2]) ** 2))), 2)
                        row[f"{name} rms normal mm"] = round(float(np.sqrt(np.mean((est[:, 2] - true[:, 2]) ** 2))), 2)
                row["true rms in-plane mm"] = round(float(np.sqrt(np.mean(true[:, :2] ** 2))), 2)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(
        "\n| shift sd mm | seed | Dice none | Dice aligned | offsets RMS error in plane / normal (mm) | true RMS in plane |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shift']:g} | {r['seed']} | {r['none']:.3f} | {r['align']:.3f} | {r['align rms in-plane mm']:.2f} / "
            f"{r['align rms normal mm']:.2f} | {r['true rms in-plane mm']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
