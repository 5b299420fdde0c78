"""``transform``: any image of the LGE study written into the mesh's frame (its affine changed only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.artifacts import load_training_data
from ..io.images import NIFTI_SUFFIXES, load_image, write_nifti
from ..io.paths import atomic_output, check_output, full_suffix, refuse_overwrite, require_file


def study_to_mesh(source: Path) -> np.ndarray:
    """The 4 x 4 study-to-mesh transform of a reconstruction: ``study_to_mesh`` of its ``report.json``
    (or ``--json`` summary of ``prepare``), or the registration kept in its training data (``.npz``)."""
    source = Path(source)
    require_file(source, "report")
    fix = "prepare or run with `study_registration` measure or rigid (with a myocardium mask) to have one"
    if full_suffix(source) == ".npz":
        registration = load_training_data(source).registration
        if registration is None:
            raise InputError(f"{source}: the training data has no study registration; {fix}")
        matrix = json.loads(registration)["study_to_mesh"]
    else:
        try:
            report = json.loads(source.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError(f"{source}: not a JSON report; give the report.json of run or report") from None
        if not isinstance(report, dict) or "study_to_mesh" not in report:
            raise InputError(f"{source}: no study_to_mesh in this report; {fix}")
        matrix = report["study_to_mesh"]
    out = np.asarray(matrix, dtype=np.float64)
    if out.shape != (4, 4) or not np.all(np.isfinite(out)) or not np.allclose(out[3], [0, 0, 0, 1]):
        raise InputError(f"{source}: study_to_mesh is not a 4 x 4 rigid transform; re-create the report")
    return out


def transform(image: Path, source: Path, output: Path) -> np.ndarray:
    """Write ``image`` (any image of the study: long-axis views, T1 maps, labels) into the mesh's
    frame: the same voxels with the affine ``study_to_mesh @ affine`` (NIfTI, dtype and header
    kept for a NIfTI input). ``source`` is the reconstruction's ``report.json`` or training data.

    Returns the new (4, 4) affine.
    """
    image, output = Path(image), Path(output)
    if full_suffix(output) not in NIFTI_SUFFIXES:
        raise InputError(f"{output}: the output is a NIfTI image; name it .nii or .nii.gz")
    refuse_overwrite([("output image", output)], [("image", image), ("report", Path(source))])
    check_output(output, "output image")
    matrix = study_to_mesh(source)
    if full_suffix(image) in NIFTI_SUFFIXES:
        import nibabel as nib

        load_image(image)  # the same checks as every input (finite affine, voxel sizes, gzip checksum)
        img: Any = nib.load(str(image))
        affine = matrix @ np.asarray(img.affine, dtype=np.float64)
        moved = nib.Nifti1Image(np.asarray(img.dataobj), affine, img.header)
        moved.set_sform(affine, code=1)
        moved.set_qform(affine, code=1)
        with atomic_output(output) as tmp:
            nib.save(moved, str(tmp))
        return affine
    values, affine = load_image(image)
    write_nifti(values, matrix @ affine, output)
    return matrix @ affine
