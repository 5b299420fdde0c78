"""When should the study registration be applied by default? Measure-only against rigid, per case.

For every seed and kind (plain probability; plain probability with breath-hold shifts of sd 2 mm;
real-like probability; real-like PSIR-like intensity on a biventricular mesh, LV region), the
case is made as is and with its mesh moved off the stacks (offset and rotation drawn per seed
from 2-6 mm and 2-8 degrees). Each is prepared twice, with the registration measured only (the
default) and applied (``--register rigid``), trained and predicted with the defaults; Dice (>= 0.5)
against the 3D truth over the region's nodes. Printed per case: what the registration measured
(mm RMS at the masks), both Dice and their difference; then, for thresholds T, the policy "apply
when the measurement exceeds T" against measure-only (the default today): the worst and mean
change of Dice over all cases.

    .venv/bin/python benchmarks/register_default.py [--seeds 0 1 2 3] [--nodes 20000] [--lv-irregularity 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv
from _cases import add_case_options, study_moves, synthetic_data

from pycemrg_scar_reconstruction import RuntimeConfig, SynthConfig, TrainConfig, dice, predict_nodes
from pycemrg_scar_reconstruction.training import fit

KINDS = {
    "probability": {},
    "probability, shift 2 mm": {"shift": 2.0},
    "real-like, probability": {"real_like": True},
    "real-like, intensity, biventricular": {"real_like": True, "intensity": True, "biventricular": True},
}
THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)


def score(config: SynthConfig, folder: Path, register: str) -> tuple[float, float]:
    """(Dice over the region's nodes, mm RMS the registration measured) of the default reconstruction."""
    data, truth, _ = synthetic_data(config, folder, study_registration=register)
    mesh = pv.read(str(folder / "mesh.vtu"))
    region = np.asarray(mesh.point_data["is_LV"], bool) if "is_LV" in mesh.point_data else np.ones(len(truth), bool)
    fitted = fit(data, TrainConfig(), RuntimeConfig(quiet=True), progress=False)
    p = predict_nodes(fitted, data.points, 20, 0, region=region).probability
    moved = json.loads(data.registration)["moved_mm"] if data.registration else float("nan")
    return dice(p[region], truth[region]), float(moved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser, seeds=(0, 1, 2, 3))
    args = parser.parse_args()
    moves = study_moves(args.seeds)
    print("| seed | kind | study | measured mm | Dice measure only | Dice rigid | rigid - measure |")
    print("|---|---|---|---|---|---|---|")
    start, rows = time.perf_counter(), []
    for seed in args.seeds:
        for kind, extra in KINDS.items():
            offset, angle = moves[seed]
            for label, move in (
                ("as made", {}),
                (f"moved {offset:.1f} mm {angle:.1f} deg", {"study_offset": offset, "study_rotation": angle}),
            ):
                config = SynthConfig(seed=seed, n_nodes=args.nodes, lv_irregularity=args.lv_irregularity, **extra, **move)
                with tempfile.TemporaryDirectory() as tmp:
                    d_measure, measured = score(config, Path(tmp) / "a", "measure")
                    d_rigid, _ = score(config, Path(tmp) / "b", "rigid")
                rows.append((measured, d_measure, d_rigid))
                print(
                    f"| {seed} | {kind} | {label} | {measured:.2f} | {d_measure:.3f} | {d_rigid:.3f} | "
                    f"{d_rigid - d_measure:+.3f} |",
                    flush=True,
                )
    measured, d_measure, d_rigid = np.array(rows).T
    print(f"\n{len(rows)} cases in {time.perf_counter() - start:.0f} s")
    print("| apply when measured > | cases applied | worst change | mean change |")
    print("|---|---|---|---|")
    for t in THRESHOLDS:
        applied = measured > t
        change = np.where(applied, d_rigid, d_measure) - d_measure
        print(f"| {t:g} mm | {int(applied.sum())} | {change.min():+.3f} | {change.mean():+.4f} |")


if __name__ == "__main__":
    main()
