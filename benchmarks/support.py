"""The support rule's cutoff on synthetic cases: half the slice spacing, one spacing, or no cutoff.

Nodes further than the cutoff from every supervised node get the prior (0) instead of the
network's value. The rule acts at prediction only, so each case is trained once and predicted
with each cutoff; Dice (>= 0.5) against the 3D truth over the nodes of the region (the LV of a
biventricular case). Kinds: probability; intensity on a biventricular mesh (LV region); probability
with breath-hold shifts (sd 2 mm, left in). The real case's held-out slices are in
``benchmarks/real.py`` (network rows).

    .venv/bin/python benchmarks/support.py [--seeds 0 1 2 3 4] [--nodes 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvista as pv
from _cases import synthetic_data

from pycemrg_scar_reconstruction import RuntimeConfig, SynthConfig, TrainConfig, dice, predict_nodes
from pycemrg_scar_reconstruction.prediction import default_support_mm
from pycemrg_scar_reconstruction.training import fit

KINDS = {
    "probability": {},
    "intensity, biventricular": {"intensity": True, "biventricular": True},
    "probability, shift 2 mm": {"shift": 2.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=20000)
    args = parser.parse_args()
    print("| seed | kind | half spacing | one spacing | no cutoff | nodes given the prior: half / one |")
    print("|---|---|---|---|---|---|")
    start, diffs = time.perf_counter(), []
    for seed in args.seeds:
        for kind, extra in KINDS.items():
            with tempfile.TemporaryDirectory() as tmp:
                config = SynthConfig(seed=seed, n_nodes=args.nodes, **extra)
                data, truth, _ = synthetic_data(config, Path(tmp), study_registration="off")
                mesh = pv.read(str(Path(tmp) / "mesh.vtu"))
                region = np.asarray(mesh.point_data["is_LV"], bool) if "is_LV" in mesh.point_data else None
                fitted = fit(data, TrainConfig(seed=0), RuntimeConfig(quiet=True), progress=False)
                half = default_support_mm(fitted)
                scores, priors = [], []
                for cutoff in (half, 2 * half, 1e6):
                    result = predict_nodes(fitted, data.points, 20, 0, support_mm=cutoff, region=region)
                    nodes = region if region is not None else np.ones(len(truth), bool)
                    scores.append(dice(result.probability[nodes], truth[nodes]))
                    priors.append(int((result.distance > cutoff)[nodes].sum()))
            diffs.append(scores[1] - scores[0])
            print(
                f"| {seed} | {kind} | {scores[0]:.3f} | {scores[1]:.3f} | {scores[2]:.3f} | {priors[0]} / {priors[1]} |",
                flush=True,
            )
    diffs_arr = np.array(diffs)
    print(
        f"\n{len(diffs)} cases in {time.perf_counter() - start:.0f} s: one spacing - half spacing "
        f"{diffs_arr.min():+.3f} .. {diffs_arr.max():+.3f} (mean {diffs_arr.mean():+.4f})"
    )


if __name__ == "__main__":
    main()
