"""Other image formats give exactly the geometry of the NIfTI path."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import pyvista as pv
import SimpleITK as sitk

from pycemrg_scar_reconstruction.api import prepare
from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, StackConfig
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.geometry import index_to_world
from pycemrg_scar_reconstruction.io.images import load_image
from tests.conftest import write_dicom_series


def memberships(data):
    """(node, target) pairs, in a canonical order."""
    pairs = np.column_stack([data.member_node, np.round(data.group_target[data.member_group], 6)])
    return pairs[np.lexsort(pairs.T[::-1])]


def run_prepare(small_case, image, mask=None, **kw):
    stack = StackConfig(path=image, mask=mask, slice_thickness=8.0, **kw)
    return prepare(PrepareConfig(mesh=MeshConfig(path=small_case["mesh"]), stacks=[stack]))


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_itk_formats_match_nifti(small_case, tmp_path, suffix):
    # ITK converts the NIfTI (RAS) to its own LPS physical space; our reader must undo it exactly
    sitk.WriteImage(sitk.ReadImage(str(small_case["image"])), str(tmp_path / f"lge{suffix}"))
    values_n, affine_n = load_image(small_case["image"])
    values_i, affine_i = load_image(tmp_path / f"lge{suffix}")
    np.testing.assert_allclose(affine_i, affine_n, atol=1e-4)
    np.testing.assert_array_equal(values_i, values_n)
    a = run_prepare(small_case, small_case["image"])
    b = run_prepare(small_case, tmp_path / f"lge{suffix}")
    np.testing.assert_array_equal(memberships(a), memberships(b))


def test_dicom_series_matches_nifti(small_case, tmp_path):
    folder = write_dicom_series(small_case["mask"], tmp_path / "dicom")
    values_d, affine_d = load_image(folder)
    values_n, affine_n = load_image(small_case["mask"])
    np.testing.assert_allclose(affine_d, affine_n, atol=1e-3)
    np.testing.assert_array_equal(values_d, values_n)
    a = run_prepare(small_case, small_case["mask"], target="mask")
    b = run_prepare(small_case, folder, target="mask")
    np.testing.assert_array_equal(memberships(a), memberships(b))


def test_dicom_folder_with_two_series_asks_for_one(tmp_path):
    img = sitk.Image(4, 4, 2, sitk.sitkInt16)
    for uid in ("1.2.3.1", "1.2.3.2"):
        for k in range(2):
            sl = img[:, :, k]
            sl.SetMetaData("0020|000e", uid)
            sl.SetMetaData("0020|0032", f"0\\0\\{k}")
            writer = sitk.ImageFileWriter()
            writer.KeepOriginalImageUIDOn()
            writer.SetFileName(str(tmp_path / f"s{uid[-1]}_{k}.dcm"))
            writer.Execute(sl)
    with pytest.raises(InputError, match=r"2 DICOM series.*1\.2\.3\.1.*`dicom_series`"):
        load_image(tmp_path)
    values, _ = load_image(tmp_path, dicom_series="1.2.3.2")
    assert values.shape == (4, 4, 2)


def _layers(small_case, tmp_path: Path, on_cells: bool) -> list[Path]:
    """Each slice of the NIfTI stack saved as a VTK structured grid (the published tool's layout)."""
    img = nib.load(small_case["image"])
    vol = np.asarray(img.dataobj, dtype=np.float64)
    ni, nj, nk = vol.shape
    paths = []
    for k in range(nk):
        off = -0.5 if on_cells else 0.0
        n_i, n_j = (ni + 1, nj + 1) if on_cells else (ni, nj)
        ii, jj = np.meshgrid(np.arange(n_i) + off, np.arange(n_j) + off, indexing="ij")
        idx = np.column_stack([ii.ravel("F"), jj.ravel("F"), np.full(ii.size, k)])
        grid = pv.StructuredGrid()
        grid.points = index_to_world(idx.astype(float), img.affine)
        grid.dimensions = (n_i, n_j, 1)
        values = vol[:, :, k].ravel("F")
        if on_cells:
            grid.cell_data["lge"] = values
        else:
            grid.point_data["lge"] = values
        paths.append(tmp_path / f"layer{k}.vts")
        grid.save(paths[-1])
    return paths


@pytest.mark.parametrize("on_cells", [False, True])
def test_vtk_slice_layers_match_the_stack(small_case, tmp_path, on_cells):
    layers = _layers(small_case, tmp_path, on_cells)
    stacks = [StackConfig(path=p, slice_thickness=8.0) for p in layers]
    a = run_prepare(small_case, small_case["image"])
    b = prepare(PrepareConfig(mesh=MeshConfig(path=small_case["mesh"]), stacks=stacks))
    np.testing.assert_array_equal(memberships(a), memberships(b))
    with pytest.raises(InputError, match="`slice_thickness`"):
        prepare(PrepareConfig(mesh=MeshConfig(path=small_case["mesh"]), stacks=[StackConfig(path=layers[0])]))


def test_dicom_slices_off_their_places_become_slice_offsets(small_case, tmp_path):
    """A series whose slice 2 sits 1 mm along i and 2.5 mm along the normal off the uniform stack."""
    mask = sitk.Cast(sitk.ReadImage(str(small_case["mask"])), sitk.sitkInt16)
    folder = tmp_path / "dicom"
    folder.mkdir()
    d = np.asarray(mask.GetDirection()).reshape(3, 3)
    moved = 1.0 * d[:, 0] + 2.5 * d[:, 2]  # LPS mm: the i and k axes of the ITK image
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    orientation = "\\".join(f"{v:.10f}" for v in (*d[:, 0], *d[:, 1]))
    for k in range(mask.GetDepth()):
        sl = mask[:, :, k]
        pos = np.asarray(mask.TransformIndexToPhysicalPoint((0, 0, k))) + (moved if k == 2 else 0.0)
        for tag, value in (
            ("0020|000e", "1.2.3.4.5"),
            ("0020|0013", str(k + 1)),
            ("0008|0060", "MR"),
            ("0020|0037", orientation),
            ("0020|0032", "\\".join(f"{p:.10f}" for p in pos)),
            ("0018|0050", "8"),
            ("0028|0030", "\\".join(f"{s:.10f}" for s in mask.GetSpacing()[:2])),
        ):
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(sl)
    data = prepare(
        PrepareConfig(
            mesh=MeshConfig(path=small_case["mesh"]), stacks=[StackConfig(path=folder, target="mask", slice_thickness=8.0)]
        )
    )
    g = data.stacks[0]
    expected = np.zeros((g.n_slices, 3))
    expected[2] = [-1.0, 0.0, -2.5 * np.sign(g.normal @ (np.diag([-1.0, -1, 1]) @ d[:, 2]))]
    np.testing.assert_allclose(g.slice_offsets, expected, atol=1e-3)
    assert "per-slice DICOM positions" in str(data.stack_mapping[0])
    # the same memberships as the NIfTI stack given those offsets
    ref = run_prepare(small_case, small_case["mask"], target="mask")
    from pycemrg_scar_reconstruction.data import build_training_data
    from pycemrg_scar_reconstruction.io.images import read_stack

    stack = read_stack(StackConfig(path=small_case["mask"], target="mask", slice_thickness=8.0))
    shifted = type(stack)(values=stack.values, geometry=stack.geometry.with_offsets(g.slice_offsets), name=stack.name)
    nifti = build_training_data(ref.points, [shifted])
    np.testing.assert_array_equal(data.member_node, nifti.member_node)
    np.testing.assert_array_equal(data.group_voxel, nifti.group_voxel)
