"""The demo: one synthetic patient, reconstructed, checked and compared with the slice baselines.

Steps: synth -> run (prepare + train + predict) -> held-out accuracy (3 folds of whole slices) ->
validate (group constraints and truth) -> report (pictures, report.html) -> baselines (nearest
slice, linear, log-odds). Prints a table and writes
everything to ``out/demo/``: reconstruction.vtu, report.json, slices.png, mesh.png, training.png.

    make demo            # or: .venv/bin/python examples/demo.py --output-dir out/demo
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyvista as pv

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PrepareConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    reconstruct,
    synth,
)
from pycemrg_scar_reconstruction.api import baseline, crossval, output_paths, report
from pycemrg_scar_reconstruction.config import CrossvalConfig, RuntimeConfig, ValidateConfig
from pycemrg_scar_reconstruction.io.artifacts import load_model
from pycemrg_scar_reconstruction.io.paths import write_json
from pycemrg_scar_reconstruction.metrics import calibration_note, dice, mae, misregistration_note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("out/demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--intensity", action="store_true", help="raw LGE-like intensities (normalise mixture)")
    parser.add_argument("--biventricular", action="store_true", help="an RV too; train and predict on the LV region")
    parser.add_argument("--shift", type=float, default=0.0, help="breath-hold misregistration sd in mm (not corrected)")
    parser.add_argument("--folds", type=int, default=3, help="folds of whole slices for the held-out figures (0: none)")
    args = parser.parse_args()
    out = args.output_dir

    t0 = time.perf_counter()
    synth_config = SynthConfig(
        seed=args.seed,
        n_nodes=args.nodes,
        intensity=args.intensity,
        biventricular=args.biventricular,
        shift=args.shift,
    )
    case = synth(synth_config, out / "case")
    facts = json.loads(case["facts"].read_text())
    print(
        f"synthetic case: {facts['n_nodes']} nodes, {facts['n_infarcts']} infarct(s), stack {facts['image_shape']}, "
        f"{facts['slice_spacing_mm']:g} mm spacing, {facts['slice_thickness_mm']:g} mm thick, oblique"
        + (", LGE intensities" if args.intensity else "")
        + (", biventricular" if args.biventricular else "")
    )
    region = {"region_array": "is_LV"} if args.biventricular else {}
    config = PrepareConfig(
        mesh=MeshConfig(path=case["mesh"], **region),
        stacks=[
            StackConfig(
                path=case["image"],
                mask=case["mask"],
                slice_thickness=facts["slice_thickness_mm"],
                target="intensity" if args.intensity else "probability",
            )
        ],
        measure_offsets=True,  # kept for the simulated accuracy, not applied (--align-slices would)
    )
    paths = output_paths(out / "reconstruction.vtu")
    reconstruct(config, TrainConfig.from_preset(), paths["mesh"], with_report=False)
    seconds_ours = time.perf_counter() - t0
    print(f"reconstruction: {paths['mesh']} ({seconds_ours:.0f} s: synth + prepare + train + predict)")

    heldout = None
    if args.folds:
        folds = CrossvalConfig(folds=args.folds, simulate=True)
        fitted = load_model(paths["model"])  # the simulation retrains on the pixels this model's scar would give
        heldout = crossval(paths["data"], fitted.config, RuntimeConfig(quiet=True), folds, fitted=fitted)
    mesh = MeshConfig(path=paths["mesh"], **region)
    result = report(out, paths["data"], mesh, paths["model"], ValidateConfig(truth="scar_truth"), heldout=heldout)
    truth = np.asarray(pv.read(case["mesh"]).point_data["scar_truth"])

    rows = [("ours (MC-dropout MLP)", result["truth"]["dice"], result["truth"]["mae"])]
    summary = {"dice": result["truth"]["dice"], "mae": result["truth"]["mae"]}
    for method in ("nearest", "linear", "logodds"):
        values = baseline(method, config, out / f"baseline_{method}.vtu")
        rows.append((f"baseline: {method}", dice(values, truth), mae(values, truth)))
        summary[f"dice_{method}"], summary[f"mae_{method}"] = rows[-1][1], rows[-1][2]
    seconds = time.perf_counter() - t0
    summary.update(
        {
            "group_rmse": result["overall"]["rmse"],
            "group_share_within": result["overall"]["share_within"],
            "uncertainty_error_spearman": result["truth"].get("uncertainty_error_spearman"),
            "uncertainty_misclassified_auc": result["truth"].get("uncertainty_misclassified_auc"),
            "seconds": seconds,
            "seconds_reconstruction": seconds_ours,
            "support": result.get("support"),
            "heldout": result.get("heldout"),
        }
    )
    write_json({**summary, "report": result}, out / "report.json")

    print("\n| method | Dice (>= 0.5) | MAE |\n|---|---|---|")
    for name, d, m in rows:
        print(f"| {name} | {d:.3f} | {m:.4f} |")
    o = result["overall"]
    print(
        f"\ngroup constraints: RMSE {o['rmse']:.4f}, {100 * o['share_within']:.1f}% of {o['groups']} groups within "
        f"{result['tolerance']:g} -> {'PASS' if result['passed'] else 'FAIL'}"
    )
    auc = summary["uncertainty_misclassified_auc"]
    print(
        f"uncertainty vs error (Spearman): {summary['uncertainty_error_spearman']:.3f}; "
        f"AUC of the uncertainty for misclassified nodes: {'n/a' if auc is None else f'{auc:.3f}'}"
    )
    if heldout is not None:
        print(
            f"held-out pixels ({heldout['folds']} folds of whole slices, each trained without them): "
            f"Dice {heldout['holdout_dice']:.3f}, MAE {heldout['holdout_mae']:.4f}; neighbour-slice baselines: linear "
            f"{heldout['baseline_dice']['linear']:.3f} / {heldout['baseline_mae']['linear']:.4f}, nearest "
            f"{heldout['baseline_dice']['nearest']:.3f} / {heldout['baseline_mae']['nearest']:.4f}"
        )
        print(f"uncertainty calibration on them: {calibration_note(heldout['calibration'])}")
        sim = heldout["simulated"]
        print(
            f"simulated 3D accuracy (the reconstruction as truth; optimistic; {misregistration_note(sim)}): "
            f"Dice {sim['dice']:.3f}, MAE {sim['mae']:.4f}; against the real truth above: Dice {result['truth']['dice']:.3f}"
        )
    pictures = "slices.png, mesh.png, training.png" + (", calibration.png" if heldout is not None else "")
    print(f"total {seconds:.0f} s; outputs in {out}/ (reconstruction.vtu, report.json, {pictures})")


if __name__ == "__main__":
    main()
