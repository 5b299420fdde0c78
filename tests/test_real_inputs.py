"""Inputs as labs have them: LGE intensities, biventricular meshes with LV-only labels, label files,
and the support of the answer (how far each node is from any evidence)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import pyvista as pv

from pycemrg_scar_reconstruction.api import synth
from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import SynthConfig, TargetConfig
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.io.artifacts import load_training_data
from pycemrg_scar_reconstruction.prediction import apply_support, outside_distance, support_distance
from pycemrg_scar_reconstruction.targets import to_target
from tests.conftest import SMALL


@pytest.fixture(scope="module")
def bv_case(tmp_path_factory):
    """A small biventricular case, as probabilities (LV labels only) and as LGE intensity."""
    return synth(SynthConfig(seed=2, biventricular=True, intensity=True, **SMALL), tmp_path_factory.mktemp("bv"))


def _inputs(case, image="probability", mask="probability_mask"):
    return ["--mesh", str(case["mesh"]), "--image", str(case[image]), "--mask", str(case[mask]), "--slice-thickness", "8"]


def test_distance_and_prior_on_a_tiny_mesh():
    points = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [4, 0, 0], [12, 0, 0], [22, 0, 0]])
    supervised = np.array([True, True, True, False, False, False])
    d = support_distance(points, supervised)
    np.testing.assert_allclose(d, [0, 0, 0, 2, 10, 20])
    np.testing.assert_array_equal(support_distance(points, supervised, workers=2), d)
    p, u, beyond = apply_support(np.full(6, 0.8), np.full(6, 0.01), d, support_mm=5.0, prior=0.0)
    np.testing.assert_array_equal(beyond, [False, False, False, False, True, True])
    np.testing.assert_allclose(p, [0.8, 0.8, 0.8, 0.8, 0.0, 0.0])
    # beyond the cutoff the uncertainty grows with the distance: 0.5 * min(1, d / (2 * 5))
    np.testing.assert_allclose(u, [0.01, 0.01, 0.01, 0.01, 0.5, 0.5])
    _, u2, _ = apply_support(np.zeros(1), np.zeros(1), np.array([7.5]), support_mm=5.0, prior=0.3)
    np.testing.assert_allclose(u2, [0.375])


def _rings(n: int = 64) -> np.ndarray:
    """Two rings of radius 20 mm at z = 0 and z = 10 (vertices at angles 2 pi k / n): two traced slices."""
    angle = 2 * np.pi * np.arange(n) / n
    ring = np.stack([20 * np.cos(angle), 20 * np.sin(angle), np.zeros(n)], axis=1)
    return np.concatenate([ring, ring + [0, 0, 10]])


def test_coverage_is_the_hull_between_slices_not_the_nearest_node():
    sup = _rings()
    # a node 4 mm outside the wall between the slices (a mesh moved off its masks), one inside,
    # one 8 mm past the last slice, one 7 mm before the first
    nodes = np.array([[24.0, 0, 5], [0, 0, 5], [20, 0, 18], [0, 2, -7]])
    points = np.concatenate([sup, nodes])
    supervised = np.r_[np.ones(len(sup), bool), np.zeros(4, bool)]
    nearest = support_distance(points, supervised)[-4:]
    np.testing.assert_allclose(nearest[[0, 2]], [np.hypot(4, 5), 8], atol=1e-9)
    outside = outside_distance(points, supervised, ~supervised)[-4:]
    # (24, 0, 5) sits on a vertex's meridian: its facets' planes (normals at +-pi / 64, at 20 cos(pi / 64)
    # from the axis) are 24 cos(pi / 64) - 20 cos(pi / 64) away: a little less than the true 4 mm
    np.testing.assert_allclose(outside, [4 * np.cos(np.pi / 64), 0, 8, 7], atol=1e-9)
    _, _, beyond = apply_support(np.full(4, 0.9), np.zeros(4), np.minimum(outside, nearest), 5.0, 0.0)
    np.testing.assert_array_equal(beyond, [False, False, True, True])  # version 0.2.0's rule cut the first too
    _, _, old = apply_support(np.full(4, 0.9), np.zeros(4), nearest, 5.0, 0.0)
    assert old[0]
    # supervised nodes too few for a hull: every candidate is beyond the coverage
    assert np.all(np.isinf(outside_distance(points[:3], np.array([True, True, False]), np.array([False, False, True]))[2:]))


def test_a_mesh_moved_off_its_masks_keeps_the_scar_between_the_slices(tmp_path):
    """Thin slices 10 mm apart, the mesh 4 mm off the study: between the first and last traced
    slices no scar node gets the prior (version 0.2.0's rule cut some)."""
    from pycemrg_scar_reconstruction.api.prepare import run_stages
    from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, RuntimeConfig, StackConfig, TrainConfig
    from pycemrg_scar_reconstruction.prediction import predict_nodes
    from pycemrg_scar_reconstruction.training import fit

    case = synth(SynthConfig(seed=1, slice_thickness=3.0, study_offset=4.0, **SMALL), tmp_path)
    stack = StackConfig(path=case["image"], mask=case["mask"], slice_thickness=3.0)
    data = run_stages(PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=[stack], study_registration="off")).data
    fitted = fit(data, TrainConfig(seed=0, max_epochs=20), RuntimeConfig(quiet=True), progress=False)
    truth = np.asarray(pv.read(case["mesh"]).point_data["scar_truth"]) > 0
    g = fitted.stacks[0]
    k = g.to_index(data.points)[:, g.axis]
    between = (k >= data.group_slice.min()) & (k <= data.group_slice.max()) & truth
    new = predict_nodes(fitted, data.points, 2, 0).given_prior.astype(bool)
    old = predict_nodes(fitted, data.points, 2, 0, coverage=False).given_prior.astype(bool)
    assert between.sum() > 100
    assert not (new & between).any()
    assert (old & between).any()  # the test can fail: the old rule cut scar here


def test_biventricular_case_has_no_rv_scar_beyond_the_support(bv_case, tmp_path, capsys):
    out = tmp_path / "bv.vtu"
    assert main(["run", *_inputs(bv_case), "--output", str(out), "--max-epochs", "80", "--no-report"]) == 0
    out_text = capsys.readouterr().out
    assert "more than 5 mm beyond the images' coverage" in out_text
    assert re.search(r"time: prepare [\d.]+ s, train [\d.]+ s, predict [\d.]+ s \(total \d+ s\)", out_text)
    mesh = pv.read(out)
    rv = mesh.point_data["is_LV"] == 0
    assert rv.sum() > 100
    names = ("scar_distance_mm", "scar_probability", "scar_uncertainty", "scar_prior")
    d, p, u, given = (np.asarray(mesh.point_data[k]) for k in names)
    far_rv = rv & (given == 1)  # the RV free wall lies outside the LV's labelled coverage
    assert far_rv.sum() > 0.5 * (rv & (d > 5.0)).sum() > 25
    assert np.all(p[far_rv] < 0.5)
    assert np.all(u[far_rv] >= 0.25)  # the uncertainty says these are guesses
    assert np.all(d[given == 1] > 5.0)  # never closer than the cutoff to a supervised node
    assert np.all(d[mesh.point_data["scar_supervised"] == 1] == 0)


def test_region_keeps_every_node_and_cell_and_zeroes_the_outside(bv_case, tmp_path):
    out = tmp_path / "lv.vtu"
    args = [*_inputs(bv_case), "--region-array", "is_LV", "--region-values", "1", "--output", str(out)]
    assert main(["run", *args, "--max-epochs", "40", "--threshold", "0.5"]) == 0
    mesh, source = pv.read(out), pv.read(bv_case["mesh"])
    assert (mesh.n_points, mesh.n_cells) == (source.n_points, source.n_cells)
    rv = source.point_data["is_LV"] == 0
    for name in ("scar_probability", "scar_uncertainty", "scar_supervised", "scar_in_region", "scar_binary"):
        assert np.all(mesh.point_data[name][rv] == 0), name
    assert np.all(mesh.point_data["scar_in_region"][~rv] == 1)
    # no training group holds an RV node
    data = load_training_data(tmp_path / "lv_data.npz")
    assert not np.any(rv[data.member_node])
    report = json.loads((tmp_path / "lv_report" / "report.json").read_text())
    assert report["support"]["region_share"] == pytest.approx(1 - rv.mean())


def test_bad_region_names_the_array(bv_case, tmp_path, capsys):
    code = main(["prepare", *_inputs(bv_case), "--region-array", "nope", "--output", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and "is_LV" in err and "--region-array" in err


def test_intensity_mixture_is_close_to_the_probabilities(bv_case, tmp_path, capfd):
    # the same prisms, as LGE signal with blood-pool partial volume, and as probabilities
    for name, extra in (("p", _inputs(bv_case)), ("i", [*_inputs(bv_case, "image", "mask"), "--target", "intensity"])):
        capfd.readouterr()
        assert main(["prepare", *extra, "--output", str(tmp_path / f"{name}.npz")]) == 0
        # raw intensities carry the real cases' caveat, once; probabilities do not
        caveat = "agreed with experts' scar labels at only Dice 0.10-0.52"
        err = capfd.readouterr().err
        assert err.count(caveat) == (name == "i") and ("give a label map (--target label)" in err) == (name == "i")
    p, i = load_training_data(tmp_path / "p.npz"), load_training_data(tmp_path / "i.npz")
    mapping = json.loads(str(i.stack_mapping[0]))
    truth = json.loads(bv_case["facts"].read_text())["tissue_levels"]
    assert mapping["normalise"] == "mixture"
    for tissue in ("healthy", "scar", "blood"):
        assert mapping[f"{tissue}_level"] == pytest.approx(truth[tissue], rel=0.15), tissue
    # groups both have (same pixels): targets agree to the noise
    key_p = {tuple(k): t for k, t in zip(p.group_keys.tolist(), p.group_target)}
    both = [(key_p[tuple(k)], t) for k, t in zip(i.group_keys.tolist(), i.group_target) if tuple(k) in key_p]
    a, b = np.array(both).T
    assert len(both) > 200 and np.mean(np.abs(a - b)) < 0.08


def test_intensity_long_axis_views_with_mixture(tmp_path, capsys):
    # the default conversion on a study with two long-axis views: the views' blood pool comes from
    # the short-axis planes (the ventricle is open at the base in a long-axis view), and a view that
    # cuts no scar is not read as scar; before, the first view was refused ("blood 0")
    case = synth(SynthConfig(seed=0, intensity=True, long_axis_views=2, **SMALL), tmp_path / "case")
    stacks = []
    for key in ("", "_la1", "_la2"):
        stacks += ["--image", str(case[f"image{key}"]), "--mask", str(case[f"mask{key}"])]
    out = tmp_path / "d.npz"
    assert main(["prepare", "--mesh", str(case["mesh"]), *stacks, "--target", "intensity", "--output", str(out)]) == 0
    data = load_training_data(out)
    truth = json.loads(case["facts"].read_text())["tissue_levels"]
    for s, key in enumerate(("", "_la1", "_la2")):
        mapping = json.loads(str(data.stack_mapping[s]))
        assert mapping["blood_level"] == pytest.approx(truth["blood"], rel=0.1), key
        prob = np.asarray(nib.load(case[f"probability{key}"]).dataobj)
        own = data.group_stack == s
        expected = prob[tuple(data.group_keys[own][:, 1:].T)]  # the same pixels' true scar fraction
        assert np.mean(np.abs(data.group_target[own] - expected)) < 0.1, key
    # a view alone has no short axis to find its blood pool in: the error says what to give
    view = ["--image", str(case["image_la1"]), "--mask", str(case["mask_la1"]), "--target", "intensity"]
    code = main(["prepare", "--mesh", str(case["mesh"]), *view, "--output", str(tmp_path / "view.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "short-axis stack" in err and "--blood-pool-mask" in err
    assert not (tmp_path / "view.npz").exists()


def test_label_lists_names_and_myocardium_from_the_label_image(tmp_path):
    labels = np.array([0, 1, 2, 3, 1, 9], dtype=float).reshape(1, 1, 6)
    out, mapping = to_target(labels, TargetConfig(kind="label", scar_label="2,3"))
    np.testing.assert_array_equal(out.ravel(), [0, 0, 1, 1, 0, 0])
    names = {"myocardium": 1, "scar": 2, "mvo": 3}
    out, mapping = to_target(labels, TargetConfig(kind="label", scar_label="scar,mvo"), label_names=names)
    assert mapping["scar_labels"] == [2, 3]
    with pytest.raises(InputError, match="`labels`"):
        to_target(labels, TargetConfig(kind="label", scar_label="scar"))
    with pytest.raises(InputError, match="'fibrosis' is not in the labels file"):
        to_target(labels, TargetConfig(kind="label", scar_label="fibrosis"), label_names=names)


def test_label_file_through_the_cli(small_case, tmp_path, capsys):
    img = nib.load(small_case["image"])
    prob, mask = np.asarray(img.dataobj), np.asarray(nib.load(small_case["mask"]).dataobj) > 0.5
    lab = np.where(mask, np.where(prob >= 0.5, np.where(prob >= 0.9, 3, 2), 1), 0).astype(np.int16)
    nib.save(nib.Nifti1Image(lab, img.affine), tmp_path / "labels.nii.gz")
    (tmp_path / "labels.yaml").write_text("labels:\n  myocardium: 1\n  scar: 2\n  mvo: 3\n")
    common = [
        "--mesh",
        str(small_case["mesh"]),
        "--image",
        str(tmp_path / "labels.nii.gz"),
        "--slice-thickness",
        "8",
        "--target",
        "label",
        "--labels",
        str(tmp_path / "labels.yaml"),
    ]
    assert (
        main(
            [
                "prepare",
                *common,
                "--scar-label",
                "scar,mvo",
                "--myocardium-labels",
                "myocardium,scar,mvo",
                "--output",
                str(tmp_path / "d.npz"),
            ]
        )
        == 0
    )
    data = load_training_data(tmp_path / "d.npz")
    v = lab[tuple(data.group_voxel.T)]
    assert np.all(v >= 1)  # the mask came from the label image: no background pixel is a group
    np.testing.assert_array_equal(data.group_target, (v >= 2).astype(np.float32))
    capsys.readouterr()
    code = main(["prepare", *common, "--scar-label", "fibrosis", "--output", str(tmp_path / "e.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "'fibrosis' is not in the labels file" in err and "Traceback" not in err
    assert not (tmp_path / "e.npz").exists()


def test_biventricular_probability_case_is_written(tmp_path):
    # without --intensity too: the mesh has is_LV and the RV holds no scar
    paths = synth(SynthConfig(seed=1, biventricular=True, **SMALL), tmp_path)
    facts = json.loads(paths["facts"].read_text())
    mesh = pv.read(paths["mesh"])
    rv = mesh.point_data["is_LV"] == 0
    assert facts["rv_nodes"] == int(rv.sum()) > 0
    assert np.all(mesh.point_data["scar_truth"][rv] == 0)


def _as_voxels(mesh_path: Path, out: Path) -> Path:
    """The same mesh with its hexahedra written as VTK_VOXEL cells (voxel node order), as
    thresholding an ImageData and moving it gives: points that are not an axis-aligned box."""
    from pycemrg_scar_reconstruction.io.meshes import mesh_cells

    mesh = pv.read(str(mesh_path))
    offsets, conn, types = mesh_cells(mesh)
    assert set(types.tolist()) == {12}
    rows = offsets[:-1][:, None] + np.arange(8)
    conn = conn.copy()
    conn[rows] = conn[rows][:, [0, 1, 3, 2, 4, 5, 7, 6]]  # the order is its own inverse
    voxels = pv.UnstructuredGrid(np.insert(conn, offsets[:-1], 8), np.full(len(types), 11, np.uint8), mesh.points)
    for name in mesh.point_data:
        voxels.point_data[name] = mesh.point_data[name]
    for name in mesh.cell_data:
        voxels.cell_data[name] = mesh.cell_data[name]
    voxels.save(str(out))
    return out


def test_a_rotated_voxel_mesh_is_read_as_the_same_hexahedra(bv_case, tmp_path):
    from pycemrg_scar_reconstruction.io.artifacts import load_model

    voxels = _as_voxels(bv_case["mesh"], tmp_path / "voxels.vtu")
    inputs = ["--image", str(bv_case["image"]), "--mask", str(bv_case["mask"]), "--slice-thickness", "8"]
    intensity = [*inputs, "--target", "intensity", "--normalise", "mixture", "--region-array", "is_LV"]
    for name, mesh in (("hex", bv_case["mesh"]), ("vox", voxels)):
        argv = ["run", "--mesh", str(mesh), *intensity, "--output", str(tmp_path / f"{name}.vtu")]
        assert main([*argv, "--max-epochs", "5", "--deterministic", "--mc-samples", "3", "-q", "--no-report"]) == 0
    hexes, vox = load_training_data(tmp_path / "hex_data.npz"), load_training_data(tmp_path / "vox_data.npz")
    np.testing.assert_array_equal(hexes.member_node, vox.member_node)
    np.testing.assert_array_equal(hexes.member_group, vox.member_group)
    np.testing.assert_array_equal(hexes.group_target, vox.group_target)  # the same tissue fractions and levels
    assert hexes.stack_mapping[0] == vox.stack_mapping[0]
    a, b = pv.read(tmp_path / "hex.vtu"), pv.read(tmp_path / "vox.vtu")
    np.testing.assert_array_equal(a.point_data["scar_probability"], b.point_data["scar_probability"])
    assert set(b.celltypes.tolist()) == {12}  # written back as hexahedra
    assert load_model(tmp_path / "vox_model.pt").best_epoch == load_model(tmp_path / "hex_model.pt").best_epoch


def test_inverted_or_degenerate_cells_are_refused(tmp_path):
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
    # one hexahedron in the mirrored node order beside one in the usual order: a defect
    both = np.vstack([pts, pts + [2.0, 0, 0]])
    inverted = pv.UnstructuredGrid(
        np.array([8, 4, 5, 6, 7, 0, 1, 2, 3, 8, 8, 9, 10, 11, 12, 13, 14, 15]), np.array([12, 12], np.uint8), both
    )
    flat = pts.copy()
    flat[4:, 2] = 0.0
    degenerate = pv.UnstructuredGrid(np.array([8, 0, 1, 2, 3, 4, 5, 6, 7]), np.array([12], np.uint8), flat)
    from pycemrg_scar_reconstruction.config import MeshConfig
    from pycemrg_scar_reconstruction.io.meshes import read_mesh

    for name, grid, word in (("inv.vtu", inverted, "inverted"), ("flat.vtu", degenerate, "degenerate")):
        grid.save(str(tmp_path / name))
        with pytest.raises(InputError, match=f"1 cell.*{word}.*repair the mesh"):
            read_mesh(MeshConfig(path=tmp_path / name))


def test_a_mesh_mirrored_throughout_gives_the_same_training_data(small_case, tmp_path):
    """Every element in the mirrored node order (a convention of some tools) is read as it is: the
    memberships, the mixture's tissue fractions and targets, and the registration are the same."""
    from pycemrg_scar_reconstruction.api.prepare import run_stages
    from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, StackConfig, TargetConfig
    from pycemrg_scar_reconstruction.io.meshes import mesh_cells

    mesh = pv.read(str(small_case["mesh"]))
    offsets, conn, types = mesh_cells(mesh)
    assert set(types.tolist()) == {12}
    rows = offsets[:-1, None] + np.array([4, 5, 6, 7, 0, 1, 2, 3])  # top face first: mirrored
    flipped = pv.UnstructuredGrid(np.insert(conn[rows].ravel(), offsets[:-1], 8), mesh.celltypes, mesh.points)
    for name in mesh.point_data:
        flipped.point_data[name] = mesh.point_data[name]
    assert (flipped.compute_cell_sizes().cell_data["Volume"] < 0).all()
    flipped.save(str(tmp_path / "mirrored.vtu"))
    data = []
    for path in (small_case["mesh"], tmp_path / "mirrored.vtu"):
        stack = StackConfig(
            path=small_case["image"], mask=small_case["mask"], slice_thickness=8, target=TargetConfig(kind="intensity")
        )
        data.append(run_stages(PrepareConfig(mesh=MeshConfig(path=path), stacks=[stack])).data)
    a, b = data
    for field in ("member_node", "member_group", "group_target", "group_voxel"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.registration is not None and a.registration == b.registration


@pytest.mark.parametrize("suffix", [".vtu", ".vtp"])
def test_written_meshes_hold_raw_appended_zlib_and_read_back_exactly(tmp_path, suffix):
    from pycemrg_scar_reconstruction.io.meshes import write_mesh

    mesh = pv.ImageData(dimensions=(6, 5, 4)).cast_to_unstructured_grid()
    if suffix == ".vtp":
        mesh = pv.Sphere()
    rng = np.random.default_rng(0)
    mesh.point_data["scar_probability"] = rng.random(mesh.n_points).astype(np.float32)
    mesh.cell_data["tag"] = rng.integers(0, 9, mesh.n_cells)
    mesh.field_data["scar_support_mm"] = np.array([4.32])
    write_mesh(mesh, tmp_path / f"m{suffix}")
    raw = (tmp_path / f"m{suffix}").read_bytes()
    assert b'<AppendedData encoding="raw">' in raw and b"vtkZLibDataCompressor" in raw
    back = pv.read(tmp_path / f"m{suffix}")
    assert np.array_equal(back.points, mesh.points)
    for data in ("point_data", "cell_data", "field_data"):
        for key in getattr(mesh, data):
            assert np.array_equal(getattr(back, data)[key], getattr(mesh, data)[key]), key
