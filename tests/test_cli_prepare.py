"""The synth and prepare commands, and every bad input they must refuse cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import pyvista as pv

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.io.artifacts import load_training_data


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def prepare_args(case, output, *extra):
    return [
        "prepare",
        "--mesh",
        case["mesh"],
        "--image",
        case["image"],
        "--mask",
        case["mask"],
        "--slice-thickness",
        "8",
        "--output",
        output,
        *extra,
    ]


def test_synth_then_prepare(tmp_path, capsys):
    code, out, _ = run(capsys, "synth", "--output-dir", tmp_path, "--seed", 4, "--n-nodes", 5000, "--samples", 200000)
    assert code == 0
    facts = json.loads((tmp_path / "case.json").read_text())
    assert facts["slice_thickness_mm"] == 8.0 and facts["oblique"] is True
    mesh = pv.read(tmp_path / "mesh.vtu")
    assert "scar_truth" in mesh.point_data and mesh.n_cells > 0
    case = {"mesh": tmp_path / "mesh.vtu", "image": tmp_path / "lge.nii.gz", "mask": tmp_path / "lge_mask.nii.gz"}
    code, out, _ = run(capsys, *prepare_args(case, tmp_path / "d.npz"))
    assert code == 0, out
    assert "supervised nodes" in out and "groups per slice" in out
    data = load_training_data(tmp_path / "d.npz")
    assert data.n_nodes == mesh.n_points and data.n_groups > 100
    assert all(g.thickness == 8.0 for g in data.stacks)


def test_axial_option(tmp_path, capsys):
    code, _, _ = run(capsys, "synth", "--output-dir", tmp_path, "--axial", "--n-nodes", 3000, "--samples", 100000)
    assert code == 0
    affine = nib.load(tmp_path / "lge.nii.gz").affine
    assert np.count_nonzero(affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))) == 0


def _expect_error(capsys, tmp_path, argv, *fragments):
    out_file = Path(argv[argv.index("--output") + 1])
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, (f, err)
    assert not out_file.exists()
    assert [p.name for p in out_file.parent.iterdir() if p.name.startswith(".")] == []


def test_missing_and_unknown_files(small_case, tmp_path, capsys):
    out = tmp_path / "d.npz"
    _expect_error(
        capsys, tmp_path, prepare_args({**small_case, "mesh": tmp_path / "nope.vtu"}, out), "nope.vtu", "not found"
    )
    (tmp_path / "m.xyz").write_text("1 2 3\n")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "mesh": tmp_path / "m.xyz"}, out), "m.xyz", ".pts")
    (tmp_path / "broken.vtu").write_text("garbage")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "mesh": tmp_path / "broken.vtu"}, out), "broken.vtu")
    (tmp_path / "img.png").write_bytes(b"x")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "image": tmp_path / "img.png"}, out), "img.png", "NIfTI")
    (tmp_path / "trunc.nii.gz").write_bytes(Path(small_case["image"]).read_bytes()[:200])
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "image": tmp_path / "trunc.nii.gz"}, out), "trunc.nii.gz")


def test_images_of_the_wrong_dimension(small_case, tmp_path, capsys):
    img = nib.load(small_case["image"])
    vol = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(np.stack([vol, vol], axis=3), img.affine), tmp_path / "4d.nii.gz")
    nib.save(nib.Nifti1Image(vol[:, :, 0], img.affine), tmp_path / "2d.nii.gz")
    out = tmp_path / "d.npz"
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "image": tmp_path / "4d.nii.gz"}, out), "4D", "4d.nii.gz")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "image": tmp_path / "2d.nii.gz"}, out), "2D", "2d.nii.gz")


def test_bad_meshes(small_case, tmp_path, capsys):
    out = tmp_path / "d.npz"
    pv.PolyData().save(tmp_path / "empty.vtp")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "mesh": tmp_path / "empty.vtp"}, out), "no points")
    mesh = pv.read(small_case["mesh"])
    pts = np.asarray(mesh.points).copy()
    pts[3] = np.nan
    mesh.points = pts
    mesh.save(tmp_path / "nan.vtu")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "mesh": tmp_path / "nan.vtu"}, out), "non-finite", "nan.vtu")


def test_no_overlap_suggests_the_units(small_case, tmp_path, capsys):
    mesh = pv.read(small_case["mesh"])
    mesh.points = np.asarray(mesh.points) * 1000.0  # saved in micrometres
    mesh.save(tmp_path / "um.vtu")
    argv = prepare_args({**small_case, "mesh": tmp_path / "um.vtu"}, tmp_path / "d.npz")
    _expect_error(capsys, tmp_path, argv, "does not overlap", "mesh box", "stack box", "--mesh-units um")
    code, _, _ = run(capsys, *argv, "--mesh-units", "um")
    assert code == 0


def test_no_overlap_suggests_the_frame(small_case, tmp_path, capsys):
    # move mesh and image far from the origin together, then save the mesh in LPS
    shift = np.array([150.0, 120.0, 0.0])
    img = nib.load(small_case["image"])
    aff = img.affine.copy()
    aff[:3, 3] += shift
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), aff), tmp_path / "far.nii.gz")
    mimg = nib.load(small_case["mask"])
    nib.save(nib.Nifti1Image(np.asarray(mimg.dataobj), aff), tmp_path / "far_mask.nii.gz")
    mesh = pv.read(small_case["mesh"])
    mesh.points = (np.asarray(mesh.points) + shift) * [-1, -1, 1]
    mesh.save(tmp_path / "lps.vtu")
    case = {"mesh": tmp_path / "lps.vtu", "image": tmp_path / "far.nii.gz", "mask": tmp_path / "far_mask.nii.gz"}
    argv = prepare_args(case, tmp_path / "d.npz")
    _expect_error(capsys, tmp_path, argv, "lps.vtu", "--mesh-frame lps")
    assert run(capsys, *argv, "--mesh-frame", "lps")[0] == 0


def test_targets_out_of_range_and_zero_groups(small_case, tmp_path, capsys):
    img = nib.load(small_case["image"])
    vol = np.asarray(img.dataobj)
    nib.save(nib.Nifti1Image(vol * 100, img.affine), tmp_path / "raw.nii.gz")
    out = tmp_path / "d.npz"
    _expect_error(
        capsys,
        tmp_path,
        prepare_args({**small_case, "image": tmp_path / "raw.nii.gz"}, out),
        "raw.nii.gz",
        "--target intensity",
    )
    assert run(capsys, *prepare_args({**small_case, "image": tmp_path / "raw.nii.gz"}, out, "--target", "intensity"))[0] == 0
    out.unlink()
    nib.save(nib.Nifti1Image(np.zeros_like(vol), img.affine), tmp_path / "empty_mask.nii.gz")
    _expect_error(
        capsys, tmp_path, prepare_args({**small_case, "mask": tmp_path / "empty_mask.nii.gz"}, out), "no pixel prism"
    )
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3)), img.affine), tmp_path / "small_mask.nii.gz")
    _expect_error(capsys, tmp_path, prepare_args({**small_case, "mask": tmp_path / "small_mask.nii.gz"}, out), "resample")


def test_partial_overlap_warns(small_case, tmp_path, capsys):
    mesh = pv.read(small_case["mesh"])
    far = [mesh.translate((500.0, 0.0, 0.0)), mesh.translate((0.0, 500.0, 0.0))]
    mesh.merge(far, merge_points=False).save(tmp_path / "part.vtu")  # two thirds of the nodes far away
    code, out, err = run(capsys, *prepare_args({**small_case, "mesh": tmp_path / "part.vtu"}, tmp_path / "d.npz"))
    assert code == 0
    assert "warning: " in err and "part.vtu" in err and "%" in err


def test_per_image_option_count_mismatch(small_case, tmp_path, capsys):
    argv = [
        "prepare",
        "--mesh",
        small_case["mesh"],
        "--image",
        small_case["image"],
        "--image",
        small_case["image"],
        "--slice-thickness",
        "8",
        "--slice-thickness",
        "8",
        "--slice-thickness",
        "8",
        "--output",
        tmp_path / "d.npz",
    ]
    _expect_error(capsys, tmp_path, argv, "--slice-thickness given 3 times for 2 --image")


def test_opencarp_pts_in_micrometres(small_case, tmp_path, capsys):
    mesh = pv.read(small_case["mesh"])
    pts = np.asarray(mesh.points) * 1000.0
    with open(tmp_path / "heart.pts", "w") as f:
        f.write(f"{len(pts)}\n")
        np.savetxt(f, pts, fmt="%.3f")
    code, out, err = run(capsys, *prepare_args({**small_case, "mesh": tmp_path / "heart.pts"}, tmp_path / "c.npz"))
    assert code == 0, err
    code, _, _ = run(capsys, *prepare_args(small_case, tmp_path / "v.npz"))
    a, b = load_training_data(tmp_path / "c.npz"), load_training_data(tmp_path / "v.npz")
    np.testing.assert_array_equal(a.member_node, b.member_node)
    np.testing.assert_array_equal(a.member_group, b.member_group)
    np.testing.assert_allclose(a.points, b.points, atol=1e-3)


def test_raw_lge_with_nsd_normalisation(small_case, tmp_path, capsys):
    img = nib.load(small_case["image"])
    vol = np.asarray(img.dataobj) * 900 + 100  # raw intensities
    nib.save(nib.Nifti1Image(vol, img.affine), tmp_path / "raw.nii.gz")
    myo = np.asarray(nib.load(small_case["mask"]).dataobj) > 0.5
    remote = myo & (np.asarray(img.dataobj) < 0.05)
    nib.save(nib.Nifti1Image(remote.astype(np.uint8), img.affine), tmp_path / "remote.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros_like(vol), img.affine), tmp_path / "empty.nii.gz")
    case = {**small_case, "image": tmp_path / "raw.nii.gz"}
    argv = prepare_args(
        case,
        tmp_path / "d.npz",
        "--target",
        "intensity",
        "--normalise",
        "nsd",
        "--remote-mask",
        tmp_path / "remote.nii.gz",
        "--n-sd",
        "3",
    )
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "normalise=nsd" in out and "threshold=" in out
    mapping = json.loads(str(load_training_data(tmp_path / "d.npz").stack_mapping[0]))
    assert mapping["normalise"] == "nsd" and mapping["n_sd"] == 3
    assert mapping["threshold"] == pytest.approx(mapping["remote_mean"] + 3 * mapping["remote_sd"])
    bad = prepare_args(
        case, tmp_path / "e.npz", "--target", "intensity", "--normalise", "nsd", "--remote-mask", tmp_path / "empty.nii.gz"
    )
    _expect_error(capsys, tmp_path, bad, "raw.nii.gz", "remote", "empty")
