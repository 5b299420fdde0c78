"""Real cases: held-out slices of a real label stack, and each normalisation's agreement with the expert.

For every real case (a folder with ``sa_labels.nii.gz``: 1 myocardium, 2 scar; ``sa_lge.nii.gz``;
``mesh.vtu`` with the cell array ``is_LV``; read where it lies, never copied):

0. **Its own slices.** Trained on every slice, the training slices' scar given back (group means
   >= 0.5 against the label).
1. **Held-out slices.** Each slice with scar, and each traced neighbour of one, is blanked in turn;
   the rest is reconstructed and the blanked slice is scored against its own manual scar, the
   way ``validate`` scores groups: each pixel's prism, the group mean of the nodes inside it,
   >= 0.5 against the label. Pooled over the folds:
   - the network (default training) as ``predict`` gives it (the support rule: the prior only
     beyond the images' coverage), with version 0.2.0's support rule (the prior beyond half a
     slice spacing from any supervised node), and without a rule (``--support-mm 1000``);
   - the slice baselines of ``baseline`` (nearest, linear, logodds) on the stack with the slice
     blanked, pixels without a value taken as missing;
   - the image-domain neighbour baselines (the two neighbouring slices' labels on the same pixels):
     linear (scar where either has it, 0.5 counting as scar), nearest, both, and shape-based
     interpolation (the mean of their scar's signed distance maps).
   Dice is given on all the blanked pixels and on the pixels where the image-domain baseline has
   a value (both neighbours, or one, label that pixel), so every method is on the same pixels.
2. **Intensity -> scar agreement.** The PSIR stack with the myocardium labels as mask, through each
   normalisation (``mixture`` with the mesh's tissue fractions, ``fwhm``, ``nsd`` at 3 and 5 SD
   with the labelled non-scar myocardium as remote, ``minmax``): pixel-by-pixel Dice of the targets
   >= 0.5 with the expert's scar, over the myocardium pixels.

    .venv/bin/python benchmarks/real.py [--data DIR] [--cases human_p1] [--seed 0]
    .venv/bin/python benchmarks/real.py --move 4 5     # the mesh moved 4 mm and 5 degrees first
    .venv/bin/python benchmarks/real.py --train min_delta=5e-3   # a training setting judged here
    .venv/bin/python benchmarks/real.py --save heldout/   # the pooled held-out values kept
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import yaml
from scipy import ndimage

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PrepareConfig,
    RuntimeConfig,
    SliceStack,
    StackConfig,
    TargetConfig,
    TrainConfig,
    dice,
)
from pycemrg_scar_reconstruction.api.prepare import run_stages
from pycemrg_scar_reconstruction.baselines import METHODS
from pycemrg_scar_reconstruction.data import TrainingData
from pycemrg_scar_reconstruction.folds import subset
from pycemrg_scar_reconstruction.heldout import neighbour_baselines, training_values
from pycemrg_scar_reconstruction.metrics import average_precision, separation_auc
from pycemrg_scar_reconstruction.prediction import predict_nodes
from pycemrg_scar_reconstruction.training import fit

ROOT = Path(__file__).resolve().parents[1]
#: Where the project keeps its real cases (beside the clone, not in it).
REAL = ROOT.parent / "shared" / "data" / "real"
THICKNESS_MM = 8.0
#: The network as ``predict`` gives it.
NETWORK = "network (support rule, default)"
#: "support rule off": a cutoff no node of a heart reaches.
NO_SUPPORT_MM = 1000.0


def label_config(case: Path, mesh: Path | None = None) -> PrepareConfig:
    """The label stack as a user gives it: scar label 2, myocardium labels 1 and 2, LV cells; a
    moved copy of the mesh (``mesh``) with the study registered to it (``--register rigid``)."""
    target = TargetConfig(kind="label", scar_label=(2,))
    stack = StackConfig(
        path=case / "sa_labels.nii.gz", target=target, myocardium_labels=(1, 2), slice_thickness=THICKNESS_MM
    )
    mesh_config = MeshConfig(path=mesh or case / "mesh.vtu", region_array="is_LV", region_values=(1,))
    return PrepareConfig(mesh=mesh_config, stacks=[stack], study_registration="rigid" if mesh else None)


def moved_mesh(case: Path, offset_mm: float, angle_deg: float, folder: Path) -> tuple[Path, np.ndarray]:
    """A copy of the case's mesh (in a temporary folder) moved by ``offset_mm`` and turned by
    ``angle_deg`` about its centre, in fixed directions: as a mesh made from another scan.
    Returns (its path, the true study-to-mesh transform)."""
    import pyvista as pv

    from pycemrg_scar_reconstruction.geometry import apply_affine
    from pycemrg_scar_reconstruction.registration_cost import rigid_matrix

    mesh = pv.read(str(case / "mesh.vtu"))
    direction, axis = np.array([0.6, -0.48, 0.64]), np.array([0.36, 0.48, -0.8])  # unit vectors
    params = np.r_[offset_mm * direction, angle_deg * axis]
    matrix = rigid_matrix(params, np.asarray(mesh.points).mean(axis=0))
    mesh.points = apply_affine(matrix, np.asarray(mesh.points))
    path = folder / "moved_mesh.vtu"
    mesh.save(str(path))
    return path, matrix


def blanked(stack: SliceStack, k: int) -> SliceStack:
    """The stack with slice ``k`` without values (NaN), as if it had not been acquired."""
    values = np.array(stack.values, dtype=np.float64)
    index: list[slice | int] = [slice(None)] * 3
    index[stack.geometry.axis] = k
    values[tuple(index)] = np.nan
    return SliceStack(values=values, geometry=stack.geometry, mask=stack.mask, name=stack.name, mapping=stack.mapping)


def shape_based(data: TrainingData, held: np.ndarray) -> np.ndarray:
    """Shape-based interpolation of the ``held`` groups' scar from the neighbouring slices: the mean of
    their scar's signed distance maps (mm, in plane) <= 0 where both label the pixel, the one that
    labels it otherwise; NaN where neither does. The classic way to interpolate a segmentation."""
    out = np.full(int(held.sum()), np.nan)
    for s, g in enumerate(data.stacks):
        values = training_values(data, held, s)
        plane = [a for a in range(3) if a != g.axis]
        spacing = g.spacing[plane]
        idx = np.flatnonzero(data.group_stack[held] == s)
        vox = data.group_voxel[held][idx]
        for k in np.unique(vox[:, g.axis]):  # the few blanked slices
            rows = idx[vox[:, g.axis] == k]
            ij = data.group_voxel[held][rows][:, plane]
            signed, labelled = [], []
            for kk in (k - 1, k + 1):
                layer = np.take(values, kk, axis=g.axis) if 0 <= kk < g.shape[g.axis] else np.full(values.shape[:2], np.nan)
                scar = np.nan_to_num(layer) >= 0.5
                inside = ndimage.distance_transform_edt(scar, sampling=spacing)
                outside = ndimage.distance_transform_edt(~scar, sampling=spacing) if scar.any() else np.full(scar.shape, 1e6)
                signed.append((outside - inside)[tuple(ij.T)])
                labelled.append(np.isfinite(layer)[tuple(ij.T)])
            (d0, d1), (l0, l1) = signed, labelled
            mean = np.where(l0 & l1, 0.5 * (d0 + d1), np.where(l0, d0, d1))
            out[rows] = np.where(l0 | l1, (mean <= 0).astype(float), np.nan)
    return out


def heldout(case: Path, seed: int, mesh: Path | None = None, train: dict | None = None, save: Path | None = None) -> None:
    run = run_stages(label_config(case, mesh))
    if run.registration is not None:
        reg = run.registration
        print(f"registration ({'applied' if reg['applied'] else 'not applied'}): {reg['moved_mm']:.2f} mm RMS at the masks")
    data, stack = run.data, run.stacks[0]
    assert data is not None
    scar_slices = np.unique(data.group_slice[data.group_target >= 0.5])
    traced = set(np.unique(data.group_slice).tolist())
    folds = sorted({int(k + d) for k in scar_slices for d in (-1, 0, 1)} & traced)
    print(
        f"{case.name}: {data.n_groups} labelled pixels on slices {min(traced)}-{max(traced)}, scar on {scar_slices.tolist()}"
    )
    print(f"folds (each blanked in turn): {folds}")
    rows: dict[str, list[np.ndarray]] = {"target": [], "common": []}
    quiet = RuntimeConfig(quiet=True)
    start = time.perf_counter()
    fold_epochs: list[int] = []  # each fold's training length (a stopping rule's reach)
    # every slice given: the training slices' own scar back (group means >= 0.5 against the label)
    whole = fit(data, TrainConfig(seed=seed, **(train or {})), quiet, progress=False)
    own = data.group_mean(predict_nodes(whole, data.points, 20, 0, region=run.region).probability)
    print(
        f"own training slices given back: Dice {dice(own, data.group_target):.3f} "
        f"({len(whole.history)} epochs, best {whole.best_epoch}, {whole.stop_reason})"
    )
    for k in folds:
        held = data.group_slice == k
        fitted = fit(subset(data, ~held), TrainConfig(seed=seed, **(train or {})), quiet, progress=False)
        fold_epochs.append(len(fitted.history))
        preds = {
            NETWORK: predict_nodes(fitted, data.points, 20, 0, region=run.region).probability,
            "network (support rule of 0.2.0)": predict_nodes(
                fitted, data.points, 20, 0, region=run.region, coverage=False
            ).probability,
            "network (support rule off)": predict_nodes(
                fitted, data.points, 20, 0, support_mm=NO_SUPPORT_MM, region=run.region
            ).probability,
        }
        for name, method in METHODS.items():
            preds[f"slice baseline {name}"] = method(data.points, blanked(stack, k))
        for name, values in preds.items():
            rows.setdefault(name, []).append(data.group_mean(np.asarray(values, np.float64))[held])
        image = neighbour_baselines(data, held)
        for name in ("linear", "nearest"):
            rows.setdefault(f"image-domain neighbours {name}", []).append(image[name])
        # the linear rule counts 0.5 (one neighbour of two with scar) as scar: "either"; "both" does not
        both = np.where(np.isfinite(image["linear"]), (image["linear"] > 0.5).astype(float), np.nan)
        rows.setdefault("image-domain neighbours both", []).append(both)
        rows.setdefault("image-domain neighbours shape-based", []).append(shape_based(data, held))
        rows["target"].append(data.group_target[held])
        rows["common"].append(np.isfinite(image["linear"]))
    target, common = np.concatenate(rows.pop("target")), np.concatenate(rows.pop("common"))
    seconds, n_scar = time.perf_counter() - start, int((target >= 0.5).sum())
    if save is not None:  # every method's pooled group means, for other scores than Dice at 0.5
        arrays: dict[str, Any] = {k: np.concatenate(v) for k, v in rows.items()}
        np.savez_compressed(save, target=target, common=common, **arrays)
    print(
        f"{len(folds)} folds in {seconds:.0f} s ({min(fold_epochs)}-{max(fold_epochs)} epochs); "
        f"{len(target)} blanked pixels, {n_scar} scar"
    )
    # Dice at 0.5 depends on where a method puts its 0.5 (the neighbours' linear rule gives exactly 0.5
    # where one neighbour has scar); ROC AUC and average precision rank the pixels instead
    n = int(common.sum())
    print(
        f"| method | Dice, all {len(target)} pixels | Dice, the {n} pixels a neighbour labels | ROC AUC, the {n} | "
        f"average precision, the {n} |"
    )
    print("|---|---|---|---|---|")
    truth = target[common] >= 0.5
    for name, parts in rows.items():
        pred = np.concatenate(parts)
        on_all = "n/a" if np.isnan(pred).any() else f"{dice(pred, target):.3f}"
        auc, ap = separation_auc(pred[common], truth), average_precision(pred[common], truth)
        print(f"| {name} | {on_all} | {dice(pred[common], target[common]):.3f} | {auc:.3f} | {ap:.3f} |")
    # how often the blanked slice has scar where its neighbours have it, and what the network says there
    linear, network = np.concatenate(rows["image-domain neighbours linear"])[common], np.concatenate(rows[NETWORK])[common]
    print(f"\nThe {n} pixels by their neighbours' scar: how many are scar, and the network's value there")
    print("| neighbours with scar | pixels | share scar | network mean | network share >= 0.5 |")
    print("|---|---|---|---|---|")
    for label, where in (
        ("both (or the only one)", linear >= 0.75),
        ("one of two", (linear > 0.25) & (linear < 0.75)),
        ("none", linear <= 0.25),
    ):
        if where.any():
            print(
                f"| {label} | {int(where.sum())} | {truth[where].mean():.2f} | {network[where].mean():.2f} | "
                f"{np.mean(network[where] >= 0.5):.2f} |"
            )
    # why a method misses: its values on the blanked scar pixels (a near miss sits just under 0.5)
    scar = (target >= 0.5) & common
    print(f"\nOn the {int(scar.sum())} blanked scar pixels a neighbour labels: each method's value")
    print("| method | median | share >= 0.5 | share in [0.25, 0.5) | share < 0.25 |")
    print("|---|---|---|---|---|")
    for name, parts in rows.items():
        v = np.concatenate(parts)[scar]
        print(
            f"| {name} | {np.median(v):.2f} | {np.mean(v >= 0.5):.2f} | {np.mean((v >= 0.25) & (v < 0.5)):.2f} | "
            f"{np.mean(v < 0.25):.2f} |"
        )


def registration_error(case: Path, mesh: Path, truth: np.ndarray) -> None:
    """How far the default registration's transform is from the true one, at the masks."""
    from pycemrg_scar_reconstruction.geometry import apply_affine
    from pycemrg_scar_reconstruction.registration import mask_centres, transform_error

    run = run_stages(label_config(case, mesh), until="register")
    reg = run.registration
    assert reg is not None and run.raw[0].mask is not None
    centres = mask_centres(run.raw[0].geometry, run.raw[0].mask)
    mm, deg = transform_error(np.asarray(reg["study_to_mesh"]), truth, centres)
    moved = float(np.sqrt(np.mean(np.sum((apply_affine(truth, centres) - centres) ** 2, axis=1))))
    print(f"{case.name} moved by {moved:.2f} mm RMS at the masks: registration error {mm:.2f} mm, {deg:.2f} deg")


def agreement(case: Path) -> None:
    """Each normalisation's targets against the expert's scar, pixel by pixel."""
    labels = nib.load(str(case / "sa_labels.nii.gz"))
    label = np.asarray(labels.dataobj)
    myocardium, scar = label >= 1, label == 2
    with tempfile.TemporaryDirectory() as tmp:
        remote = Path(tmp) / "remote.nii.gz"
        nib.save(nib.Nifti1Image((label == 1).astype(np.uint8), labels.affine), str(remote))
        settings = {
            "mixture": TargetConfig(kind="intensity", normalise="mixture"),
            "fwhm": TargetConfig(kind="intensity", normalise="fwhm"),
            "nsd 3 SD": TargetConfig(kind="intensity", normalise="nsd", n_sd=3.0),
            "nsd 5 SD": TargetConfig(kind="intensity", normalise="nsd", n_sd=5.0),
            "minmax": TargetConfig(kind="intensity", normalise="minmax"),
        }
        counts = f"{int(scar.sum())} scar of {int(myocardium.sum())} myocardium pixels"
        print(f"\n{case.name}: intensity -> scar, pixel by pixel against the expert ({counts})")
        print("| normalisation | Dice | pixels called scar |")
        print("|---|---|---|")
        for name, target in settings.items():
            stack = StackConfig(
                path=case / "sa_lge.nii.gz",
                mask=case / "sa_labels.nii.gz",
                remote_mask=remote,
                target=target,
                slice_thickness=THICKNESS_MM,
            )
            config = PrepareConfig(mesh=MeshConfig(path=case / "mesh.vtu"), stacks=[stack])
            try:
                values = run_stages(config, until="targets").stacks[0].values
            except Exception as exc:  # a normalisation that refuses this image says why
                print(f"| {name} | refused: {str(exc).splitlines()[0][:80]} | |")
                continue
            called = np.nan_to_num(values) >= 0.5
            score = dice(called[myocardium].astype(float), scar[myocardium].astype(float))
            print(f"| {name} | {score:.3f} | {int(called[myocardium].sum())} |")


def saved(folder: Path | None, case: Path, seed: int) -> Path | None:
    """Where ``--save`` keeps a case's held-out values (the folder made if need be)."""
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{case.name}_seed{seed}.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL, help=f"folder of the real cases (default: {REAL})")
    parser.add_argument("--cases", nargs="*", default=None, help="case folders to run (default: every one there)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--skip-heldout", action="store_true", help="only the intensity agreement")
    parser.add_argument(
        "--train",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="training options other than the defaults (e.g. min_delta=5e-3)",
    )
    parser.add_argument(
        "--save", type=Path, metavar="DIR", help="keep every method's held-out group means in DIR/<case>_seed<S>.npz"
    )
    parser.add_argument(
        "--move",
        nargs=2,
        type=float,
        metavar=("MM", "DEG"),
        help="move a copy of the mesh by MM and DEG first (the registration must undo it)",
    )
    args = parser.parse_args()
    train = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.train)}
    names = args.cases or sorted(p.name for p in args.data.iterdir() if (p / "sa_labels.nii.gz").exists())
    if not names:
        raise SystemExit(f"{args.data}: no real case (a folder with sa_labels.nii.gz); give --data")
    for name in names:
        case = args.data / name
        if args.move:
            with tempfile.TemporaryDirectory() as tmp:
                mesh, truth = moved_mesh(case, args.move[0], args.move[1], Path(tmp))
                registration_error(case, mesh, truth)
                if not args.skip_heldout:
                    heldout(case, args.seed, mesh, save=saved(args.save, case, args.seed))
            continue
        if not args.skip_heldout:
            heldout(case, args.seed, train=train, save=saved(args.save, case, args.seed))
        agreement(case)


if __name__ == "__main__":
    main()
