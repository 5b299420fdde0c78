"""Shared fixtures: small synthetic cases written once per test session."""

from __future__ import annotations

import locale
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pycemrg_scar_reconstruction.api import synth
from pycemrg_scar_reconstruction.config import SynthConfig

SMALL = dict(n_nodes=8000, samples=300_000, pixel_spacing=2.0)


@pytest.fixture(autouse=True)
def _restore_locale() -> Iterator[None]:
    """Undo locale changes a test makes: SimpleITK's DICOM writer (used by tests to make DICOM
    folders) sets the C locale, after which torch.compile cannot read its own UTF-8 templates."""
    before = locale.setlocale(locale.LC_ALL, None)
    yield
    locale.setlocale(locale.LC_ALL, before)


@pytest.fixture(scope="session")
def small_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small oblique synthetic case on disk (mesh.vtu, lge.nii.gz, lge_mask.nii.gz, case.json)."""
    out = tmp_path_factory.mktemp("case")
    return synth(SynthConfig(seed=3, **SMALL), out)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def write_dicom_series(image_path: Path, folder: Path) -> Path:
    """Write a NIfTI image as a DICOM series (one file per slice, positions and orientation kept)."""
    import SimpleITK as sitk

    image = sitk.Cast(sitk.ReadImage(str(image_path)), sitk.sitkInt16)
    folder.mkdir()
    direction = image.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    cosines = (direction[0], direction[3], direction[6], direction[1], direction[4], direction[7])
    for k in range(image.GetDepth()):
        sl = image[:, :, k]
        for tag, value in (
            ("0020|000e", "1.2.826.0.1.3680043.2.1125.1.42"),
            ("0020|0013", str(k + 1)),
            ("0008|0060", "MR"),
            ("0020|0037", "\\".join(f"{d:.10f}" for d in cosines)),
            ("0020|0032", "\\".join(f"{p:.10f}" for p in image.TransformIndexToPhysicalPoint((0, 0, k)))),
            ("0018|0050", "8"),
            ("0028|0030", "\\".join(f"{s:.10f}" for s in image.GetSpacing()[:2])),
        ):
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(sl)
    return folder
