"""openCARP meshes: reading, writing with scar region tags, and the round trip."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import MeshConfig, PredictConfig
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.io.meshes import mesh_cells, read_mesh, write_prediction
from pycemrg_scar_reconstruction.regions import cell_mean, classify


def mixed_grid() -> pv.UnstructuredGrid:
    """One hexahedron and one tetrahedron sharing a face corner, coordinates in mm."""
    pts = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1], [2.5, 0.5, 0.5]],
        dtype=float,
    ) * 1.7 + [10.123456, -3.5, 7.25]
    cells = np.array([8, 0, 1, 2, 3, 4, 5, 6, 7, 4, 1, 2, 6, 8])
    types = np.array([pv.CellType.HEXAHEDRON, pv.CellType.TETRA], dtype=np.uint8)
    return pv.UnstructuredGrid(cells, types, pts)


def test_cell_mean_and_classes_by_hand():
    offsets = np.array([0, 3, 7])
    conn = np.array([0, 1, 2, 1, 2, 3, 4])
    p = np.array([0.0, 0.3, 0.6, 0.9, 0.9])
    np.testing.assert_allclose(cell_mean(offsets, conn, p), [0.3, 0.675])
    np.testing.assert_array_equal(classify(np.array([0.1, 0.25, 0.3, 0.5, 0.9]), 0.25, 0.5, (1, 2, 3)), [1, 2, 2, 3, 3])


def test_vtk_to_opencarp_and_back(tmp_path):
    grid = mixed_grid()
    prob = np.linspace(0, 1, grid.n_points).astype(np.float32)
    tags = np.array([2, 3], dtype=np.int32)
    supervised = (np.arange(grid.n_points) % 2).astype(np.uint8)
    write_prediction(
        grid,
        {"scar_probability": prob, "scar_supervised": supervised},
        tmp_path / "heart.pts",
        source=MeshConfig(path=tmp_path / "in.vtu"),
        element_tags=tags,
    )
    lines = (tmp_path / "heart.elem").read_text().splitlines()
    assert lines[0] == "2" and lines[1].startswith("Hx 0 1 2 3 4 5 6 7 2") and lines[2] == "Tt 1 2 6 8 3"
    dat = np.loadtxt(tmp_path / "heart.scar_probability.dat")
    np.testing.assert_allclose(dat, prob, atol=1e-6)
    assert (tmp_path / "heart.scar_supervised.dat").read_text().split() == [str(v) for v in supervised]

    back, points_mm = read_mesh(MeshConfig(path=tmp_path / "heart.pts"))  # .pts default: micrometres
    np.testing.assert_allclose(points_mm, grid.points, atol=1e-6)
    for a, b in zip(mesh_cells(back), mesh_cells(grid)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.cell_data["elem_tag"], tags)
    np.testing.assert_allclose(back.point_data["scar_probability"], prob, atol=1e-6)  # the .dat files read back


def every_element_kind() -> pv.UnstructuredGrid:
    """A hexahedron, a wedge (prism), a pyramid and a tetrahedron, each with a positive volume, and a
    cell array of input tags."""
    hexa = np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0], [0, 0, 3], [2, 0, 3], [2, 1, 3], [0, 1, 3]], float)
    wedge = np.array([[5, 0, 0], [7, 0, 0], [5, 2, 0], [5, 0, 1], [7, 0, 1], [5, 2, 1]], float)
    pyramid = np.array([[10, 0, 0], [12, 0, 0], [12, 2, 0], [10, 2, 0], [11, 1, 3]], float)
    tet = np.array([[15, 0, 0], [16, 0, 0], [15, 1, 0], [15, 0, 1]], float)
    points = np.vstack([hexa, wedge, pyramid, tet])
    cells = np.hstack([[8, *range(0, 8)], [6, *range(8, 14)], [5, *range(14, 19)], [4, *range(19, 23)]])
    types = np.array([pv.CellType.HEXAHEDRON, pv.CellType.WEDGE, pv.CellType.PYRAMID, pv.CellType.TETRA], np.uint8)
    grid = pv.UnstructuredGrid(cells, types, points)
    grid.cell_data["region"] = np.array([1, 5, 5, 7], np.int32)
    return grid


def test_every_element_kind_keeps_its_volume_through_opencarp(tmp_path):
    grid = every_element_kind()
    volumes = grid.compute_cell_sizes(length=False, area=False)["Volume"]
    np.testing.assert_allclose(volumes, [6.0, 2.0, 4.0, 1 / 6])  # by hand: box, half box, base x h / 3, corner
    write_prediction(grid, {}, tmp_path / "k.pts", source=MeshConfig(path=tmp_path / "k.vtu", units="mm"))
    kinds = [line.split()[0] for line in (tmp_path / "k.elem").read_text().splitlines()[1:]]
    assert kinds == ["Hx", "Pr", "Py", "Tt"]
    back, _ = read_mesh(MeshConfig(path=tmp_path / "k.pts"))
    back_volumes = back.compute_cell_sizes(length=False, area=False)["Volume"]
    np.testing.assert_allclose(back_volumes, volumes * 1000.0**3, rtol=1e-9)  # the same cells, now in um


@pytest.mark.parametrize(
    "mode, expected",
    [("offset", [1, 105, 205, 7]), ("keep", [1, 5, 5, 7]), ("replace", [1, 2, 3, 1])],
)
def test_tag_modes_keep_or_offset_the_input_tags(tmp_path, mode, expected):
    from pycemrg_scar_reconstruction.api._common import element_outputs, elements

    grid = every_element_kind()
    # node probabilities that make the cells healthy, border zone, core scar, healthy
    prob = np.zeros(grid.n_points)
    prob[8:14], prob[14:19] = 0.3, 0.9
    mesh = MeshConfig(path=tmp_path / "k.vtu", tag_array="region")
    out = element_outputs(grid, elements(grid, prob), PredictConfig(tag_mode=mode), mesh)
    np.testing.assert_array_equal(out["element_tags"], expected)
    np.testing.assert_array_equal(out["cell_arrays"]["scar_region"], [1, 2, 3, 1])
    with pytest.raises(InputError, match="no cell array 'nothere'"):
        element_outputs(grid, elements(grid, prob), PredictConfig(), mesh.model_copy(update={"tag_array": "nothere"}))


def test_fibres_become_a_lon_and_their_absence_is_said(tmp_path, caplog):
    grid = every_element_kind()
    write_prediction(grid, {}, tmp_path / "a.pts", source=MeshConfig(path=tmp_path / "a.vtu"))
    assert not (tmp_path / "a.lon").exists() and "no fibre array" in caplog.text
    grid.cell_data["fibres"] = np.tile([1.0, 0.0, 0.0], (grid.n_cells, 1))
    write_prediction(grid, {}, tmp_path / "b.pts", source=MeshConfig(path=tmp_path / "b.vtu"))
    lines = (tmp_path / "b.lon").read_text().splitlines()
    assert lines[0] == "1" and len(lines) == 1 + grid.n_cells and lines[1].split() == ["1", "0", "0"]


def test_output_units_of_a_vtk_output(tmp_path):
    grid = mixed_grid()
    write_prediction(grid, {}, tmp_path / "in.pts")  # openCARP copy in micrometres
    um, _ = read_mesh(MeshConfig(path=tmp_path / "in.pts"))
    write_prediction(um, {}, tmp_path / "mm.vtu", source=MeshConfig(path=tmp_path / "in.pts"), output_units="mm")
    write_prediction(um, {}, tmp_path / "um.vtu", source=MeshConfig(path=tmp_path / "in.pts"))
    np.testing.assert_allclose(pv.read(tmp_path / "mm.vtu").points, grid.points, atol=1e-4)
    np.testing.assert_allclose(pv.read(tmp_path / "um.vtu").points, grid.points * 1000.0, atol=1e-1)


def test_run_with_an_opencarp_output_reports_and_validates(small_case, tmp_path):
    base = ["--mesh", str(small_case["mesh"]), "--image", str(small_case["image"]), "--slice-thickness", "8"]
    out = tmp_path / "heart.pts"
    assert main(["run", *base, "--output", str(out), "--max-epochs", "3", "-q", "--mc-samples", "2"]) == 0
    assert (tmp_path / "heart_report" / "report.json").exists() and (tmp_path / "heart_report" / "report.html").exists()
    for name in ("heart.elem", "heart.scar_probability.dat", "heart.scar_supervised.dat", "heart.scar_truth.dat"):
        assert (tmp_path / name).exists(), name
    argv = ["validate", "--data", str(tmp_path / "heart_data.npz"), "--mesh", str(out), "--truth", "scar_truth"]
    assert main(argv) in (0, 1)  # read back from the .dat files


def test_predict_on_an_opencarp_mesh_writes_dat_elem_and_lon(small_case, tmp_path):
    # a small model and an openCARP copy of the case mesh (micrometres, with fibres)
    assert (
        main(
            [
                "run",
                "--mesh",
                str(small_case["mesh"]),
                "--image",
                str(small_case["image"]),
                "--mask",
                str(small_case["mask"]),
                "--slice-thickness",
                "8",
                "--output",
                str(tmp_path / "r.vtu"),
                "--max-epochs",
                "3",
                "-q",
                "--no-report",
            ]
        )
        == 0
    )
    vtu = pv.read(tmp_path / "r.vtu")
    assert set(np.unique(vtu.cell_data["scar_region"])) <= {1, 2, 3}
    mesh = pv.read(small_case["mesh"])
    write_prediction(mesh, {}, tmp_path / "heart.pts")
    (tmp_path / "heart.lon").write_text("1\n" + "1 0 0\n" * mesh.n_cells)  # a valid fibre file: copied
    argv = [
        "predict",
        "--model",
        str(tmp_path / "r_model.pt"),
        "--mesh",
        str(tmp_path / "heart.pts"),
        "--output",
        str(tmp_path / "out" / "heart_scar.pts"),
        "--mc-samples",
        "3",
        "--tag-healthy",
        "10",
        "--tag-border",
        "11",
        "--tag-core",
        "12",
        "--tag-mode",
        "replace",
    ]
    assert main(argv) == 0
    out = tmp_path / "out"
    for name in (
        "heart_scar.pts",
        "heart_scar.elem",
        "heart_scar.lon",
        "heart_scar.scar_probability.dat",
        "heart_scar.scar_uncertainty.dat",
    ):
        assert (out / name).exists(), name
    assert len(np.loadtxt(out / "heart_scar.scar_probability.dat")) == mesh.n_points
    tags = np.array([int(line.split()[-1]) for line in (out / "heart_scar.elem").read_text().splitlines()[1:]])
    assert len(tags) == mesh.n_cells and set(np.unique(tags)) <= {10, 11, 12}
    # same node order: the .pts written back equals the input
    np.testing.assert_allclose(read_mesh(MeshConfig(path=out / "heart_scar.pts"))[1], np.asarray(mesh.points), atol=1e-5)


def test_bad_opencarp_inputs_and_thresholds(tmp_path, capsys):
    (tmp_path / "m.pts").write_text("3\n0 0 0\n1000 0 0\n0 1000 0\n")
    (tmp_path / "m.elem").write_text("1\nTr 0 1 7 1\n")
    with pytest.raises(InputError, match="m.elem"):
        read_mesh(MeshConfig(path=tmp_path / "m.pts"))
    with pytest.raises(ValueError, match="border_threshold"):
        PredictConfig(border_threshold=0.6, core_threshold=0.4)
    code = main(
        [
            "predict",
            "--model",
            "x.pt",
            "--mesh",
            str(tmp_path / "m.pts"),
            "--output",
            str(tmp_path / "o.vtu"),
            "--border-threshold",
            "0.7",
            "--core-threshold",
            "0.3",
        ]
    )
    assert code == 2 and "border-threshold" in capsys.readouterr().err


def test_cell_volumes_and_the_scar_burden_by_hand():
    """The hexahedron of side 1.7 mm holds 4.913 mm^3, the tetrahedron a quarter of that; the burden
    adds up element volumes by class, and the expected scar volume weighs them by probability."""
    from pycemrg_scar_reconstruction.io.meshes import cell_volumes
    from pycemrg_scar_reconstruction.regions import scar_burden

    np.testing.assert_allclose(cell_volumes(mixed_grid()), [1.7**3, 0.25 * 1.7**3], rtol=1e-9)
    quad = pv.UnstructuredGrid(
        np.array([4, 0, 1, 2, 3]),
        np.array([pv.CellType.QUAD], np.uint8),
        np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]]),
    )
    np.testing.assert_array_equal(cell_volumes(quad), [0.0])  # a face has none
    # elements in the mirrored node order (VTK's volume is then negative) hold the same volume
    corners = np.array([[0.0, 0, 0], [2, 0, 0], [0, 3, 0], [0, 0, 1]])
    for order in ([0, 1, 2, 3], [0, 2, 1, 3]):
        tet = pv.UnstructuredGrid(np.array([4, *order]), np.array([pv.CellType.TETRA], np.uint8), corners)
        np.testing.assert_allclose(cell_volumes(tet), [1.0], rtol=1e-12)
    volume, p = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.3, 0.8])
    b = scar_burden(volume, p, 0.25, 0.5)
    assert b is not None
    assert (b["myocardium_ml"], b["border_zone_ml"], b["core_ml"]) == (6.0, 2.0, 3.0)
    assert b["expected_ml"] == pytest.approx(0.1 + 0.6 + 2.4) and b["core_share"] == pytest.approx(0.5)
    only = scar_burden(volume, p, 0.25, 0.5, in_region=np.array([True, True, False]))
    assert only is not None and (only["myocardium_ml"], only["core_ml"], only["border_zone_share"]) == (3.0, 0.0, 2.0 / 3.0)
    assert scar_burden(np.zeros(3), p, 0.25, 0.5) is None  # no volume, no burden


def test_the_burden_is_in_millilitres_whatever_the_mesh_units_and_follows_the_region(tmp_path):
    """The same elements in mm and in micrometres give the same mL; with a region, only the elements
    whose nodes are all in it count; ``predict`` keeps the figures in the output's field data."""
    from pycemrg_scar_reconstruction.api._common import burden, elements

    grid = mixed_grid()
    p = np.linspace(0.2, 0.9, grid.n_points)
    mm = burden(grid, elements(grid, p), PredictConfig(), MeshConfig(path=tmp_path / "h.vtu"), None)
    um_grid = grid.copy()
    um_grid.points = grid.points * 1000.0
    um = burden(um_grid, elements(um_grid, p), PredictConfig(), MeshConfig(path=tmp_path / "h.vtu", units="um"), None)
    assert mm is not None and um is not None
    assert mm["myocardium_ml"] == pytest.approx(1.25 * 1.7**3 / 1000.0)
    for key in mm:
        assert um[key] == pytest.approx(mm[key], rel=1e-9), key
    hexahedron = np.zeros(grid.n_points, bool)
    hexahedron[:8] = True  # the tetrahedron's node 8 is outside
    region = burden(grid, elements(grid, p), PredictConfig(), MeshConfig(path=tmp_path / "h.vtu"), hexahedron)
    assert region is not None and region["myocardium_ml"] == pytest.approx(1.7**3 / 1000.0)
    write_prediction(
        grid, {"scar_probability": p}, tmp_path / "o.vtu", field_arrays={f"scar_{k}": np.array([v]) for k, v in mm.items()}
    )
    from pycemrg_scar_reconstruction.api.report import burden_summary

    assert burden_summary(pv.read(tmp_path / "o.vtu")) == pytest.approx(mm)
    assert burden_summary(grid) is None
