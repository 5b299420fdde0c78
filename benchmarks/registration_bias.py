"""Where the study registration moves a study that needs no moving: its bias, through plane and in
plane, on unmoved synthetic studies.

For every seed and kind (probability, intensity), the synthetic case as made (its mesh is the
imaged heart, so the true transform is the identity) is registered (``--register rigid``, short
axis and its mask) and printed: the transform's distance from the identity (mm RMS at the mask's
pixels, degrees), how far it moves the mask's centroid, the part of that along the main stack's
slice normal (positive: towards the slices of higher index, the base in these cases) and in plane,
and the masks' soft Dice with the mesh before and after.

    .venv/bin/python benchmarks/registration_bias.py [--seeds 0 1 2 3 4] [--lv-irregularity 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _cases import add_case_options, case_config

from pycemrg_scar_reconstruction import SynthConfig, synth
from pycemrg_scar_reconstruction.api.prepare import run_stages
from pycemrg_scar_reconstruction.geometry import index_to_world, slice_normal, voxel_spacing
from pycemrg_scar_reconstruction.io.images import load_image
from pycemrg_scar_reconstruction.registration import transform_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_case_options(parser)
    args = parser.parse_args()
    print("| seed | kind | off the identity mm / deg | centroid moved mm | through plane mm | in plane mm | soft Dice |")
    print("|---|---|---|---|---|---|---|")
    through = []
    for seed in args.seeds:
        for intensity in (False, True):
            config = SynthConfig(seed=seed, n_nodes=args.nodes, intensity=intensity, lv_irregularity=args.lv_irregularity)
            with tempfile.TemporaryDirectory() as tmp:
                case = synth(config, Path(tmp) / "case")
                reg = run_stages(case_config(config, case, study_registration="rigid"), until="register").registration
                mask, affine = load_image(case["mask"])
            assert reg is not None
            found = np.asarray(reg["study_to_mesh"])
            pixels = index_to_world(np.argwhere(mask > 0.5), affine)
            mm, deg = transform_error(found, np.eye(4), pixels)
            centroid = pixels.mean(axis=0)
            moved = found[:3, :3] @ centroid + found[:3, 3] - centroid
            normal = slice_normal(affine, int(np.argmax(voxel_spacing(affine))))
            along = float(moved @ normal)
            through.append(along)
            kind = "intensity" if intensity else "probability"
            print(
                f"| {seed} | {kind} | {mm:.2f} / {deg:.2f} | {np.linalg.norm(moved):.2f} | {along:+.2f} | "
                f"{np.linalg.norm(moved - along * normal):.2f} | "
                f"{reg['soft_dice_before']:.4f} -> {reg['soft_dice_after']:.4f} |",
                flush=True,
            )
    through_ = np.array(through)
    print(f"\nthrough plane {through_.min():+.2f} .. {through_.max():+.2f} mm (mean {through_.mean():+.2f})")


if __name__ == "__main__":
    main()
