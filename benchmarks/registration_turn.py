"""How firmly the masks fix the study registration's turn about the slice normal, against how far
off that turn comes out, on moved synthetic studies and on the real cases.

For every seed, mesh (LV alone; LV and RV, registered on the LV region) and kind (probability,
intensity), two studies moved as in ``benchmarks/registration.py`` (offset 2-6 mm, rotation 2-8
degrees, drawn per seed): without breath-hold shifts and short axis only, and with shifts of sd
2 mm and two long-axis views with masks. Each is registered (``--register rigid``) and printed: the
transform's error (mm RMS at the masks, degrees), the part of the rotation error about the slice
normal, and ``turn_dice_drop`` (the masks' soft Dice drop at a 5 degree turn about the normal,
``registration.Registration``). Then every real case found (as ``benchmarks/real.py``: the label
map, region ``is_LV``), which is registered already: its figure alone.

    .venv/bin/python benchmarks/registration_turn.py [--seeds 0 1 2 3 4] [--nodes 20000] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from _cases import add_case_options, case_config, study_moves
from real import REAL, label_config
from scipy.spatial.transform import Rotation

from pycemrg_scar_reconstruction import SynthConfig, synth
from pycemrg_scar_reconstruction.api.prepare import run_stages
from pycemrg_scar_reconstruction.geometry import index_to_world, slice_normal, voxel_spacing
from pycemrg_scar_reconstruction.io.images import load_image
from pycemrg_scar_reconstruction.registration import transform_error


def synthetic_row(config: SynthConfig, folder: Path) -> tuple[float, float, float, float]:
    """(error mm, error deg, error about the slice normal deg, turn drop) of one moved study."""
    case = synth(config, folder)
    reg = run_stages(case_config(config, case, study_registration="rigid"), until="register").registration
    assert reg is not None
    truth = np.asarray(json.loads((folder / "case.json").read_text())["study_to_mesh"])
    mask, affine = load_image(folder / "lge_mask.nii.gz")
    found = np.asarray(reg["study_to_mesh"])
    mm, deg = transform_error(found, truth, index_to_world(np.argwhere(mask > 0.5), affine))
    normal = slice_normal(affine, int(np.argmax(voxel_spacing(affine))))
    about = Rotation.from_matrix(found[:3, :3] @ truth[:3, :3].T).as_rotvec(degrees=True) @ (truth[:3, :3] @ normal)
    return mm, deg, float(abs(about)), float(reg["turn_dice_drop"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser)
    parser.add_argument("--data", type=Path, default=REAL, help=f"folder of the real cases (default: {REAL})")
    args = parser.parse_args()
    moves = study_moves(args.seeds)
    print("| seed | mesh | kind | shift mm / views | error mm / deg | about the normal deg | turn drop |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for seed in args.seeds:
        offset, angle = moves[seed]
        for biventricular in (False, True):
            for intensity in (False, True):
                for shift, views in ((0.0, 0), (2.0, 2)):
                    config = SynthConfig(
                        seed=seed,
                        n_nodes=args.nodes,
                        intensity=intensity,
                        biventricular=biventricular,
                        shift=shift,
                        long_axis_views=views,
                        study_offset=offset,
                        study_rotation=angle,
                        lv_irregularity=args.lv_irregularity,
                    )
                    with tempfile.TemporaryDirectory() as tmp:
                        mm, deg, about, drop = synthetic_row(config, Path(tmp) / "case")
                    rows.append((deg, about, drop))
                    mesh = "LV and RV" if biventricular else "LV"
                    kind = "intensity" if intensity else "probability"
                    cells = f"{shift:g} / {views} | {mm:.2f} / {deg:.2f} | {about:.2f} | {drop:.5f}"
                    print(f"| {seed} | {mesh} | {kind} | {cells} |", flush=True)
    deg, about, drop = np.array(rows).T
    print(
        f"\n{len(rows)} synthetic studies: turn drop at most {drop.max():.4f}, negative on {int((drop < 0).sum())}; "
        f"rotation error {deg.min():.2f}-{deg.max():.2f} deg, about the normal {about.min():.2f}-{about.max():.2f}"
    )
    for case in sorted(p for p in args.data.glob("*") if (p / "sa_labels.nii.gz").exists()):
        reg = run_stages(label_config(case), until="register").registration
        assert reg is not None
        print(f"{case.name}: turn drop {reg['turn_dice_drop']:.4f} (registration moved it {reg['moved_mm']:.2f} mm)")


if __name__ == "__main__":
    main()
