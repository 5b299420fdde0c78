"""The scar burden by element volume against the truth's: the network's and the slice baselines'.

For every seed and kind (synthetic, 20,000 nodes unless ``--nodes``): the case is reconstructed
with the defaults (``reconstruct``, as ``run``), and the slice baselines (nearest, linear) are
computed from the same stack. Each one's scar burden is summed as ``predict`` sums it
(``api._common.burden``: element volumes, classes by the elements' mean probability, the LV region's
elements on biventricular kinds) and so is the truth's. Printed per case: Dice (nodes >= 0.5), the
core scar (elements >= 0.5) and the expected scar (volume x probability) in mL against the
truth's; then per kind and method the relative errors: of the core against the truth's scar
volume (its expected volume: the truth is 0 / 1 at the nodes, so that is each element's share of
scar nodes times its volume), of the expected volume against the same, and of the core against
the truth's core (which counts an element half of whose nodes are scar whole, so it is biased
high). Then every real
case found (as ``benchmarks/real.py``: the label map, region ``is_LV``): the network's core burden
against the labels' share of scar pixels.

    .venv/bin/python benchmarks/burden.py [--seeds 0 1 2 3 4] [--kinds probability intensity ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from _cases import written_cases
from real import REAL, label_config
from whole_run import KINDS

from pycemrg_scar_reconstruction import (
    MeshConfig,
    PredictConfig,
    RuntimeConfig,
    TrainConfig,
    dice,
    reconstruct,
)
from pycemrg_scar_reconstruction.api import baseline
from pycemrg_scar_reconstruction.api._common import burden, elements

DEFAULT_KINDS = ("probability", "intensity", "biventricular", "real-like", "real-like intensity biventricular")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=20_000)
    kinds = [k for k in KINDS if not k.endswith("labels")]  # the label kinds need their label map
    parser.add_argument("--kinds", nargs="*", default=list(DEFAULT_KINDS), choices=kinds)
    parser.add_argument("--data", type=Path, default=REAL, help=f"folder of the real cases (default: {REAL})")
    args = parser.parse_args()
    print("| seed | kind | method | Dice | core mL (truth) | expected mL (truth) | myocardium mL |")
    print("|---|---|---|---|---|---|---|")
    errors: dict[str, list[tuple[str, float, float, float]]] = {}
    for case in written_cases(args.seeds, args.kinds, KINDS, args.nodes):
        seed, kind, prepare_config = case.seed, case.kind, case.prepare
        mesh, truth, _ = case.truth()
        result = reconstruct(prepare_config, TrainConfig(), case.folder / "out.vtu", runtime=RuntimeConfig(quiet=True))
        region = None if result.in_region.all() else np.asarray(result.in_region, bool)
        nodes = slice(None) if region is None else region
        mesh_config = MeshConfig(path=case.files["mesh"])
        true = burden(mesh, elements(mesh, truth), PredictConfig(), mesh_config, region)
        assert true is not None
        methods = {"network": result.probability}
        for name in ("nearest", "linear"):
            methods[name] = baseline(name, prepare_config)
        for name, values in methods.items():
            found = burden(mesh, elements(mesh, np.asarray(values, np.float64)), PredictConfig(), mesh_config, region)
            assert found is not None
            errors.setdefault(name, []).append(
                (
                    kind,
                    found["core_ml"] / true["expected_ml"] - 1.0,
                    found["expected_ml"] / true["expected_ml"] - 1.0,
                    found["core_ml"] / true["core_ml"] - 1.0,
                )
            )
            print(
                f"| {seed} | {kind} | {name} | {dice(np.asarray(values)[nodes], truth[nodes]):.3f} | "
                f"{found['core_ml']:.2f} ({true['core_ml']:.2f}) | {found['expected_ml']:.2f} "
                f"({true['expected_ml']:.2f}) | {found['myocardium_ml']:.1f} |",
                flush=True,
            )
    print(
        "\n| kind | method | relative error, min .. max (median size): core against the truth's scar volume "
        "| expected against it | core against the truth's core |"
    )
    print("|---|---|---|---|---|")
    for kind in args.kinds:
        for name, rows in errors.items():
            cells = []
            for column in (1, 2, 3):
                arr = np.array([r[column] for r in rows if r[0] == kind])
                cells.append(f"{arr.min():+.0%} .. {arr.max():+.0%} ({np.median(np.abs(arr)):.0%})")
            print(f"| {kind} | {name} | {' | '.join(cells)} |")
    for folder in sorted(p for p in Path(args.data).glob("*") if (p / "sa_labels.nii.gz").exists()):
        with tempfile.TemporaryDirectory() as tmp:
            config = label_config(folder)
            result = reconstruct(config, TrainConfig(), Path(tmp) / "out.vtu", runtime=RuntimeConfig(quiet=True))
            labels = np.asarray(nib.load(folder / "sa_labels.nii.gz").dataobj)
            share = float((labels == 2).sum() / np.isin(labels, (1, 2)).sum())
            b = result.burden
            assert b is not None
            print(
                f"\n{folder.name}: the network's core scar {b['core_ml']:.2f} mL, {b['core_share']:.1%} of "
                f"{b['myocardium_ml']:.1f} mL of myocardium (expected {b['expected_share']:.1%}); "
                f"the labels' scar pixels: {share:.1%} of the myocardium's"
            )


if __name__ == "__main__":
    main()
