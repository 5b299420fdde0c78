"""A corpus of bad inputs, bad options, crafted files and unwritable outputs, one per kind.

Each case makes what it needs in a fresh folder (next to copies of a small good patient: mesh,
stack, mask, training data, model and result mesh) and returns the ``scar-reconstruct`` arguments
to run. ``tests/test_reliability.py`` runs every case and checks the promise: exit 2, exactly one
stderr line ``error: ...``, no traceback, and no new or changed file in the folder (hidden files
included).
"""

from __future__ import annotations

import gzip
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: name -> case(folder) -> argv. The good files are in ``folder``: mesh.vtu, lge.nii.gz,
#: lge_mask.nii.gz, data.npz, model.pt, out.vtu.
CASES: dict[str, Callable[[Path], list[str]]] = {}
#: name -> the command the case runs.
COMMANDS: dict[str, str] = {}


def case(command: str) -> Callable[[Callable[[Path], list[str]]], Callable[[Path], list[str]]]:
    def register(fn: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        CASES[fn.__name__], COMMANDS[fn.__name__] = fn, command
        return fn

    return register


def prep(d: Path, *extra: str, mesh: str = "mesh.vtu", image: str = "lge.nii.gz") -> list[str]:
    return ["prepare", "--mesh", str(d / mesh), "--image", str(d / image), "--slice-thickness", "8", *extra]


def trn(d: Path, data: str, *extra: str) -> list[str]:
    """``train`` on ``data`` into m.pt."""
    return ["train", "--data", str(d / data), "--output", str(d / "m.pt"), *extra]


def pred(d: Path, model: str, mesh: str, *extra: str) -> list[str]:
    """``predict`` with ``model`` onto ``mesh`` into o.vtu."""
    return ["predict", "--model", str(d / model), "--mesh", str(d / mesh), "--output", str(d / "o.vtu"), *extra]


def run(d: Path, *extra: str) -> list[str]:
    return ["run", "--mesh", str(d / "mesh.vtu"), "--image", str(d / "lge.nii.gz"), "--slice-thickness", "8", *extra]


def _nifti(d: Path, name: str, values: np.ndarray, affine: np.ndarray | None = None) -> Path:
    import nibabel as nib

    ref = nib.load(str(d / "lge.nii.gz"))
    out = d / name
    img = nib.Nifti1Image(values, ref.affine if affine is None else affine)
    nib.save(img, str(out))
    return out


def _lge(d: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    img = nib.load(str(d / "lge.nii.gz"))
    return np.asarray(img.dataobj, np.float64), np.asarray(img.affine)


def _npz(d: Path, name: str, **changes: object) -> Path:
    with np.load(d / "data.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update({k: np.asarray(v) for k, v in changes.items()})
    np.savez(d / name, **arrays)  # type: ignore[arg-type]
    return d / name


def _ckpt(d: Path, name: str, change: Callable[[dict], None]) -> Path:
    import torch

    ckpt = torch.load(d / "model.pt", weights_only=True)
    change(ckpt)
    torch.save(ckpt, d / name)
    return d / name


def _mesh(d: Path, name: str, change: Callable[[object], object]) -> Path:
    import pyvista as pv

    mesh = change(pv.read(str(d / "mesh.vtu")))
    mesh.save(str(d / name))  # type: ignore[attr-defined]
    return d / name


# 1. outputs that cannot be written, in every command ------------------------------------------


@case("prepare")
def prepare_output_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return prep(d, "--output", str(d / "afile" / "data.npz"))


@case("prepare")
def prepare_output_is_a_folder(d: Path) -> list[str]:
    (d / "folder.npz").mkdir()
    return prep(d, "--output", str(d / "folder.npz"))


@case("train")
def train_output_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["train", "--data", str(d / "data.npz"), "--output", str(d / "afile" / "m.pt"), "--max-epochs", "2"]


@case("train")
def train_output_is_a_folder(d: Path) -> list[str]:
    (d / "m.pt").mkdir()
    return trn(d, "data.npz", "--max-epochs", "2")


@case("train")
def train_history_is_a_folder(d: Path) -> list[str]:
    (d / "m.history.json").mkdir()
    return trn(d, "data.npz", "--max-epochs", "2")


@case("predict")
def predict_output_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "mesh.vtu"), "--output", str(d / "afile" / "o.vtu")]


@case("predict")
def predict_output_is_a_folder(d: Path) -> list[str]:
    (d / "o.vtu").mkdir()
    return pred(d, "model.pt", "mesh.vtu")


@case("run")
def run_output_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return run(d, "--output", str(d / "afile" / "o.vtu"))


@case("run")
def run_report_folder_is_a_file(d: Path) -> list[str]:
    (d / "o_report").write_text("x")
    return run(d, "--output", str(d / "o.vtu"), "--max-epochs", "2")


@case("synth")
def synth_output_dir_is_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["synth", "--output-dir", str(d / "afile"), "--n-nodes", "2000"]


@case("report")
def report_output_dir_is_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["report", "--data", str(d / "data.npz"), "--mesh", str(d / "out.vtu"), "--output-dir", str(d / "afile")]


@case("validate")
def validate_json_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["validate", "--data", str(d / "data.npz"), "--mesh", str(d / "out.vtu"), "--json", str(d / "afile" / "r.json")]


@case("baseline")
def baseline_output_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["baseline", "--method", "linear", *prep(d)[1:], "--output", str(d / "afile" / "b.vtu")]


@case("cohort")
def cohort_output_dir_is_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    (d / "m.csv").write_text(f"id,mesh,image,slice_thickness\np,{d / 'mesh.vtu'},{d / 'lge.nii.gz'},8\n")
    return ["cohort", "--manifest", str(d / "m.csv"), "--output-dir", str(d / "afile")]


# 2. outputs that name an input: refused before any work, whatever the spelling --------------


@case("predict")
def predict_output_is_the_mesh(d: Path) -> list[str]:
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "mesh.vtu"), "--output", str(d / "mesh.vtu")]


@case("predict")
def predict_output_is_the_mesh_by_another_path(d: Path) -> list[str]:
    other = os.path.relpath(d / "mesh.vtu")  # relative to the working folder: another spelling of the same file
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "mesh.vtu"), "--output", other]


@case("predict")
def predict_output_is_a_symlink_to_the_mesh(d: Path) -> list[str]:
    (d / "link.vtu").symlink_to(d / "mesh.vtu")
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "mesh.vtu"), "--output", str(d / "link.vtu")]


@case("predict")
def predict_output_is_a_hard_link_to_the_mesh(d: Path) -> list[str]:
    os.link(d / "mesh.vtu", d / "hard.vtu")
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "hard.vtu"), "--output", str(d / "mesh.vtu")]


@case("predict")
def predict_output_is_the_model(d: Path) -> list[str]:
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "mesh.vtu"), "--output", str(d / "model.pt")]


@case("run")
def run_output_is_the_mesh(d: Path) -> list[str]:
    return run(d, "--output", str(d / "mesh.vtu"))


@case("run")
def run_side_file_is_the_mask(d: Path) -> list[str]:
    # o_data.npz (the training data beside the output) is the mask's file
    os.link(d / "lge_mask.nii.gz", d / "o_data.npz")
    return run(d, "--mask", str(d / "o_data.npz"), "--output", str(d / "o.vtu"))


@case("baseline")
def baseline_output_is_the_mesh(d: Path) -> list[str]:
    return ["baseline", "--method", "linear", *prep(d)[1:], "--output", str(d / "mesh.vtu")]


@case("prepare")
def prepare_json_is_the_mesh(d: Path) -> list[str]:
    return ["--json", str(d / "mesh.vtu"), *prep(d, "--output", str(d / "d2.npz"))]


@case("prepare")
def prepare_log_file_is_the_image(d: Path) -> list[str]:
    return prep(d, "--output", str(d / "d2.npz"), "--log-file", str(d / "lge.nii.gz"))


@case("train")
def train_output_is_the_data(d: Path) -> list[str]:
    return ["train", "--data", str(d / "data.npz"), "--output", str(d / "data.npz"), "--max-epochs", "2"]


@case("validate")
def validate_json_is_the_data(d: Path) -> list[str]:
    return ["--json", str(d / "data.npz"), "validate", "--data", str(d / "data.npz"), "--mesh", str(d / "out.vtu")]


@case("crossval")
def crossval_json_is_the_data(d: Path) -> list[str]:
    return ["--json", str(d / "data.npz"), "crossval", "--data", str(d / "data.npz"), "--max-epochs", "2"]


@case("report")
def report_folder_file_is_the_mesh(d: Path) -> list[str]:
    os.link(d / "out.vtu", d / "report.json")  # report.json in --output-dir is the mesh's file
    return ["report", "--data", str(d / "data.npz"), "--mesh", str(d / "report.json"), "--output-dir", str(d)]


@case("synth")
def synth_json_is_the_config(d: Path) -> list[str]:
    (d / "c.yaml").write_text("n_nodes: 2000\n")
    return ["synth", "--config", str(d / "c.yaml"), "--output-dir", str(d / "s"), "--json", str(d / "c.yaml")]


@case("cohort")
def cohort_json_is_the_manifest(d: Path) -> list[str]:
    (d / "m.csv").write_text(f"id,mesh,image,slice_thickness\np,{d / 'mesh.vtu'},{d / 'lge.nii.gz'},8\n")
    return ["cohort", "--manifest", str(d / "m.csv"), "--output-dir", str(d / "co"), "--json", str(d / "m.csv")]


# 2b. impossible sizes, garbage beside an input, contradictions, results without values ------


@case("prepare")
def mesh_header_declares_impossible_points(d: Path) -> list[str]:
    import re

    text = re.sub(rb'NumberOfPoints="\d+"', b'NumberOfPoints="999999999999"', (d / "mesh.vtu").read_bytes())
    (d / "huge.vtu").write_bytes(text)
    return prep(d, "--output", str(d / "d2.npz"), mesh="huge.vtu")


@case("synth")
def synth_nodes_beyond_the_limit(d: Path) -> list[str]:
    return ["synth", "--output-dir", str(d / "s"), "--n-nodes", "1000000000000"]


@case("predict")
def opencarp_input_with_a_garbage_lon(d: Path) -> list[str]:
    import pyvista as pv

    from pycemrg_scar_reconstruction.io.meshes import write_prediction

    write_prediction(pv.read(str(d / "mesh.vtu")), {}, d / "heart.pts")
    (d / "heart.lon").write_text("this is not\na fibre file\n")
    return ["predict", "--model", str(d / "model.pt"), "--mesh", str(d / "heart.pts"), "--output", str(d / "o.pts")]


@case("baseline")
def baseline_image_five_km_from_the_mesh(d: Path) -> list[str]:
    values, affine = _lge(d)
    affine[:3, 3] += 5_000_000.0
    _nifti(d, "far.nii.gz", values.astype(np.float32), affine)
    return ["baseline", "--method", "linear", *prep(d, image="far.nii.gz")[1:], "--output", str(d / "b.vtu")]


@case("validate")
def validate_probability_all_nan(d: Path) -> list[str]:
    _mesh(d, "nan.vtu", lambda m: m.point_data.__setitem__("scar_probability", np.full(m.n_points, np.nan)) or m)
    return ["validate", "--data", str(d / "data.npz"), "--mesh", str(d / "nan.vtu")]


@case("train")
def train_cyclic_lr_max_below_lr(d: Path) -> list[str]:
    return trn(d, "data.npz", "--schedule", "cyclic", "--lr", "0.01", "--lr-max", "0.001", "--max-epochs", "2")


@case("transform")
def transform_report_without_a_registration(d: Path) -> list[str]:
    (d / "r.json").write_text('{"overall": {}}')
    return ["transform", "--image", str(d / "lge.nii.gz"), "--report", str(d / "r.json"), "--output", str(d / "t.nii.gz")]


@case("transform")
def transform_output_is_the_image(d: Path) -> list[str]:
    (d / "r.json").write_text('{"study_to_mesh": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}')
    return ["transform", "--image", str(d / "lge.nii.gz"), "--report", str(d / "r.json"), "--output", str(d / "lge.nii.gz")]


@case("transform")
def transform_report_is_not_json(d: Path) -> list[str]:
    return ["transform", "--image", str(d / "lge.nii.gz"), "--report", str(d / "mesh.vtu"), "--output", str(d / "t.nii.gz")]


@case("prepare")
def register_rigid_without_a_mask(d: Path) -> list[str]:
    return prep(d, "--register", "rigid", "--output", str(d / "d2.npz"))


# 3. corrupt or degenerate inputs ---------------------------------------------------------------


@case("prepare")
def mesh_truncated_vtk(d: Path) -> list[str]:
    import pyvista as pv

    pv.read(str(d / "mesh.vtu")).save(str(d / "full.vtk"), binary=False)
    text = (d / "full.vtk").read_bytes()
    (d / "cut.vtk").write_bytes(text[: len(text) // 20])
    (d / "full.vtk").unlink()
    return prep(d, "--output", str(d / "x.npz"), mesh="cut.vtk")


@case("prepare")
def mesh_garbage_vtu(d: Path) -> list[str]:
    (d / "g.vtu").write_bytes(os.urandom(3000))
    return prep(d, "--output", str(d / "x.npz"), mesh="g.vtu")


@case("prepare")
def mesh_one_point(d: Path) -> list[str]:
    import pyvista as pv

    pv.PolyData(np.zeros((1, 3))).save(str(d / "one.vtp"))
    return prep(d, "--output", str(d / "x.npz"), mesh="one.vtp")


@case("prepare")
def mesh_duplicate_points(d: Path) -> list[str]:
    import pyvista as pv

    pv.PolyData(np.tile(np.asarray(pv.read(str(d / "mesh.vtu")).points[:1]), (500, 1))).save(str(d / "dup.vtp"))
    return prep(d, "--output", str(d / "x.npz"), mesh="dup.vtp")


@case("predict")
def mesh_cell_with_a_missing_node(d: Path) -> list[str]:
    import pyvista as pv

    mesh = pv.read(str(d / "mesh.vtu"))
    cells = np.array(mesh.cells)
    cells[1] = mesh.n_points + 1000  # the first node of the first cell does not exist
    pv.UnstructuredGrid(cells, np.asarray(mesh.celltypes), np.asarray(mesh.points)).save(str(d / "bad.vtu"))
    return pred(d, "model.pt", "bad.vtu")


@case("prepare")
def nifti_corrupted_gzip(d: Path) -> list[str]:
    raw = bytearray((d / "lge.nii.gz").read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 64] = bytes(64)
    (d / "bad.nii.gz").write_bytes(bytes(raw))
    return prep(d, "--output", str(d / "x.npz"), "--target", "probability", image="bad.nii.gz")


@case("prepare")
def nifti_crc_error_only(d: Path) -> list[str]:
    raw = gzip.decompress((d / "lge.nii.gz").read_bytes())
    data = bytearray(gzip.compress(raw))
    data[-8] ^= 0xFF  # the stored CRC-32 no longer matches
    (d / "crc.nii.gz").write_bytes(bytes(data))
    return prep(d, "--output", str(d / "x.npz"), image="crc.nii.gz")


@case("prepare")
def nifti_complex_values(d: Path) -> list[str]:
    v, _ = _lge(d)
    _nifti(d, "c.nii.gz", (v + 1j * v).astype(np.complex64))
    return prep(d, "--output", str(d / "x.npz"), image="c.nii.gz")


@case("prepare")
def nifti_inf_pixels(d: Path) -> list[str]:
    v, _ = _lge(d)
    v[v.shape[0] // 2, v.shape[1] // 2, :] = np.inf
    _nifti(d, "inf.nii.gz", v.astype(np.float32))
    return prep(d, "--output", str(d / "x.npz"), image="inf.nii.gz")


def _sform(d: Path, name: str, change: Callable[[np.ndarray], None]) -> Path:
    """A copy of lge.nii.gz whose stored sform rows are changed (nibabel would refuse to build it)."""
    import nibabel as nib

    img = nib.load(str(d / "lge.nii.gz"))
    hdr = img.header.copy()
    rows = np.stack([hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]])
    change(rows)
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = rows
    hdr["sform_code"], hdr["qform_code"] = 1, 0
    out = nib.Nifti1Image(np.asarray(img.dataobj), None, hdr)
    nib.save(out, str(d / name))
    return d / name


@case("prepare")
def nifti_zero_voxel_size(d: Path) -> list[str]:
    _sform(d, "z.nii.gz", lambda rows: rows.__setitem__((slice(None), 0), 0.0))
    return prep(d, "--output", str(d / "x.npz"), image="z.nii.gz")


@case("prepare")
def nifti_singular_affine(d: Path) -> list[str]:
    def same(rows: np.ndarray) -> None:
        rows[:, 1] = rows[:, 0]

    _sform(d, "s.nii.gz", same)
    return prep(d, "--output", str(d / "x.npz"), image="s.nii.gz")


@case("prepare")
def nifti_nan_affine(d: Path) -> list[str]:
    v, a = _lge(d)
    a = a.copy()
    a[0, 3] = np.nan
    _nifti(d, "n.nii.gz", v.astype(np.float32), a)
    return prep(d, "--output", str(d / "x.npz"), image="n.nii.gz")


@case("prepare")
def vti_layer_unreadable(d: Path) -> list[str]:
    (d / "layer.vti").write_bytes(b"<?xml version='1.0'?>\n<VTKFile type='ImageData'>" + os.urandom(500))
    return prep(d, "--output", str(d / "x.npz"), image="layer.vti")


@case("prepare")
def image_is_a_folder_without_dicom(d: Path) -> list[str]:
    (d / "imgdir").mkdir()
    (d / "imgdir" / "notes.txt").write_text("no dicom here")
    return prep(d, "--output", str(d / "x.npz"), image="imgdir")


@case("prepare")
def option_slice_thickness_inf(d: Path) -> list[str]:
    return [
        "prepare",
        "--mesh",
        str(d / "mesh.vtu"),
        "--image",
        str(d / "lge.nii.gz"),
        "--slice-thickness",
        "inf",
        "--output",
        str(d / "x.npz"),
    ]


@case("train")
def option_lr_inf(d: Path) -> list[str]:
    return trn(d, "data.npz", "--lr", "inf")


@case("train")
def option_fourier_scale_inf(d: Path) -> list[str]:
    return trn(d, "data.npz", "--fourier-scale", "inf")


@case("train")
def option_seed_huge(d: Path) -> list[str]:
    return trn(d, "data.npz", "--seed", str(2**70))


@case("predict")
def option_mc_seed_huge(d: Path) -> list[str]:
    return [
        "predict",
        "--model",
        str(d / "model.pt"),
        "--mesh",
        str(d / "mesh.vtu"),
        "--output",
        str(d / "o.vtu"),
        "--mc-seed",
        str(2**70),
    ]


@case("synth")
def option_synth_seed_huge(d: Path) -> list[str]:
    return ["synth", "--output-dir", str(d / "s"), "--seed", str(2**70), "--n-nodes", "2000"]


@case("prepare")
def option_wrong_choice(d: Path) -> list[str]:
    return [*prep(d, "--output", str(d / "x.npz")), "--target", "probabilty"]


@case("prepare")
def option_unknown(d: Path) -> list[str]:
    return [*prep(d, "--output", str(d / "x.npz")), "--slice-thicknes", "8"]


@case("prepare")
def option_required_missing(d: Path) -> list[str]:
    return ["prepare", "--mesh", str(d / "mesh.vtu"), "--output", str(d / "x.npz")]


@case("train")
def option_not_a_number(d: Path) -> list[str]:
    return trn(d, "data.npz", "--max-epochs", "many")


# 6. crafted training data and checkpoints ------------------------------------------------------


@case("train")
def npz_string_version(d: Path) -> list[str]:
    _npz(d, "v.npz", format_version=np.asarray("three"))
    return trn(d, "v.npz")


@case("train")
def npz_string_points(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        n = f["points"].shape[0]
    _npz(d, "p.npz", points=np.full((n, 3), "a"))
    return trn(d, "p.npz")


@case("train")
def npz_float_member_node(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        mn = f["member_node"].astype(np.float64) + 0.5
    _npz(d, "f.npz", member_node=mn)
    return trn(d, "f.npz")


@case("train")
def npz_vector_norm_scale(d: Path) -> list[str]:
    _npz(d, "s.npz", norm_scale=np.ones(3))
    return trn(d, "s.npz")


@case("train")
def npz_stack_axis_5(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        axis = f["stack_axis"].copy()
    axis[:] = 5
    _npz(d, "a.npz", stack_axis=axis)
    return trn(d, "a.npz")


@case("train")
def npz_string_targets(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        g = f["group_target"].shape[0]
    _npz(d, "t.npz", group_target=np.full(g, "x"))
    return trn(d, "t.npz")


@case("train")
def npz_zero_stack_shape(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        shape = np.zeros_like(f["stack_shapes"])
    _npz(d, "z.npz", stack_shapes=shape)
    return trn(d, "z.npz")


@case("train")
def npz_singular_stack_affine(d: Path) -> list[str]:
    with np.load(d / "data.npz") as f:
        aff = f["stack_affines"].copy()
    aff[:, :3, 1] = aff[:, :3, 0]
    _npz(d, "sa.npz", stack_affines=aff)
    return trn(d, "sa.npz")


@case("train")
def npz_nan_norm_scale(d: Path) -> list[str]:
    _npz(d, "ns.npz", norm_scale=np.asarray(np.nan))
    return trn(d, "ns.npz")


@case("train")
def npz_not_a_zip(d: Path) -> list[str]:
    (d / "g.npz").write_bytes(os.urandom(2000))
    return trn(d, "g.npz")


@case("train")
def npz_pickled_object(d: Path) -> list[str]:
    with zipfile.ZipFile(d / "o.npz", "w") as z:
        z.writestr("format_version.npy", b"\x93NUMPY" + os.urandom(100))
    return trn(d, "o.npz")


@case("predict")
def ckpt_lists_for_arrays(d: Path) -> list[str]:
    def change(c: dict) -> None:
        c["norm_center"] = [0.0, 0.0, 0.0, 1.0]

    _ckpt(d, "l.pt", change)
    return pred(d, "l.pt", "mesh.vtu")


@case("predict")
def ckpt_nan_scale(d: Path) -> list[str]:
    def change(c: dict) -> None:
        c["norm_scale"] = float("nan")

    _ckpt(d, "n.pt", change)
    return pred(d, "n.pt", "mesh.vtu")


@case("predict")
def ckpt_nan_weights(d: Path) -> list[str]:
    def change(c: dict) -> None:
        for v in c["state_dict"].values():
            v.fill_(float("nan"))

    _ckpt(d, "w.pt", change)
    return pred(d, "w.pt", "mesh.vtu")


@case("predict")
def ckpt_truncated(d: Path) -> list[str]:
    raw = (d / "model.pt").read_bytes()
    (d / "t.pt").write_bytes(raw[: len(raw) // 3])
    return pred(d, "t.pt", "mesh.vtu")


# 9. predicting onto a mesh the model was not trained on ------------------------------------------


@case("predict")
def predict_mesh_two_metres_away(d: Path) -> list[str]:
    _mesh(d, "far.vtu", lambda m: m.translate((2000.0, 0.0, 0.0), inplace=False))  # type: ignore[attr-defined]
    return pred(d, "model.pt", "far.vtu")


@case("predict")
def predict_mesh_wrong_frame(d: Path) -> list[str]:
    return [
        "predict",
        "--model",
        str(d / "model.pt"),
        "--mesh",
        str(d / "mesh.vtu"),
        "--mesh-frame",
        "lps",
        "--output",
        str(d / "o.vtu"),
    ]


# 10. multi-file outputs --------------------------------------------------------------------------


@case("baseline")
def pts_output_with_cells_opencarp_lacks(d: Path) -> list[str]:
    import pyvista as pv

    mesh = pv.read(str(d / "mesh.vtu")).extract_surface(algorithm="dataset_surface").triangulate()
    poly = pv.PolyData(np.asarray(mesh.points), faces=np.hstack([[5, 0, 1, 2, 3, 4], np.asarray(mesh.faces)]))
    poly.save(str(d / "poly.vtp"))
    return ["baseline", "--method", "nearest", *prep(d, mesh="poly.vtp")[1:], "--output", str(d / "o.pts")]


@case("prepare")
def measure_offsets_on_a_surface_mesh(d: Path) -> list[str]:
    import pyvista as pv

    pv.read(str(d / "mesh.vtu")).extract_surface(algorithm="dataset_surface").save(str(d / "surface.vtp"))
    mask = ["--mask", str(d / "lge_mask.nii.gz"), "--measure-offsets"]
    return [*prep(d, *mask, mesh="surface.vtp"), "--output", str(d / "o.npz")]


@case("run")
def run_pts_output_with_cells_opencarp_lacks(d: Path) -> list[str]:
    pts_output_with_cells_opencarp_lacks(d)
    return ["run", *prep(d, mesh="poly.vtp")[1:], "--output", str(d / "o.pts"), "--max-epochs", "2"]


# other commands ----------------------------------------------------------------------------------


@case("validate")
def validate_mesh_without_probability(d: Path) -> list[str]:
    return ["validate", "--data", str(d / "data.npz"), "--mesh", str(d / "mesh.vtu")]


@case("validate")
def validate_truth_array_missing(d: Path) -> list[str]:
    return ["validate", "--data", str(d / "data.npz"), "--mesh", str(d / "out.vtu"), "--truth", "nothere"]


@case("validate")
def validate_heldout_without_a_model(d: Path) -> list[str]:
    return ["validate", "--data", str(d / "data.npz"), "--mesh", str(d / "out.vtu"), "--heldout"]


@case("report")
def report_heldout_without_a_model(d: Path) -> list[str]:
    return [
        "report",
        "--data",
        str(d / "data.npz"),
        "--mesh",
        str(d / "out.vtu"),
        "--output-dir",
        str(d / "rep"),
        "--heldout",
    ]


@case("cohort")
def cohort_manifest_unknown_column(d: Path) -> list[str]:
    (d / "m.csv").write_text("id,meshh\np,mesh.vtu\n")
    return ["cohort", "--manifest", str(d / "m.csv"), "--output-dir", str(d / "co")]


@case("report")
def report_mesh_of_another_patient(d: Path) -> list[str]:
    import pyvista as pv

    pv.read(str(d / "out.vtu")).extract_points(np.arange(100)).save(str(d / "small.vtu"))
    return ["report", "--data", str(d / "data.npz"), "--mesh", str(d / "small.vtu"), "--output-dir", str(d / "rep")]


@case("crossval")
def crossval_one_fold(d: Path) -> list[str]:
    return ["crossval", "--data", str(d / "data.npz"), "--folds", "1", "--max-epochs", "2"]


@case("crossval")
def crossval_views_of_one_stack(d: Path) -> list[str]:
    return ["crossval", "--data", str(d / "data.npz"), "--holdout", "views", "--max-epochs", "2"]


@case("crossval")
def crossval_json_under_a_file(d: Path) -> list[str]:
    (d / "afile").write_text("x")
    return ["crossval", "--data", str(d / "data.npz"), "--max-epochs", "2", "--json", str(d / "afile" / "cv.json")]
