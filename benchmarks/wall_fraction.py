"""Raw intensities' ``min_wall_fraction``: which pixels the mixture may read, on synthetic and real cases.

The mixture reads a pixel's scar fraction only where its prism is at least ``min_wall_fraction``
myocardium (default 0.3): a border pixel that is part blood pool (or outside tissue) is as bright as
scar, and any error of the mesh's tissue fractions there reads as scar. On the real human case
(docs/tutorials/real-case.md) 400 of the 583 target pixels called scar that the expert did not
call lie on the wall's border. This measures, for each fraction given:

- **synthetic** (``--kinds``, 20,000 nodes, seeds 0-4; the intensity kinds of ``whole_run.py``):
  the reconstruction's Dice against the truth (nodes >= 0.5, the LV region on biventricular kinds),
  the mean over ``--training-seeds`` (0 1: one training moves a real-like case's Dice by up to 0.14);
- **real** (every case under ``--data``, as ``real.py`` finds them: ``sa_lge.nii.gz`` with the
  myocardium labels as mask, region ``is_LV``): the targets' pixel Dice with the expert's scar
  over the labelled myocardium (a pixel not read counts as not called), and the reconstruction's
  Dice with it at the expert's pixels (each labelled pixel's group mean, memberships of the label
  stack, >= 0.5), so that every fraction is scored on the same pixels; per training seed, also the
  LV nodes >= 0.5 against the label map's reconstruction with the same seed, and the core scar's
  share of the LV's volume (the label map's reconstruction: 3.1%).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wall_fraction.py [--fractions 0.3 0.5 0.7 0.9] [--training-seeds 0 1]
        [--real-only | --synthetic-only] [--seeds ...] [--kinds ...]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from _cases import written_cases
from real import REAL, THICKNESS_MM, label_config
from whole_run import KINDS

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    TargetConfig,
    TrainConfig,
    dice,
    reconstruct,
)
from pycemrg_scar_reconstruction.api.prepare import run_stages

QUIET = RuntimeConfig(quiet=True)
INTENSITY_KINDS = [k for k, v in KINDS.items() if v.get("intensity")]


def with_fraction(config: PrepareConfig, fraction: float) -> PrepareConfig:
    """``config`` with every intensity stack's ``min_wall_fraction`` set to ``fraction``."""
    stacks = [
        s.model_copy(update={"target": s.target.model_copy(update={"min_wall_fraction": fraction})})
        if s.target.kind == "intensity"
        else s
        for s in config.stacks
    ]
    return config.model_copy(update={"stacks": stacks})


def synthetic(args: argparse.Namespace) -> None:
    """Dice against the truth per case and fraction, then each fraction's change against the first."""
    print(f"mean Dice over training seeds {args.training_seeds}")
    print("| seed | kind | " + " | ".join(f"Dice, fraction {f:g}" for f in args.fractions) + " |")
    print("|---|---|" + "---|" * len(args.fractions))
    changes: dict[float, list[float]] = {f: [] for f in args.fractions}
    for case in written_cases(args.seeds, args.kinds, KINDS, args.nodes):
        _, truth, nodes = case.truth()
        scores = []
        for fraction in args.fractions:
            trained = []
            for seed in args.training_seeds:
                out = case.folder / f"w{fraction:g}-{seed}" / "out.vtu"
                out.parent.mkdir()
                config = with_fraction(case.prepare, fraction)
                result = reconstruct(config, TrainConfig(seed=seed), out, with_report=False, runtime=QUIET)
                trained.append(dice(result.probability[nodes], truth[nodes]))
            scores.append(float(np.mean(trained)))
        for fraction, score in zip(args.fractions, scores):
            changes[fraction].append(score - scores[0])
        print(f"| {case.seed} | {case.kind} | " + " | ".join(f"{s:.3f}" for s in scores) + " |", flush=True)
    print(f"\n| fraction | Dice change against {args.fractions[0]:g}: worst / mean / best |")
    print("|---|---|")
    for fraction, c in changes.items():
        print(f"| {fraction:g} | {min(c):+.3f} / {np.mean(c):+.4f} / {max(c):+.3f} |")


def real(case: Path, fractions: list[float], training_seeds: list[int]) -> None:
    """The targets' and the reconstruction's agreement with the expert's scar on a real case."""
    label = np.asarray(nib.load(str(case / "sa_labels.nii.gz")).dataobj)
    myocardium, scar = label >= 1, label == 2
    reference = run_stages(label_config(case)).data  # every labelled pixel with its nodes
    assert reference is not None
    expert = scar[tuple(reference.group_voxel.T)].astype(float)
    print(f"\n{case.name}: raw intensities against the expert ({int(scar.sum())} scar of {int(myocardium.sum())} pixels)")
    print(
        "| fraction | training seed | targets: Dice, pixels called | reconstruction at the expert's pixels: "
        "Dice, pixels called | LV nodes >= 0.5: Dice with the label map's reconstruction | core scar, % of the LV |"
    )
    print("|---|---|---|---|---|---|")
    stack = StackConfig(
        path=case / "sa_lge.nii.gz",
        mask=case / "sa_labels.nii.gz",
        target=TargetConfig(kind="intensity"),
        slice_thickness=THICKNESS_MM,
    )
    config = PrepareConfig(mesh=MeshConfig(path=case / "mesh.vtu", region_array="is_LV"), stacks=[stack])
    with tempfile.TemporaryDirectory() as tmp:
        labelled = {
            seed: reconstruct(
                label_config(case), TrainConfig(seed=seed), Path(tmp) / f"label{seed}.vtu", with_report=False, runtime=QUIET
            )
            for seed in training_seeds
        }
        for fraction in fractions:
            chosen = with_fraction(config, fraction)
            values = run_stages(chosen, until="targets").stacks[0].values
            called = np.nan_to_num(values) >= 0.5
            targets = dice(called[myocardium].astype(float), scar[myocardium].astype(float))
            for seed in training_seeds:
                out = Path(tmp) / f"w{fraction:g}-{seed}.vtu"
                result = reconstruct(chosen, TrainConfig(seed=seed), out, with_report=False, runtime=QUIET)
                group = reference.group_mean(result.probability) >= 0.5
                region = np.asarray(result.in_region, bool)
                nodes = dice(result.probability[region], labelled[seed].probability[region])
                core = 100 * (result.burden or {}).get("core_share", float("nan"))
                print(
                    f"| {fraction:g} | {seed} | {targets:.3f}, {int(called[myocardium].sum())} | "
                    f"{dice(group.astype(float), expert):.3f}, {int(group.sum())} | {nodes:.3f} | {core:.1f} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=20000)
    parser.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--kinds", nargs="*", default=INTENSITY_KINDS, choices=INTENSITY_KINDS)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--data", type=Path, default=REAL, help=f"folder of the real cases (default: {REAL})")
    parser.add_argument("--real-only", action="store_true", help="the real cases only")
    parser.add_argument("--synthetic-only", action="store_true", help="the synthetic cases only")
    args = parser.parse_args()
    logging.getLogger("pycemrg_scar_reconstruction").setLevel(logging.ERROR)  # the raw-intensity caveat, known
    for case in sorted(p for p in args.data.glob("*") if (p / "sa_lge.nii.gz").exists() and not args.synthetic_only):
        real(case, args.fractions, args.training_seeds)
    if not args.real_only:
        print()
        synthetic(args)


if __name__ == "__main__":
    main()
