"""``synth``: write a synthetic case (mesh, stacks, masks and its facts) to a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import SynthConfig
from ..io.images import write_nifti
from ..io.meshes import write_mesh
from ..io.paths import check_output_dir, write_json
from ..synthetic import case_mesh, make_case


def synth(config: SynthConfig, output_dir: Path) -> dict[str, Path]:
    """Generate a synthetic case and write ``mesh.vtu``, ``lge.nii.gz``, ``lge_mask.nii.gz``, ``case.json``
    (and ``lge_la<v>.nii.gz`` with its mask per long-axis view).

    With ``intensity`` the stacks are LGE-like signal with a segmentation-like mask, and each stack
    also gets ``<stack>_probability.nii.gz`` (+ ``_probability_mask``: the same case as
    probabilities), ``<stack>_blood_mask.nii.gz`` and ``<stack>_remote_mask.nii.gz`` (reference
    masks for the clinical normalisations).

    Returns
    -------
    dict of output name -> path.
    """
    out = Path(output_dir)
    check_output_dir(out)
    case = make_case(config)
    paths = {"mesh": out / "mesh.vtu", "facts": out / "case.json"}
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # path key -> (values, affine)
    stacks = [("", case.stack)] + [(f"_la{v + 1}", la) for v, la in enumerate(case.long_axis)]
    for i, (key, stack) in enumerate(stacks):
        affine = stack.geometry.affine
        images[f"image{key}"] = (stack.values, affine)
        images[f"mask{key}"] = (np.asarray(stack.mask, dtype=np.float32), affine)
        if case.probability:
            prob = case.probability[i]
            images[f"probability{key}"] = (prob.values, affine)
            images[f"probability_mask{key}"] = (np.asarray(prob.mask, dtype=np.float32), affine)
            images[f"blood_mask{key}"] = (case.blood_pool[i].astype(np.float32), affine)
            images[f"remote_mask{key}"] = (case.remote[i].astype(np.float32), affine)
    for name in images:
        kind, _, view = name.partition("_la")
        base = "lge" + (f"_la{view}" if view else "")
        paths[name] = out / (f"{base}.nii.gz" if kind == "image" else f"{base}_{kind}.nii.gz")
    write_mesh(case_mesh(case), paths["mesh"])
    for name, (values, affine) in images.items():
        write_nifti(values, affine, paths[name])
    facts = {"target": "probability", **case.facts, "files": {k: p.name for k, p in paths.items()}}
    write_json(facts, paths["facts"])
    return paths
