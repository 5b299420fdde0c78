"""Study registration on synthetic studies moved off their mesh: is the transform found, and does
the reconstruction come back to the unmoved case's?

With breath-hold shifts, part of the slices' own offsets (their mean and linear trend over the
stack) looks like a motion of the whole study (a tilt moves each slice in plane in proportion to
its height, as a linear trend of offsets does); the column "breath-hold mean + trend" gives that
part from the case's true offsets: an estimator that reads only the masks is expected to be off
by about that much, whatever it does. The column "error to the best rigid" compares the transform
found with the rigid transform that lies closest (least squares at the mask's pixels) to where each
pixel truly lands on the mesh, offsets included (:func:`best_rigid`): the most a registration of
the whole study can find. The column "truth placed" is the Dice that a perfect reconstruction
keeps when the study is placed by the transform found (:func:`placed_truth_dice`; for the
unmoved study, by the transform it measured, were it applied): what the residual error costs.

For every seed, kind (probability, intensity) and breath-hold shift (0, 2 mm), the same case is
made twice: as is, and with its mesh moved off the stacks by a rigid transform (offset and
rotation drawn per seed from 2-6 mm and 2-8 degrees; ``synth --study-offset --study-rotation``).
The unmoved case is reconstructed with the defaults (the registration measured, not applied: the
"moved mm" column is what it measured) and again with ``--register rigid`` (with breath-hold
shifts the transform then takes up the offsets' rigid part, as on the moved study), the moved one
with ``--register rigid``. Printed per case: the transform's error at the masks (mm RMS) and in
angle (degrees), and the Dice against the 3D truth, unmoved (both ways) and moved.

    .venv/bin/python benchmarks/registration.py [--seeds 0 1 2 3 4] [--nodes 20000]
    .venv/bin/python benchmarks/registration.py --transform-only   # no training: the transform and prepare's time
    .venv/bin/python benchmarks/registration.py --long-axis 2 --align-slices   # views; shifted cases aligned
    .venv/bin/python benchmarks/registration.py --transform-only --biventricular   # LV and RV meshes
    .venv/bin/python benchmarks/registration.py --training-seeds 0 1 2 --skip-unmoved-registered   # mean Dice

``--transform-only`` judges a change of the registration itself (its accuracy and its cost) in a
few minutes: it prepares each case and prints the transform's error and prepare's seconds.
``--training-seeds`` trains each prepared case with several seeds and compares the mean Dice: a
single training's Dice moves by up to about 0.01 with the seed alone (``training_noise.py``), the
size of the comparison's tolerance.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyvista as pv
from _cases import add_case_options, case_config, study_moves, synthetic_data

from pycemrg_scar_reconstruction import RuntimeConfig, SynthConfig, TrainConfig, dice, predict_nodes
from pycemrg_scar_reconstruction.api.prepare import run_stages
from pycemrg_scar_reconstruction.geometry import apply_affine, index_to_world, voxel_spacing
from pycemrg_scar_reconstruction.io.images import load_image
from pycemrg_scar_reconstruction.registration import transform_error
from pycemrg_scar_reconstruction.synthetic import SyntheticCase, make_case
from pycemrg_scar_reconstruction.training import fit

QUIET = RuntimeConfig(quiet=True)


def reconstruct_dice(
    config: SynthConfig,
    folder: Path,
    register: str | None,
    training_seeds: Sequence[int] = (),
    align: bool = False,
) -> tuple[float, dict | None, dict, float]:
    """Mean Dice against the truth of the default reconstruction over ``training_seeds`` (NaN
    without any); the registration; the case's facts; prepare's seconds. ``align``:
    ``--align-slices`` when the case has breath-hold shifts."""
    data, truth, seconds = synthetic_data(
        config, folder, study_registration=register, align_slices=align and config.shift > 0
    )
    facts = json.loads((folder / "case.json").read_text())
    nodes = slice(None)
    if config.biventricular:  # over the LV, as prepare's region (``is_LV``) keeps it
        nodes = np.asarray(pv.read(folder / facts["files"]["mesh"]).point_data["is_LV"], bool)
    scores = []
    for training_seed in training_seeds:
        fitted = fit(data, TrainConfig(seed=training_seed), QUIET, progress=False)
        probability = predict_nodes(fitted, data.points, 20, 0).probability
        scores.append(dice(probability[nodes], truth[nodes]))
    score = float(np.mean(scores)) if scores else float("nan")
    reg = json.loads(data.registration) if data.registration else None
    return score, reg, facts, seconds


def placed_truth_dice(case: SyntheticCase, moved: np.ndarray, found: np.ndarray) -> float:
    """The Dice a perfect reconstruction keeps when the study is placed by ``found`` (study world ->
    mesh) on the unmoved ``case``'s mesh moved by ``moved`` (its true study-to-mesh transform): the
    case's scar field seen through ``found`` at the mesh's nodes against their truth (over the LV).
    What the transform's residual error alone costs, with no training noise."""
    assert case.truth_at is not None
    lv = slice(None) if case.is_lv is None else case.is_lv
    nodes = apply_affine(moved, case.points[lv])
    return dice(case.truth_at(apply_affine(np.linalg.inv(found), nodes)), case.scar_truth[lv])


def breath_hold_part(facts: dict, mask: np.ndarray, affine: np.ndarray) -> tuple[float, float]:
    """What of the true breath-hold offsets a study motion makes too: their least-squares mean and
    linear trend over the masked slices, in plane (mm RMS at the masks' pixels, and the trend as
    a tilt in degrees). The masks barely tell that part from the study's transform (a tilt also
    changes each cross-section's shape, by under 0.5% at 5 degrees)."""
    offsets = facts.get("slice_offsets_mm", {}).get("lge")
    if offsets is None:
        return 0.0, 0.0
    offsets = np.asarray(offsets)
    axis = int(np.argmax(voxel_spacing(affine)))
    counts = np.moveaxis(mask, axis, -1).sum(axis=(0, 1))
    k = np.flatnonzero(counts)
    design = np.column_stack([np.ones(len(k)), k])
    coef = np.linalg.lstsq(design, offsets[k, :2], rcond=None)[0]
    fitted = design @ coef
    mm = float(np.sqrt(np.average(np.sum(fitted**2, axis=1), weights=counts[k])))
    tilt = float(np.degrees(np.arctan(np.linalg.norm(coef[1]) / facts["slice_spacing_mm"])))
    return mm, tilt


def best_rigid(truth: np.ndarray, facts: dict, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The rigid transform closest (least squares at the mask's pixels) to where each pixel truly
    lands on the mesh: pixel x of slice k images heart point x - d_k (``tissue.py``), which the
    study's transform takes to ``truth @ (x - d_k)``. Without offsets this is ``truth``; with them
    it is ``truth`` plus the offsets' rigid part, which is all a registration of the whole study can
    find (the rest is breath-hold residual). Weighted Kabsch by scipy's ``Rotation.align_vectors``."""
    from scipy.spatial.transform import Rotation

    from pycemrg_scar_reconstruction.registration import mask_centres
    from pycemrg_scar_reconstruction.stack import StackGeometry

    geometry = StackGeometry(affine, mask.shape, facts["slice_spacing_mm"], int(np.argmax(voxel_spacing(affine))))
    x = mask_centres(geometry, mask)
    offsets = facts.get("slice_offsets_mm", {}).get("lge")
    y = apply_affine(truth, x if offsets is None else mask_centres(geometry.with_offsets(np.asarray(offsets)), mask))
    rot, _ = Rotation.align_vectors(y - y.mean(axis=0), x - x.mean(axis=0))
    matrix = np.eye(4)
    matrix[:3, :3] = rot.as_matrix()
    matrix[:3, 3] = y.mean(axis=0) - matrix[:3, :3] @ x.mean(axis=0)
    return matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser)
    parser.add_argument("--transform-only", action="store_true", help="no training: the transform and prepare's time")
    parser.add_argument(
        "--long-axis",
        type=int,
        default=0,
        help="long-axis views per case (with masks, registered with the short axis; the error of the short axis "
        "alone on the same case is printed beside)",
    )
    parser.add_argument(
        "--biventricular",
        action="store_true",
        help="biventricular meshes (LV and RV; registered and scored over the LV region, is_LV)",
    )
    parser.add_argument(
        "--align-slices",
        action="store_true",
        help="prepare the cases with breath-hold shifts with --align-slices (unmoved and moved), as a user would",
    )
    parser.add_argument(
        "--training-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="train each prepared case with each of these seeds and compare the mean Dice (one training's Dice "
        "moves by up to about 0.01 with the seed alone: benchmarks/training_noise.py)",
    )
    parser.add_argument(
        "--skip-unmoved-registered",
        action="store_true",
        help="do not reconstruct the unmoved study with --register rigid (a third of the trainings)",
    )
    args = parser.parse_args()
    seeds = [] if args.transform_only else args.training_seeds
    moves = study_moves(args.seeds)
    columns = (
        "seed",
        "kind",
        "shift",
        "moved by",
        "error mm / deg",
        "error to the best rigid mm / deg",
        "short axis alone: error mm / deg",
        "breath-hold mean + trend mm / deg",
        "unmoved: moved mm",
        "truth placed: unmoved measured / moved",
        "Dice unmoved",
        "Dice moved",
        "Dice unmoved, registered",
        "prepare s unmoved / moved",
    )
    print("| " + " | ".join(columns) + " | moved - unmoved | moved - unmoved registered |")
    print("|---" * (len(columns) + 1) + "|")
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        for intensity in (False, True):
            for shift in (0.0, 2.0):
                base = dict(
                    seed=seed,
                    n_nodes=args.nodes,
                    intensity=intensity,
                    shift=shift,
                    long_axis_views=args.long_axis,
                    biventricular=args.biventricular,
                    lv_irregularity=args.lv_irregularity,
                )
                with tempfile.TemporaryDirectory() as tmp:
                    d_unmoved, reg0, _, s0 = reconstruct_dice(
                        SynthConfig(**base), Path(tmp) / "a", None, seeds, args.align_slices
                    )
                    # the same unmoved study with the transform applied: with shifts it takes up the
                    # offsets' rigid part as the moved study's registration does
                    d_unmoved_reg = float("nan")
                    if not args.skip_unmoved_registered:
                        d_unmoved_reg = reconstruct_dice(
                            SynthConfig(**base), Path(tmp) / "b", "rigid", seeds, args.align_slices
                        )[0]
                    offset, angle = moves[seed]
                    moved_config = SynthConfig(**base, study_offset=offset, study_rotation=angle)
                    d_moved, reg, facts, s1 = reconstruct_dice(
                        moved_config, Path(tmp) / "c", "rigid", seeds, args.align_slices
                    )
                    mask, affine = load_image(Path(tmp) / "c" / "lge_mask.nii.gz")
                    centres = index_to_world(np.argwhere(mask > 0.5), affine)
                    found = np.asarray(reg["study_to_mesh"])
                    mm, deg = transform_error(found, np.asarray(facts["study_to_mesh"]), centres)
                    case = make_case(SynthConfig(**base))  # the moved case is its mesh moved by the truth
                    placed = (
                        placed_truth_dice(case, np.eye(4), np.asarray(reg0["study_to_mesh"])),
                        placed_truth_dice(case, np.asarray(facts["study_to_mesh"]), found),
                    )
                    part_mm, part_deg = breath_hold_part(facts, mask > 0.5, affine)
                    best = best_rigid(np.asarray(facts["study_to_mesh"]), facts, mask > 0.5, affine)
                    best_mm, best_deg = transform_error(found, best, centres)
                    sa_alone = "n/a"
                    if args.long_axis:
                        case = {k: Path(tmp) / "c" / name for k, name in facts["files"].items()}
                        config = case_config(moved_config, case, study_registration="rigid", long_axis=False)
                        sa = run_stages(config, until="register").registration
                        assert sa is not None
                        sa_alone = "{:.2f} / {:.2f}".format(
                            *transform_error(np.asarray(sa["study_to_mesh"]), np.asarray(facts["study_to_mesh"]), centres)
                        )
                kind = "intensity" if intensity else "probability"
                rows.append(
                    (mm, deg, best_mm, best_deg, d_moved - d_unmoved, d_moved - d_unmoved_reg, reg0["moved_mm"], s0, s1)
                    + placed
                )
                print(
                    f"| {seed} | {kind} | {shift:g} | {offset:.1f} mm, {angle:.1f} deg | {mm:.2f} / {deg:.2f} | "
                    f"{best_mm:.2f} / {best_deg:.2f} | {sa_alone} | {part_mm:.2f} / {part_deg:.1f} | "
                    f"{reg0['moved_mm']:.2f} | {placed[0]:.3f} / {placed[1]:.3f} | {d_unmoved:.3f} | {d_moved:.3f} | "
                    f"{d_unmoved_reg:.3f} | "
                    f"{s0:.1f} / {s1:.1f} | {d_moved - d_unmoved:+.3f} | {d_moved - d_unmoved_reg:+.3f} |",
                    flush=True,
                )
    mm, deg, best_mm, best_deg, diff, diff_reg, unmoved_mm, s0, s1, placed_unmoved, placed_moved = np.array(rows).T
    print(
        f"\n{len(rows)} cases in {time.perf_counter() - start:.0f} s: "
        f"transform error {mm.max():.2f} mm / {deg.max():.2f} deg "
        f"at most (median {np.median(mm):.2f} / {np.median(deg):.2f}); to the best rigid {best_mm.max():.2f} mm / "
        f"{best_deg.max():.2f} deg at most; moved - unmoved Dice {diff.min():+.3f} .. "
        f"{diff.max():+.3f} (against the unmoved registered {diff_reg.min():+.3f} .. {diff_reg.max():+.3f}); "
        f"the unmoved studies measured {unmoved_mm.min():.2f}-{unmoved_mm.max():.2f} mm; the truth placed by "
        f"the transform found keeps Dice {placed_moved.min():.3f}-{placed_moved.max():.3f} (moved), "
        f"{placed_unmoved.min():.3f}-{placed_unmoved.max():.3f} (unmoved, if applied); "
        f"prepare {np.median(s0):.2f} s unmoved, {np.median(s1):.2f} s moved (medians)"
    )


if __name__ == "__main__":
    main()
