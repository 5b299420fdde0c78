"""Baselines on hand-made cases; the validator's verdicts; the pictures and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from pycemrg_scar_reconstruction.baselines import linear_between_slices, logodds_shape, nearest_slice
from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.io.artifacts import load_training_data, save_training_data
from pycemrg_scar_reconstruction.metrics import average_precision, separation_auc, truth_report
from pycemrg_scar_reconstruction.stack import SliceStack, StackGeometry

ROOT = Path(__file__).resolve().parents[1]


def two_slice_stack():
    values = np.zeros((3, 3, 2))
    values[:, :, 0], values[:, :, 1] = 0.2, 0.8
    return SliceStack(values=values, geometry=StackGeometry(np.diag([1.0, 1.0, 10.0, 1.0]), values.shape, 8.0))


def test_nearest_and_linear_by_hand():
    stack = two_slice_stack()
    pts = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 10.0], [1.0, 1.0, 5.0], [1.0, 1.0, 3.0], [1.0, 1.0, -7.0], [9.0, 1.0, 0.0]])
    np.testing.assert_allclose(nearest_slice(pts, stack), [0.2, 0.8, 0.8, 0.2, 0.2, 0.0])
    np.testing.assert_allclose(linear_between_slices(pts, stack), [0.2, 0.8, 0.5, 0.38, 0.2, 0.0])


def test_logodds_recovers_a_disk_moving_between_slices():
    px, radius = 0.25, 5.0
    n = 81  # 20 mm field of view
    c = np.arange(n) * px
    xx, yy = np.meshgrid(c, c, indexing="ij")
    values = np.zeros((n, n, 2))
    values[:, :, 0] = (xx - 8.0) ** 2 + (yy - 10.0) ** 2 <= radius**2  # centre x = 8 mm
    values[:, :, 1] = (xx - 12.0) ** 2 + (yy - 10.0) ** 2 <= radius**2  # centre x = 12 mm
    stack = SliceStack(values=values, geometry=StackGeometry(np.diag([px, px, 10.0, 1.0]), values.shape, 10.0))
    x = np.linspace(0, 20, 401)
    halfway = np.column_stack([x, np.full_like(x, 10.0), np.full_like(x, 5.0)])  # z = 5 mm
    inside = logodds_shape(halfway, stack) >= 0.5
    d = np.abs(x - 10.0)  # the disk halfway is centred at x = 10 mm
    assert np.all(inside[d < radius - px]) and not np.any(inside[d > radius + px])
    # linear interpolation of the masks gives their union at 0.5, not the moved disk
    union = linear_between_slices(halfway, stack) >= 0.5
    assert union.sum() > inside.sum() + 20


def test_baselines_follow_a_slice_moved_through_plane_by_hand():
    stack = two_slice_stack()  # slices at z = 0 (0.2) and z = 10 mm (0.8)
    geometry = StackGeometry(stack.geometry.affine, stack.values.shape, 8.0, slice_offsets=[[0, 0, 0], [0, 0, 5.0]])
    moved = SliceStack(values=stack.values, geometry=geometry)  # slice 1 shows the heart's z = 5 mm
    pts = np.array([[1.0, 1.0, 2.5], [1.0, 1.0, 2.4], [1.0, 1.0, 2.6], [1.0, 1.0, 7.0]])
    np.testing.assert_allclose(linear_between_slices(pts, moved), [0.5, 0.488, 0.512, 0.8])
    np.testing.assert_allclose(nearest_slice(pts, moved), [0.8, 0.2, 0.8, 0.8])
    np.testing.assert_allclose(nearest_slice(pts, stack), [0.2, 0.2, 0.2, 0.8])


def test_baselines_follow_in_plane_slice_offsets_as_the_memberships_do():
    """A stack whose every slice shows the heart moved by its own whole pixels, with those offsets
    given, reconstructs as the unmoved stack does (rotated affine; every method)."""
    rng = np.random.default_rng(3)
    n, k, spacing = 24, 5, np.array([1.5, 1.5, 10.0])
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = q * spacing, [4.0, -7.0, 2.0]
    xx, yy = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    values = np.zeros((n, n, k))
    for s in range(k):  # a disk moving across the slices, inside the image, one slice untraced
        values[:, :, s] = (xx - 10 - s) ** 2 + (yy - 12) ** 2 <= 16
    values[:, :, 2] = np.nan
    shifts = rng.integers(-3, 4, size=(k, 2))  # pixels: the heart at x + d_k in slice k
    moved = np.full_like(values, np.nan)
    moved[3 : n - 3, 3 : n - 3] = 0.0
    for s, (di, dj) in enumerate(shifts):
        moved[3 + di : n - 3 + di, 3 + dj : n - 3 + dj, s] = values[3 : n - 3, 3 : n - 3, s]
    moved[:, :, 2] = np.nan  # untraced in both
    offsets = np.column_stack([shifts * spacing[:2], np.zeros(k)])
    plain = SliceStack(values=values, geometry=StackGeometry(affine, values.shape, 8.0))
    shifted = SliceStack(values=moved, geometry=StackGeometry(affine, values.shape, 8.0, slice_offsets=offsets))
    index = rng.uniform([6, 6, -1], [n - 7, n - 7, k], size=(500, 3))  # pixels 3 away from every edge
    pts = index @ affine[:3, :3].T + affine[:3, 3]
    for method in (nearest_slice, linear_between_slices, logodds_shape):
        expected = method(pts, plain)
        np.testing.assert_allclose(method(pts, shifted), expected, atol=1e-12)
        assert not np.allclose(method(pts, SliceStack(values=moved, geometry=plain.geometry)), expected)


def test_baselines_with_slice_offsets_do_not_change_when_mesh_and_image_turn_together():
    rng = np.random.default_rng(7)
    shape = (20, 18, 6)
    affine = np.diag([1.5, 1.5, 10.0, 1.0])
    values = rng.random(shape)
    values[rng.random(shape) < 0.2] = np.nan
    offsets = rng.normal(size=(6, 3)) * [2.0, 2.0, 1.5]
    pts = rng.uniform([0, 0, -8], [28, 25, 58], size=(400, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    motion = np.eye(4)
    motion[:3, :3], motion[:3, 3] = q * np.sign(np.linalg.det(q)), [30.0, -12.0, 5.0]  # a rotation, not a mirror
    plain = SliceStack(values=values, geometry=StackGeometry(affine, shape, 8.0, slice_offsets=offsets))
    turned = SliceStack(values=values, geometry=StackGeometry(motion @ affine, shape, 8.0, slice_offsets=offsets))
    moved_pts = pts @ motion[:3, :3].T + motion[:3, 3]
    for method in (nearest_slice, linear_between_slices, logodds_shape):
        np.testing.assert_allclose(method(moved_pts, turned), method(pts, plain), atol=1e-9)


@pytest.fixture(scope="module")
def fitted_case(small_case, tmp_path_factory):
    """Prepare, train and predict the small case once, through the CLI."""
    out = tmp_path_factory.mktemp("fit")
    argv = [
        "run",
        "--mesh",
        small_case["mesh"],
        "--image",
        small_case["image"],
        "--mask",
        small_case["mask"],
        "--slice-thickness",
        "8",
        "--output",
        out / "rec.vtu",
        "--max-epochs",
        "60",
        "--batch-size",
        "1024",
        "-q",
    ]
    assert main([str(a) for a in argv]) == 0
    return out


def test_validator_passes_a_genuine_fit_and_fails_a_wrong_one(fitted_case, small_case, tmp_path, capsys):
    data, model, mesh = fitted_case / "rec_data.npz", fitted_case / "rec_model.pt", fitted_case / "rec.vtu"
    assert main(["validate", "--data", str(data), "--model", str(model), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "slice" in out
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] and report["overall"]["share_within"] >= 0.9 and len(report["per_slice"]) >= 3
    # the scar of the slices it was given comes back (the case's scar is large: tens of pixels)
    d = load_training_data(data)
    assert report["scar"]["pixels"] == int(np.sum(d.group_target >= 0.5)) > 20
    assert report["scar"]["dice"] > 0.8 and "scar on its own slices" in out
    # the same reconstruction checked against inverted targets must fail
    d = load_training_data(data)
    wrong = d.__class__(**{**d.__dict__, "group_target": (1.0 - d.group_target).astype(np.float32)})
    save_training_data(wrong, tmp_path / "wrong.npz")
    assert main(["validate", "--data", str(tmp_path / "wrong.npz"), "--model", str(model)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(
        ["validate", "--data", str(tmp_path / "wrong.npz"), "--model", str(model), "--json", str(tmp_path / "w.json")]
    )
    assert json.loads((tmp_path / "w.json").read_text())["scar"]["dice"] < 0.5  # the inverted scar is not given back
    # a mesh from anywhere, with the truth
    assert (
        main(
            [
                "validate",
                "--data",
                str(data),
                "--mesh",
                str(mesh),
                "--truth",
                "scar_truth",
                "--json",
                str(tmp_path / "t.json"),
            ]
        )
        == 0
    )
    truth = json.loads((tmp_path / "t.json").read_text())["truth"]
    assert 0.5 < truth["dice"] <= 1 and 0 <= truth["mae"] < 0.2
    # the uncertainty means something: larger where the error is, and on the nodes on the wrong side of 0.5
    assert truth["uncertainty_error_spearman"] > 0.2
    assert truth["uncertainty_misclassified_auc"] > 0.7
    # the scar volume beside the truth's: each element's volume times its nodes' mean (0 / 1 truth)
    from pycemrg_scar_reconstruction.io.meshes import cell_volumes, mesh_cells
    from pycemrg_scar_reconstruction.regions import cell_mean

    read = pv.read(mesh)
    offsets, conn, _ = mesh_cells(read)
    volume = cell_volumes(read) / 1000.0
    expected = float(volume @ cell_mean(offsets, conn, np.asarray(read.point_data["scar_truth"], np.float64)))
    assert truth["volume_ml"]["truth_expected"] == pytest.approx(expected)
    assert truth["volume_ml"]["myocardium"] == pytest.approx(volume.sum())
    assert 0.5 < truth["volume_ml"]["expected"] / expected < 2.0
    assert "core scar" in capsys.readouterr().out
    # bad input: no reconstruction named; a truth field that does not exist; a mesh of another size
    assert main(["validate", "--data", str(data)]) == 2
    assert main(["validate", "--data", str(data), "--mesh", str(mesh), "--truth", "nope"]) == 2
    pv.Sphere().save(tmp_path / "sphere.vtp")
    assert main(["validate", "--data", str(data), "--mesh", str(tmp_path / "sphere.vtp")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "sphere.vtp" in err and "Traceback" not in err


def _not_blank(path: Path) -> None:
    import matplotlib.image as mpimg

    assert path.exists() and path.stat().st_size > 1000
    img = mpimg.imread(path)
    assert img.ndim == 3 and float(img[..., :3].std()) > 0.01


def test_run_writes_the_report_and_pictures(fitted_case):
    rep = fitted_case / "rec_report"
    for name in ("slices.png", "mesh.png", "training.png"):
        _not_blank(rep / name)
    report = json.loads((rep / "report.json").read_text())
    assert {"overall", "per_slice", "tolerance", "min_share", "passed", "training", "command", "versions"} <= set(report)
    assert report["command"].startswith("scar-reconstruct run --mesh")
    # the scar burden: the output's own elements, classed as its scar_region says
    from pycemrg_scar_reconstruction.io.meshes import cell_volumes

    mesh = pv.read(fitted_case / "rec.vtu")
    volume = cell_volumes(mesh) / 1000.0
    region = np.asarray(mesh.cell_data["scar_region"])
    burden = report["burden"]
    assert burden["myocardium_ml"] == pytest.approx(volume.sum())
    assert burden["core_ml"] == pytest.approx(volume[region == 3].sum())
    assert burden["border_zone_ml"] == pytest.approx(volume[region == 2].sum())
    assert 0 < burden["core_share"] < 1 and "Scar burden" in (rep / "report.html").read_text()


def test_the_html_report_is_self_contained(fitted_case):
    import base64
    from html.parser import HTMLParser

    class Page(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.images: list[str] = []
            self.links: list[str] = []
            self.tables = 0

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "img":
                self.images.append(a.get("src") or "")
            self.links += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith("data:")]
            self.tables += tag == "table"

    text = (fitted_case / "rec_report" / "report.html").read_text()
    page = Page()
    page.feed(text)
    assert len(page.images) == 3  # slices, mesh, training
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.links == [] and "http://" not in text and "https://" not in text
    assert page.tables >= 4  # fit, training, per slice, versions
    report = json.loads((fitted_case / "rec_report" / "report.json").read_text())
    assert f"{report['overall']['rmse']:.4f}" in text and "scar-reconstruct run" in text


def test_the_report_page_writes_numbers_plainly_and_leaves_out_offsets_never_used():
    """Figures up to 1 get four decimals (no 3.062e-07), shares read as percentages and sit right
    like numbers; a stack's offsets are drawn only when measured or applied."""
    from pycemrg_scar_reconstruction.report_page import report_page, table

    cells = table([{"name": "a", "small": 3.062e-07, "share": "96.7%", "big": 1234.5678}], ("name", "small", "share", "big"))
    assert "<td>0.0000</td>" in cells and "<td>96.7%</td>" in cells and "<td>1235</td>" in cells
    assert "e-07" not in cells and '<td class="text">a</td>' in cells
    base = {
        "overall": {"groups": 3, "rmse": 3.062e-07, "max": 1.0, "share_within": 1.0},
        "passed": True,
        "tolerance": 0.1,
        "min_share": 0.9,
        "support": {"support_mm": 4.32, "prior": 0.0, "prior_share": 0.25, "region_share": 0.688},
    }
    zeros = {"lge": [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]}
    moved = {"lge": [[0.0, 0.0, 0.0], [1.5, -0.5, 0.0]]}
    assert "Slice offsets" not in report_page({**base, "slice_offsets_mm": zeros}, {}, "t")
    assert "Slice offsets of lge" in report_page({**base, "slice_offsets_mm": moved}, {}, "t")
    measured = report_page({**base, "slice_offsets_mm": zeros, "measured_offsets_mm": moved}, {}, "t")
    assert "Slice offsets of lge" in measured and "measured di" in measured
    page = report_page({**base, "slice_offsets_mm": zeros}, {}, "t")
    assert "<td>25.0%</td>" in page and "<td>68.8%</td>" in page and "largest group error</td><td>1.0000" in page
    # the verdict's cell is coloured (green PASS, red FAIL)
    assert '<td class="text pass">PASS</td>' in page
    assert '<td class="text fail">FAIL</td>' in report_page({**base, "passed": False, "slice_offsets_mm": zeros}, {}, "t")
    # raw intensities carry the real cases' caveat on the page, as prepare says it; probabilities do not
    stack = {"name": "lge", "thickness_mm": 8.0}
    raw = report_page({**base, "stacks": [{**stack, "targets": {"target": "intensity", "normalise": "mixture"}}]}, {}, "t")
    plain = report_page({**base, "stacks": [{**stack, "targets": {"target": "probability"}}]}, {}, "t")
    assert "Dice 0.10-0.52" in raw and "<code>--target label</code>" in raw and "Dice 0.10-0.52" not in plain
    # the targets read as prepare prints them, not as a Python dict
    levels = report_page(
        {**base, "stacks": [{**stack, "targets": {"target": "intensity", "healthy_level": 4.5930822627}}]}, {}, "t"
    )
    assert "target=intensity, healthy_level=4.593" in levels and "{&#x27;target" not in levels


def test_report_and_baseline_commands(fitted_case, small_case, tmp_path):
    argv = [
        "report",
        "--data",
        fitted_case / "rec_data.npz",
        "--mesh",
        fitted_case / "rec.vtu",
        "--model",
        fitted_case / "rec_model.pt",
        "--output-dir",
        tmp_path / "r",
        "--truth",
        "scar_truth",
    ]
    assert main([str(a) for a in argv]) == 0
    assert "truth" in json.loads((tmp_path / "r" / "report.json").read_text())
    _not_blank(tmp_path / "r" / "mesh.png")
    for method in ("nearest", "linear", "logodds"):
        argv = [
            "baseline",
            "--method",
            method,
            "--mesh",
            small_case["mesh"],
            "--image",
            small_case["image"],
            "--mask",
            small_case["mask"],
            "--slice-thickness",
            "8",
            "--output",
            tmp_path / f"{method}.vtu",
        ]
        assert main([str(a) for a in argv]) == 0
        out = pv.read(tmp_path / f"{method}.vtu")
        p = np.asarray(out.point_data["scar_probability"])
        assert p.min() >= 0 and p.max() <= 1 and "scar_supervised" in out.point_data


@pytest.mark.slow
def test_examples_run(tmp_path):
    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--output-dir", str(tmp_path), "--nodes", "6000"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    for key in ("dice", "dice_nearest", "dice_linear", "dice_logodds", "group_rmse", "seconds"):
        assert isinstance(report[key], float)
    for name in ("reconstruction.vtu", "slices.png", "mesh.png", "training.png"):
        assert (tmp_path / name).exists()
    check = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "validate_group_constraints.py"),
            str(tmp_path / "reconstruction_data.npz"),
            str(tmp_path / "reconstruction.vtu"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0 and "PASS" in check.stdout, check.stdout + check.stderr


def test_separation_auc_by_hand():
    pos = np.array([True, False, True, False])
    assert separation_auc(np.array([0.9, 0.1, 0.8, 0.2]), pos) == 1.0  # every positive above
    assert separation_auc(np.array([0.1, 0.9, 0.2, 0.8]), pos) == 0.0  # every positive below
    assert separation_auc(np.ones(4), pos) == 0.5  # all tied
    # pairs (pos, neg): (0.9, 0.1) yes, (0.9, 0.85) yes, (0.3, 0.1) yes, (0.3, 0.85) no -> 3/4
    assert separation_auc(np.array([0.9, 0.1, 0.3, 0.85]), pos) == 0.75
    assert separation_auc(np.array([0.5, 0.4]), np.array([False, False])) is None


def test_average_precision_by_hand():
    pos = np.array([False, True, True])
    assert average_precision(np.array([0.1, 0.9, 0.8]), pos) == 1.0  # both positives first
    # 0.9: precision 0 (recall 0); 0.8: 1/2 at recall 1/2; 0.1: 2/3 at recall 1 -> 1/4 + 1/3
    assert average_precision(np.array([0.9, 0.8, 0.1]), pos) == pytest.approx(0.25 + 1 / 3)
    # ties count together: all tied is the positives' share, whatever the order given
    assert average_precision(np.full(3, 0.5), pos) == pytest.approx(2 / 3)
    # a tie of one positive and one negative first: precision 1/2 at recall 1/2, then 2/3 at 1
    assert average_precision(np.array([0.7, 0.7, 0.2]), np.array([False, True, True])) == pytest.approx(0.25 + 1 / 3)
    assert average_precision(np.array([0.5, 0.4]), np.array([False, False])) is None


def test_truth_report_names_the_misclassified_nodes():
    truth = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    pred = np.array([0.1, 0.6, 0.9, 0.4, 0.0])  # nodes 1 and 3 are on the wrong side of 0.5
    unc = np.array([0.01, 0.20, 0.02, 0.15, 0.0])
    assert truth_report(pred, truth, unc)["uncertainty_misclassified_auc"] == 1.0
    assert truth_report(pred, truth, np.array([0.20, 0.01, 0.15, 0.02, 0.1]))["uncertainty_misclassified_auc"] == 0.0


def _mesh_with_fields(small_case: dict[str, Path]) -> pv.UnstructuredGrid:
    mesh = pv.read(str(small_case["mesh"]))
    truth = np.asarray(mesh.point_data["scar_truth"], np.float32)
    mesh.point_data["scar_probability"] = truth
    mesh.point_data["scar_uncertainty"] = np.abs(np.sin(np.asarray(mesh.points[:, 0]))).astype(np.float32)
    return mesh


def test_faces_outward_on_a_mesh_as_made_and_not_with_an_inverted_cell(small_case):
    """The mesh picture culls back faces only when every boundary face faces away from its cell."""
    from pycemrg_scar_reconstruction.figures import boundary_surface, faces_outward
    from pycemrg_scar_reconstruction.io.meshes import mesh_cells

    mesh = _mesh_with_fields(small_case)
    surface = boundary_surface(mesh)
    assert surface.n_cells == mesh.extract_surface().n_cells  # the boundary, as pyvista finds it
    assert faces_outward(mesh, surface)
    # one boundary cell with its node order reversed: its faces turn inward
    cell = int(surface.cell_data["vtkOriginalCellIds"][0])
    offsets, conn, _ = mesh_cells(mesh)
    nodes = conn[offsets[cell] : offsets[cell + 1]]
    n = len(nodes)
    # a tetra reversed by swapping two nodes; a hexahedron by swapping its two quads
    conn[offsets[cell] : offsets[cell + 1]] = nodes[[1, 0, 2, 3]] if n == 4 else np.r_[nodes[n // 2 :], nodes[: n // 2]]
    inverted = pv.UnstructuredGrid(np.insert(conn, offsets[:-1], np.diff(offsets)), mesh.celltypes, mesh.points)
    assert not faces_outward(inverted, boundary_surface(inverted))
    # a surface mesh has no cells to face away from
    polydata = mesh.extract_surface()
    assert not faces_outward(polydata, boundary_surface(polydata))
    # a quadratic cell's faces are subdivided (their ids are not the cells'): drawn whole
    corners = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float)
    edges = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]
    nodes = np.vstack([corners, [(corners[a] + corners[b]) / 2 for a, b in edges]])
    quadratic = pv.UnstructuredGrid(np.r_[10, np.arange(10)], np.array([pv.CellType.QUADRATIC_TETRA]), nodes)
    assert not faces_outward(quadratic, boundary_surface(quadratic))


def test_the_mesh_picture_is_the_same_with_the_back_faces_culled(small_case, tmp_path, monkeypatch):
    """Back faces are hidden: culling them leaves the picture as it was, but for a few pixels on the
    outline and at folds, where a back face's edge can take a pixel from the front face beside it
    (38 of 489,600 on the real human mesh, none on a 1.4-million-node one)."""
    import matplotlib.image as mpimg

    from pycemrg_scar_reconstruction import figures

    mesh = _mesh_with_fields(small_case)
    figures.plot_mesh(mesh, tmp_path / "culled.png")
    monkeypatch.setattr(figures, "faces_outward", lambda mesh, surface: False)
    figures.plot_mesh(mesh, tmp_path / "every_face.png")
    culled, every = mpimg.imread(tmp_path / "culled.png"), mpimg.imread(tmp_path / "every_face.png")
    assert float(culled[..., :3].std()) > 0.01
    differ = (culled != every).any(axis=-1)
    assert differ.sum() <= 1e-4 * differ.size, differ.sum()


def test_the_mesh_picture_looks_along_the_axis_it_is_given():
    """With an axis, the two cameras sit on it on either side of the points' centre, far enough for
    the widest extent across it, with the longest direction across it as up; without one, on the
    points' longest principal axis."""
    from pycemrg_scar_reconstruction.figures import _principal_views

    rng = np.random.default_rng(0)
    # a box 20 mm long on z and 80 x 40 mm across: wider than long, as a biventricular mesh can be
    points = rng.uniform(-0.5, 0.5, size=(4000, 3)) * [80.0, 40.0, 20.0] + [5.0, -3.0, 7.0]
    center = points.mean(axis=0)
    views = _principal_views(points, np.array([0.0, 0.0, 2.0]))
    for (position, focal, up), sign in zip(views, (1.0, -1.0)):
        offset = np.asarray(position) - center
        assert np.allclose(focal, center)
        assert np.allclose(offset[:2], 0.0) and sign * offset[2] > 0
        radius = np.max(np.hypot(*(points - center)[:, :2].T))
        assert abs(offset[2]) >= 4.0 * radius  # the 80 mm width, not the 20 mm length, sets it
        assert np.allclose(np.abs(up), [1.0, 0.0, 0.0], atol=0.05)
    (position, _, _), _ = _principal_views(points)
    assert np.allclose(
        np.abs(np.asarray(position) - center) / np.linalg.norm(np.asarray(position) - center), [1, 0, 0], atol=0.05
    )


def test_the_mesh_picture_shows_the_scar_nodes_through_the_wall(small_case, tmp_path):
    """A last column draws the nodes >= 0.5 inside a faint surface: coloured pixels there when
    scar is called, none when it is not."""
    import matplotlib.image as mpimg

    from pycemrg_scar_reconstruction import figures

    mesh = _mesh_with_fields(small_case)
    figures.plot_mesh(mesh, tmp_path / "scar.png", fields=("scar_probability", "scar_uncertainty"))
    mesh.point_data["scar_probability"] = np.zeros(mesh.n_points, np.float32)
    figures.plot_mesh(mesh, tmp_path / "none.png", fields=("scar_probability", "scar_uncertainty"))
    scar, none = mpimg.imread(tmp_path / "scar.png"), mpimg.imread(tmp_path / "none.png")
    assert scar.shape[1] == 3 * 360 and scar.shape[0] == 2 * 340  # three columns, two rows

    def coloured(img: np.ndarray) -> int:
        rgb = img[:, 2 * 360 :, :3]  # the last column: grey surface, white background, coloured scar
        return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2).sum())

    assert coloured(scar) > 200
    assert coloured(none) == 0


def test_the_mesh_picture_looks_from_the_base_first():
    """Whichever way the axis points, the first camera is at the wide end (the base), the second at
    the narrow one (the apex)."""
    from pycemrg_scar_reconstruction.figures import _principal_views

    rng = np.random.default_rng(1)
    z = rng.uniform(0.0, 60.0, 5000)  # a cone: radius 30 mm at z = 60 (base), 3 mm at z = 0 (apex)
    angle = rng.uniform(0.0, 2 * np.pi, 5000)
    radius = 3.0 + 27.0 * z / 60.0
    points = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), z])
    center = points.mean(axis=0)
    for axis in ([0.0, 0.0, 1.0], [0.0, 0.0, -1.0], None):
        base, apex = (np.asarray(v[0]) for v in _principal_views(points, None if axis is None else np.array(axis)))
        assert base[2] > center[2] > apex[2], axis
