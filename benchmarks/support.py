"""The support rule on synthetic cases: where nodes get the prior (0) instead of the network's value.

Rules compared (all at prediction; each case is trained once and predicted once without a rule;
each rule then chooses the nodes that get the prior): the default (the prior only for nodes more
than half the slice spacing beyond the images' coverage, the supervised nodes' convex hull),
version 0.2.0's rule (the prior for every node further than half the slice spacing from any
supervised node), the hull's inside kept with the 0.2.0 rule outside it, the coverage rule with a
cutoff of one, 0.35 and 0.25 slice spacings, and no rule. Dice (>= 0.5) against the 3D truth over
the nodes of the region (the LV of a biventricular case). Kinds: probability;
intensity on a biventricular mesh (LV region); probability with breath-hold shifts (sd 2 mm, left
in); probability with the study 4 mm and 4 degrees off the mesh (not registered); real-like
(``SynthConfig.real_like``) from probabilities, and from PSIR-like intensities on a biventricular
mesh 3 mm and 3 degrees off the study (not registered). The real case's
held-out slices are in ``benchmarks/real.py`` (network rows).

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
from pycemrg_scar_reconstruction.prediction import apply_support, default_support_mm, outside_distance
from pycemrg_scar_reconstruction.training import fit

KINDS = {
    "probability": {},
    "intensity, biventricular": {"intensity": True, "biventricular": True},
    "probability, shift 2 mm": {"shift": 2.0},
    "probability, study off 4 mm 4 deg": {"study_offset": 4.0, "study_rotation": 4.0},
    "real-like, probability": {"real_like": True},
    "real-like, intensity, biventricular, study off 3 mm 3 deg": {
        "real_like": True,
        "intensity": True,
        "biventricular": True,
        "study_offset": 3.0,
        "study_rotation": 3.0,
    },
}


RULES = (
    "default (coverage)",
    "0.2.0 (half spacing)",
    "outside the hull: 0.2.0",
    "coverage, one spacing",
    "no rule",
    "coverage, 0.35 spacing",
    "coverage, 0.25 spacing",
)


def rules(points: np.ndarray, supervised: np.ndarray, nearest: np.ndarray, half: float) -> list:
    """(distance, cutoff) of each of :data:`RULES`: nodes whose distance exceeds the cutoff get the prior."""
    outside = outside_distance(points, supervised, nearest > 0.5 * half)
    inside = np.isfinite(outside) & (outside == 0) & (nearest > half)
    coverage = np.minimum(outside, nearest)
    hull_or_nearest = np.where(inside, 0.0, nearest)
    return [
        (coverage, half),
        (nearest, half),
        (hull_or_nearest, half),
        (coverage, 2 * half),
        (nearest, np.inf),
        (coverage, 0.7 * half),
        (coverage, 0.5 * half),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=20000)
    args = parser.parse_args()
    print(f"| seed | kind | {' | '.join(RULES)} | nodes given the prior: {' / '.join(RULES[:3])} |")
    print("|---|---|" + "---|" * (len(RULES) + 1))
    start, diffs = time.perf_counter(), []
    for seed in args.seeds:
        for kind, extra in KINDS.items():
            with tempfile.TemporaryDirectory() as tmp:
                config = SynthConfig(seed=seed, n_nodes=args.nodes, **extra)
                data, truth, _ = synthetic_data(config, Path(tmp), study_registration="off")
                mesh = pv.read(str(Path(tmp) / "mesh.vtu"))
                region = np.asarray(mesh.point_data["is_LV"], bool) if "is_LV" in mesh.point_data else None
                nodes = region if region is not None else np.ones(len(truth), bool)
                fitted = fit(data, TrainConfig(seed=0), RuntimeConfig(quiet=True), progress=False)
                # one MC prediction without the rule; each rule then only chooses the nodes that get the prior
                raw = predict_nodes(fitted, data.points, 20, 0, region=region, support_mm=1e6)
                sup = raw.supervised.astype(bool)
                half = default_support_mm(fitted)
                scores, priors = [], []
                for distance, cutoff in rules(data.points, sup, raw.distance.astype(np.float64), half):
                    p, _, beyond = apply_support(raw.probability, raw.uncertainty, distance, cutoff, 0.0)
                    p[~nodes] = 0.0
                    scores.append(dice(p[nodes], truth[nodes]))
                    priors.append(int((beyond & nodes).sum()))
            diffs.append(scores[0] - scores[1])
            cells = " | ".join(f"{x:.3f}" for x in scores)
            print(f"| {seed} | {kind} | {cells} | {priors[0]} / {priors[1]} / {priors[2]} |", flush=True)
    diffs_arr = np.array(diffs)
    print(
        f"\n{len(diffs)} cases in {time.perf_counter() - start:.0f} s: default - 0.2.0 "
        f"{diffs_arr.min():+.3f} .. {diffs_arr.max():+.3f} (mean {diffs_arr.mean():+.4f})"
    )


if __name__ == "__main__":
    main()
