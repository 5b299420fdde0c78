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
    write_prediction(
        grid,
        {"scar_probability": prob, "scar_supervised": np.ones(grid.n_points, np.uint8)},
        tmp_path / "heart.pts",
        cell_arrays={"scar_region": tags},
        source=MeshConfig(path=tmp_path / "in.vtu"),
    )
    lines = (tmp_path / "heart.elem").read_text().splitlines()
    assert lines[0] == "2" and lines[1].startswith("Hx 0 1 2 3 4 5 6 7 2") and lines[2] == "Tt 1 2 6 8 3"
    dat = np.loadtxt(tmp_path / "heart.scar_probability.dat")
    np.testing.assert_allclose(dat, prob, atol=1e-6)
    assert not (tmp_path / "heart.scar_supervised.dat").exists()  # flags are not .dat scalars

    back, points_mm = read_mesh(MeshConfig(path=tmp_path / "heart.pts"))  # .pts default: micrometres
    np.testing.assert_allclose(points_mm, grid.points, atol=1e-6)
    for a, b in zip(mesh_cells(back), mesh_cells(grid)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.cell_data["elem_tag"], tags)


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
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    vtu = pv.read(tmp_path / "r.vtu")
    assert set(np.unique(vtu.cell_data["scar_region"])) <= {1, 2, 3}
    mesh = pv.read(small_case["mesh"])
    write_prediction(mesh, {}, tmp_path / "heart.pts")
    (tmp_path / "heart.lon").write_text("1\n1 0 0\n")
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
