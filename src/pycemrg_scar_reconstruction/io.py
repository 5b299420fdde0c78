"""All file reading and writing: meshes, NIfTI stacks, training data, JSON.

Outputs are written to a temporary file in the destination folder and renamed into place, so a
failure never leaves a half-written file. Every read error becomes an :class:`InputError` naming
the file and the fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .config import MeshConfig, StackConfig
from .data import TrainingData
from .errors import InputError
from .geometry import FRAME_TO_RAS, to_world_mm, voxel_spacing
from .stack import SliceStack
from .targets import to_target

logger = logging.getLogger(__name__)

PYVISTA_MESH_SUFFIXES = (".vtk", ".vtu", ".vtp", ".ply", ".stl", ".obj")
MESH_SUFFIXES = PYVISTA_MESH_SUFFIXES + (".pts",)
WRITABLE_MESH_SUFFIXES = (".vtk", ".vtu", ".vtp", ".pts")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
VTK_LAYER_SUFFIXES = (".vti", ".vts", ".vtk")

# openCARP element type -> (node count, VTK cell type id)
_OPENCARP_ELEMENTS = {"Tt": (4, 10), "Hx": (8, 12), "Py": (5, 14), "Pr": (6, 13), "Tr": (3, 5), "Qd": (4, 9), "Ln": (2, 3)}
_VTK_TO_OPENCARP = {vtk: name for name, (_, vtk) in _OPENCARP_ELEMENTS.items()}


def full_suffix(path: Path) -> str:
    """Lower-case suffix, with ``.nii.gz`` kept whole."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: {what} not found; check the path")
    if not path.is_file():
        raise InputError(f"{path}: {what} is not a file; give the path of the file itself")


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=full_suffix(path) or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# ---------------------------------------------------------------------------------------- meshes
def read_mesh(config: MeshConfig) -> tuple[Any, np.ndarray]:
    """Read a mesh and its node coordinates in world RAS mm.

    Returns
    -------
    mesh : pyvista.DataSet, as read (cells and point/cell arrays kept for the output).
    points : (N, 3) float64 world RAS mm (frame and units converted).
    """

    path = Path(config.path)
    _require_file(path, "mesh")
    suffix = full_suffix(path)
    if suffix not in MESH_SUFFIXES:
        raise InputError(f"{path}: unknown mesh extension '{suffix}'; use one of {' '.join(MESH_SUFFIXES)}")
    try:
        mesh = _read_opencarp(path) if suffix == ".pts" else _quiet_vtk_read(path)
    except InputError:
        raise
    except Exception as exc:  # VTK readers fail in many ways
        raise InputError(f"{path}: cannot read the mesh; check the file is a complete, valid {suffix}") from exc
    raw = np.asarray(mesh.points, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[0] == 0:
        raise InputError(f"{path}: mesh has no points; give a mesh with nodes")
    if not np.all(np.isfinite(raw)):
        raise InputError(f"{path}: mesh has non-finite (NaN/inf) coordinates; repair the mesh")
    return mesh, to_world_mm(raw, config.frame, config.resolved_units)


def _quiet_vtk_read(path: Path) -> Any:
    """pyvista.read with VTK's own error printing silenced and its failures raised."""
    import pyvista as pv

    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.CRITICAL)  # pyvista forwards VTK errors to the root logger
    try:
        with warnings.catch_warnings(), pv.vtk_verbosity("off"):
            warnings.simplefilter("error")  # pyvista reports reader failures as warnings
            return pv.read(str(path))
    finally:
        logging.getLogger().setLevel(root_level)


def _read_opencarp(path: Path) -> Any:
    """openCARP ``.pts`` (+ ``.elem`` with the same stem when present) as a pyvista mesh."""
    import pyvista as pv

    with open(path) as f:
        header = f.readline().split()
        body = f.read()
    try:
        count = int(header[0])
        pts = np.array(body.split(), dtype=np.float64).reshape(-1, 3)
    except (IndexError, ValueError) as exc:
        raise InputError(f"{path}: not an openCARP .pts file (first line: node count, then x y z per line)") from exc
    if pts.shape[0] != count:
        raise InputError(f"{path}: header says {count} nodes, file has {pts.shape[0]}; repair the file")
    elem = path.with_suffix(".elem")
    if not elem.exists():
        return pv.PolyData(pts) if count else pv.PolyData()
    cells, types, tags = [], [], []
    with open(elem) as f:
        f.readline()
        for line in f:  # element lines may mix types; this is file parsing, not a hot path
            tok = line.split()
            if not tok:
                continue
            if tok[0] not in _OPENCARP_ELEMENTS:
                raise InputError(f"{elem}: unknown element type '{tok[0]}'; expected one of {' '.join(_OPENCARP_ELEMENTS)}")
            n, vtk_type = _OPENCARP_ELEMENTS[tok[0]]
            cells.append([n, *map(int, tok[1 : 1 + n])])
            types.append(vtk_type)
            tags.append(int(tok[1 + n]) if len(tok) > 1 + n else 0)
    flat = np.concatenate([np.asarray(c, dtype=np.int64) for c in cells]) if cells else np.zeros(0, np.int64)
    sizes = np.asarray([c[0] for c in cells], dtype=np.int64) + 1
    is_node = np.ones(len(flat), dtype=bool)
    is_node[np.cumsum(sizes) - sizes] = False  # drop the per-cell size entries
    conn = flat[is_node]
    if conn.size and (conn.min() < 0 or conn.max() >= count):
        raise InputError(f"{elem}: elements refer to nodes outside 0..{count - 1}; check it matches {path.name}")
    grid = pv.UnstructuredGrid(flat, np.asarray(types, dtype=np.uint8), pts)
    grid.cell_data["elem_tag"] = np.asarray(tags, dtype=np.int32)
    return grid


def check_mesh_output(path: Path) -> None:
    """Refuse an output mesh name we cannot write, before any work is done."""
    suffix = full_suffix(Path(path))
    if suffix not in WRITABLE_MESH_SUFFIXES:
        raise InputError(f"{path}: cannot write '{suffix}' meshes; name the output with one of {' '.join(WRITABLE_MESH_SUFFIXES)}")


def write_mesh(mesh: Any, path: Path) -> None:
    """Write a pyvista mesh atomically; the format follows the extension (.vtk .vtu .vtp)."""
    path = Path(path)
    check_mesh_output(path)
    if full_suffix(path) == ".pts":
        raise InputError(f"{path}: openCARP output is written by write_prediction; use .vtu for a plain mesh")
    if full_suffix(path) == ".vtp" and not hasattr(mesh, "faces"):
        raise InputError(f"{path}: a volumetric mesh cannot be written as .vtp; use .vtu")
    with atomic_output(path) as tmp:
        mesh.save(str(tmp))


# ---------------------------------------------------------------------------------------- images
def _as_3d(values: np.ndarray, path: Path, what: str) -> np.ndarray:
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise InputError(
            f"{path}: {what} is {values.ndim}D with shape {values.shape}; give one 3D stack (I, J, K slices) per file"
        )
    return values


def load_image(path: Path, what: str = "image", dicom_series: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values (I, J, K) float64, affine (4, 4) voxel -> world RAS mm) of any supported image.

    NIfTI through nibabel; NRRD, MetaImage and DICOM folders through SimpleITK (the ``[itk]`` extra);
    VTK image/structured-grid slice layers through pyvista (one slice each).
    """
    path = Path(path)
    suffix = full_suffix(path)
    if path.is_dir():
        return _load_itk(path, what, dicom_series)
    _require_file(path, what)
    if suffix in NIFTI_SUFFIXES:
        return _load_nifti(path, what)
    if suffix in ITK_SUFFIXES:
        return _load_itk(path, what, None)
    if suffix in VTK_LAYER_SUFFIXES:
        return _load_vtk_layer(path, what)
    raise InputError(f"{path}: unknown image extension '{suffix}'; use NIfTI (.nii .nii.gz), NRRD/MetaImage "
                     f"({' '.join(ITK_SUFFIXES)}), a DICOM folder, or a VTK slice layer ({' '.join(VTK_LAYER_SUFFIXES)})")


def _load_nifti(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        values = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as exc:
        raise InputError(f"{path}: cannot read NIfTI ({type(exc).__name__}); check the file is complete") from exc
    return _as_3d(values, path, what), np.asarray(img.affine, dtype=np.float64)


#: ITK physical space is LPS, NIfTI world is RAS: this is the one place the flip is made for images.
LPS_TO_RAS = np.diag([*FRAME_TO_RAS["lps"], 1.0])


def _load_itk(path: Path, what: str, dicom_series: str | None) -> tuple[np.ndarray, np.ndarray]:
    """NRRD / MetaImage file or DICOM folder through SimpleITK, converted to the NIfTI (RAS) convention."""
    try:
        import SimpleITK as sitk
    except ImportError as exc:
        raise InputError(f"{path}: reading this format needs SimpleITK: pip install 'pycemrg_scar_reconstruction[itk]'") from exc
    try:
        if path.is_dir():
            ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path)))
            if not ids:
                raise InputError(f"{path}: no DICOM series in this folder; give a folder of DICOM slices")
            if dicom_series is None and len(ids) > 1:
                raise InputError(f"{path}: {len(ids)} DICOM series here ({', '.join(ids)}); choose one with --dicom-series")
            series = dicom_series or ids[0]
            if series not in ids:
                raise InputError(f"{path}: no DICOM series {series}; the folder has {', '.join(ids)}")
            img = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series))
        else:
            img = sitk.ReadImage(str(path))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read the {what} with SimpleITK ({type(exc).__name__}); check the file") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: {what} has {img.GetNumberOfComponentsPerPixel()} components per pixel; give a scalar image")
    if img.GetDimension() != 3:
        raise InputError(f"{path}: {what} is {img.GetDimension()}D; give one 3D stack (I, J, K slices) per file")
    values = sitk.GetArrayFromImage(img).astype(np.float64).transpose(2, 1, 0)  # ITK arrays are (k, j, i)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction @ np.diag(img.GetSpacing())
    affine_lps[:3, 3] = img.GetOrigin()
    return values, LPS_TO_RAS @ affine_lps


def _load_vtk_layer(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A 2D slice grid saved as VTK (image data or structured grid, point or cell scalars) as a one-slice stack.

    Coordinates are taken as world RAS mm. The stack's third axis is the slice normal; its column
    length is 1 mm (a single slice has no spacing: give --slice-thickness).
    """
    mesh = _quiet_vtk_read(path)
    dims = tuple(int(d) for d in getattr(mesh, "dimensions", ()))
    if len(dims) != 3 or sorted(dims)[0] != 1 or not hasattr(mesh, "dimensions"):
        raise InputError(f"{path}: not a single 2D slice grid (dimensions {dims or 'none'}); give one slice per VTK file")
    if dims[2] != 1:
        raise InputError(f"{path}: slice grids must be flat along their third dimension (dimensions {dims})")
    on_points = mesh.point_data.keys()
    on_cells = mesh.cell_data.keys()
    if not on_points and not on_cells:
        raise InputError(f"{path}: the slice grid has no scalar array; save the pixel values as point or cell data")
    points = np.asarray(mesh.points, dtype=np.float64).reshape(dims[1], dims[0], 3).transpose(1, 0, 2)  # (nx, ny, 3)
    if on_points:
        values = np.asarray(mesh.point_data[on_points[0]], dtype=np.float64).reshape(dims[1], dims[0]).T
        centres = points
    else:
        values = np.asarray(mesh.cell_data[on_cells[0]], dtype=np.float64).reshape(dims[1] - 1, dims[0] - 1).T
        centres = 0.25 * (points[:-1, :-1] + points[1:, :-1] + points[:-1, 1:] + points[1:, 1:])
    if min(centres.shape[:2]) < 2:
        raise InputError(f"{path}: the slice grid needs at least 2 x 2 pixels")
    col_i = centres[1, 0] - centres[0, 0]
    col_j = centres[0, 1] - centres[0, 0]
    normal = np.cross(col_i, col_j)
    normal /= np.linalg.norm(normal)
    affine = np.eye(4)
    affine[:3, :3] = np.column_stack([col_i, col_j, normal])
    affine[:3, 3] = centres[0, 0]
    ii, jj = np.meshgrid(np.arange(centres.shape[0]), np.arange(centres.shape[1]), indexing="ij")
    predicted = centres[0, 0] + ii[..., None] * col_i + jj[..., None] * col_j
    if np.abs(predicted - centres).max() > 1e-3 * min(np.linalg.norm(col_i), np.linalg.norm(col_j)):
        raise InputError(f"{path}: the slice grid is not a regular planar grid; resample it onto one")
    return values[..., None], affine


def read_stack(config: StackConfig) -> SliceStack:
    """Read one stack (and its masks) and convert its values to scar targets."""
    path = Path(config.path)
    values, affine = load_image(path, "image", config.dicom_series)

    def grid_mask(mask_path: Path | None, what: str) -> np.ndarray | None:
        if mask_path is None:
            return None
        mvals, maffine = load_image(Path(mask_path), what)
        if mvals.shape != values.shape or not np.allclose(maffine, affine, atol=1e-3):
            raise InputError(
                f"{mask_path}: {what} grid (shape {mvals.shape}) differs from image {path.name} "
                f"(shape {values.shape}) or its affine; resample the mask onto the image grid"
            )
        return mvals > 0.5

    mask = grid_mask(config.mask, "mask")
    if config.slice_thickness is None and full_suffix(path) in VTK_LAYER_SUFFIXES:
        raise InputError(f"{path}: a single VTK slice layer has no slice spacing; give --slice-thickness")
    thickness = config.slice_thickness or float(voxel_spacing(affine)[config.axis])
    targets, mapping = to_target(
        values, config.target, mask, config.scar_label, name=str(path), normalise=config.normalise,
        remote=grid_mask(config.remote_mask, "remote mask"), n_sd=config.n_sd,
        blood_pool=grid_mask(config.blood_pool_mask, "blood-pool mask"), iir_low=config.iir_low, iir_high=config.iir_high,
    )
    return SliceStack(values=targets, affine=affine, thickness=thickness, axis=config.axis, mask=mask,
                      name=str(path), mapping=mapping)


def write_nifti(values: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write a 3D float32 NIfTI atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(values, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    with atomic_output(Path(path)) as tmp:
        nib.save(img, str(tmp))


# ------------------------------------------------------------------------------- training data
def save_training_data(data: TrainingData, path: Path) -> None:
    """Write training data as a versioned ``.npz`` (layout: :mod:`.data`)."""
    path = Path(path)
    if full_suffix(path) != ".npz":
        raise InputError(f"{path}: training data is written as .npz; name the output '*.npz'")
    with atomic_output(path) as tmp:
        np.savez(tmp, **data.to_arrays())


def load_training_data(path: Path) -> TrainingData:
    """Read and check a training-data ``.npz``."""
    path = Path(path)
    _require_file(path, "training data")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise InputError(f"{path}: cannot read training data ({type(exc).__name__}); re-create it with `scar-reconstruct prepare`") from exc
    return TrainingData.from_arrays(arrays, name=str(path))


def write_json(obj: Any, path: Path) -> None:
    """Write JSON (indented) atomically."""
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------- models
def save_model(fitted: Any, path: Path) -> Path:
    """Write a model checkpoint (``.pt``) and its loss curve beside it (``<stem>.history.json``).

    Returns the history path.
    """
    import torch

    path = Path(path)
    if full_suffix(path) != ".pt":
        raise InputError(f"{path}: models are written as .pt; name the output '*.pt'")
    with atomic_output(path) as tmp:
        torch.save(fitted.to_checkpoint(), tmp)
    history = path.with_suffix(".history.json")
    write_json({"best_epoch": fitted.best_epoch, "stop_reason": fitted.stop_reason, "seconds": fitted.seconds,
                "epochs": fitted.history}, history)
    return history


def load_model(path: Path) -> Any:
    """Read a model checkpoint with ``torch.load(weights_only=True)``; a wrong file is an InputError."""
    import torch

    from .train import FittedModel

    path = Path(path)
    _require_file(path, "model")
    fix = "give a model written by `scar-reconstruct train` (or re-train it)"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files fail in many ways inside torch.load
        raise InputError(f"{path}: not a readable model checkpoint ({type(exc).__name__}); {fix}") from exc
    if not isinstance(ckpt, dict):
        raise InputError(f"{path}: not a pycemrg_scar_reconstruction model; {fix}")
    try:
        return FittedModel.from_checkpoint(ckpt)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise InputError(f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; {fix}") from exc


def mesh_cells(mesh: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets (C + 1,), connectivity, VTK cell types (C,)) of any pyvista mesh; empty when it has no cells."""
    grid = mesh if hasattr(mesh, "celltypes") else mesh.cast_to_unstructured_grid()
    if grid.n_cells == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
    from vtkmodules.util.numpy_support import vtk_to_numpy

    cells = grid.GetCells()
    return (vtk_to_numpy(cells.GetOffsetsArray()).astype(np.int64),
            vtk_to_numpy(cells.GetConnectivityArray()).astype(np.int64), np.asarray(grid.celltypes))


def write_prediction(mesh: Any, point_arrays: dict[str, np.ndarray], path: Path,
                     cell_arrays: dict[str, np.ndarray] | None = None, source: MeshConfig | None = None) -> None:
    """Write the prediction.

    ``.vtk/.vtu/.vtp``: a copy of ``mesh`` (cells and arrays kept) with the extra point and cell arrays.
    ``.pts`` (openCARP, NAME.pts): ``NAME.pts`` (micrometres, node order kept), ``NAME.elem`` with the
    ``scar_region`` cell array as region tags, one ``NAME.<array>.dat`` per float point array, and the
    source's ``.lon`` copied when present. ``source`` gives the mesh's units and where it came from.
    """
    path = Path(path)
    cell_arrays = cell_arrays or {}
    if full_suffix(path) != ".pts":
        out = mesh.copy(deep=True)
        for name, values in point_arrays.items():
            out.point_data[name] = values
        for name, values in cell_arrays.items():
            out.cell_data[name] = values
        write_mesh(out, path)
        return
    from .geometry import UNIT_TO_MM

    base = path.with_suffix("")
    units = source.resolved_units if source is not None else "mm"
    write_opencarp_points(np.asarray(mesh.points, np.float64) * (UNIT_TO_MM[units] * 1000.0), base.with_suffix(".pts"))
    offsets, conn, types = mesh_cells(mesh)
    if len(types):
        tags = cell_arrays.get("scar_region")
        if tags is None and "elem_tag" in mesh.cell_data:
            tags = np.asarray(mesh.cell_data["elem_tag"])
        write_opencarp_elements(offsets, conn, types, np.zeros(len(types), np.int32) if tags is None else tags,
                                base.with_suffix(".elem"))
    for name, values in point_arrays.items():
        if np.issubdtype(np.asarray(values).dtype, np.floating):
            with atomic_output(Path(f"{base}.{name}.dat")) as tmp:
                np.savetxt(tmp, np.asarray(values), fmt="%.6g")
    if source is not None and Path(source.path).with_suffix(".lon").exists():
        with atomic_output(base.with_suffix(".lon")) as tmp:
            tmp.write_bytes(Path(source.path).with_suffix(".lon").read_bytes())


def write_opencarp_points(points_um: np.ndarray, path: Path) -> None:
    """openCARP ``.pts``: the node count, then ``x y z`` per line (micrometres)."""
    with atomic_output(Path(path)) as tmp:
        with open(tmp, "w") as f:
            f.write(f"{len(points_um)}\n")
            np.savetxt(f, points_um, fmt="%.6f")


def write_opencarp_elements(offsets: np.ndarray, conn: np.ndarray, types: np.ndarray, tags: np.ndarray, path: Path) -> None:
    """openCARP ``.elem``: the element count, then ``Type n1 .. nk tag`` per line, element order kept."""
    import io as _io

    unknown = sorted(set(np.unique(types).tolist()) - set(_VTK_TO_OPENCARP))
    if unknown:
        raise InputError(f"{path}: VTK cell types {unknown} have no openCARP element; write .vtu instead")
    lines = np.empty(len(types), dtype=object)
    for vtk_type in np.unique(types):  # one pass per element type (a handful), not per element
        sel = np.flatnonzero(types == vtk_type)
        n = int(offsets[sel[0] + 1] - offsets[sel[0]])
        nodes = conn[offsets[sel][:, None] + np.arange(n)]
        buf = _io.StringIO()
        np.savetxt(buf, np.column_stack([nodes, np.asarray(tags)[sel]]), fmt="%d")
        lines[sel] = [f"{_VTK_TO_OPENCARP[int(vtk_type)]} {row}" for row in buf.getvalue().splitlines()]
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(f"{len(types)}\n" + "\n".join(lines.tolist()) + "\n")
