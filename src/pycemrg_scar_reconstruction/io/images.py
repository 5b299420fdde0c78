"""Images: NIfTI, NRRD/MetaImage/DICOM (SimpleITK), VTK slice layers; a stack read and converted.

Every image becomes (values (I, J, K), affine (4, 4) voxel -> world RAS mm), whatever its format.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..config import StackConfig
from ..errors import InputError
from ..geometry import FRAME_TO_RAS, voxel_spacing
from ..stack import RawStack, SliceStack, StackGeometry
from ..targets import resolve_labels, stack_targets
from .paths import atomic_output, full_suffix, require_file
from .vtk_read import quiet_vtk_read

logger = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
VTK_LAYER_SUFFIXES = (".vti", ".vts", ".vtk")


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
        return _checked(*_load_itk(path, what, dicom_series), path, what)
    require_file(path, what)
    if suffix in NIFTI_SUFFIXES:
        return _checked(*_load_nifti(path, what), path, what)
    if suffix in ITK_SUFFIXES:
        return _checked(*_load_itk(path, what, None), path, what)
    if suffix in VTK_LAYER_SUFFIXES:
        try:
            return _checked(*_load_vtk_layer(path, what), path, what)
        except InputError:
            raise
        except Exception as exc:  # VTK readers fail in many ways
            raise InputError(
                f"{path}: cannot read the {what} as a VTK slice layer ({type(exc).__name__}); check the file"
            ) from exc
    raise InputError(
        f"{path}: unknown image extension '{suffix}'; use NIfTI (.nii .nii.gz), NRRD/MetaImage "
        f"({' '.join(ITK_SUFFIXES)}), a DICOM folder, or a VTK slice layer ({' '.join(VTK_LAYER_SUFFIXES)})"
    )


#: Voxel sizes outside this range (mm) are taken as a broken header, not an image.
VOXEL_MM_RANGE = (1e-3, 1e3)


def _checked(values: np.ndarray, affine: np.ndarray, path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Refuse what no stack can be: +-inf pixels and an affine that is not finite, not invertible,
    or has absurd voxel sizes. (NaN pixels are allowed: they mean "no value".)"""
    if np.isinf(values).any():
        raise InputError(
            f"{path}: {what} has {int(np.isinf(values).sum())} infinite pixel values; "
            "replace them (NaN marks pixels without a value)"
        )
    n_nan = int(np.isnan(values).sum())
    if n_nan:
        logger.warning(
            "%s: %d NaN pixels (%.1f%% of the %s) have no value and form no group",
            path,
            n_nan,
            100 * n_nan / values.size,
            what,
        )
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError(f"{path}: the {what}'s affine (voxel -> world) is not finite; repair the header")
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    if sizes.min() < VOXEL_MM_RANGE[0] or sizes.max() > VOXEL_MM_RANGE[1]:
        raise InputError(
            f"{path}: the {what}'s voxel sizes are {np.round(sizes, 6).tolist()} mm; repair the header (pixdim / affine)"
        )
    if abs(np.linalg.det(affine[:3, :3] / sizes)) < 1e-6:
        raise InputError(f"{path}: the {what}'s affine is singular (two axes point the same way); repair the header")
    return values, affine


def _verify_gzip(path: Path) -> None:
    """Read a gzip file to its end, so that a corrupt stream or a wrong checksum is found now."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: the gzip stream is corrupt ({exc}); copy the file again or re-export it") from exc


def _load_nifti(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    if full_suffix(path) == ".nii.gz":
        _verify_gzip(path)
    try:
        img: Any = nib.load(str(path))
        if np.dtype(img.get_data_dtype()).kind == "c":
            raise InputError(f"{path}: {what} has complex values; give the magnitude image")
        values = np.asarray(img.dataobj, dtype=np.float64)
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(f"{path}: cannot read the {what}: permission denied; check the file's permissions") from exc
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
        raise InputError(
            f"{path}: reading this format needs SimpleITK: pip install 'pycemrg-scar-reconstruction[itk]'"
        ) from exc
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # ITK prints warnings to stderr; our errors say it in one line
    try:
        if path.is_dir():
            ids = list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path)))
            if not ids:
                raise InputError(f"{path}: no DICOM series in this folder; give a folder of DICOM slices")
            if dicom_series is None and len(ids) > 1:
                raise InputError(f"{path}: {len(ids)} DICOM series here ({', '.join(ids)}); choose one with `dicom_series`")
            series = dicom_series or ids[0]
            if series not in ids:
                raise InputError(f"{path}: no DICOM series {series}; the folder has {', '.join(ids)}")
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series)
            _warn_left_out(path, {f for i in ids for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), i)})
            img = sitk.ReadImage(files)
        else:
            img = sitk.ReadImage(str(path))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read the {what} with SimpleITK ({type(exc).__name__}); check the file") from exc
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: {what} has {img.GetNumberOfComponentsPerPixel()} components per pixel; give a scalar image"
        )
    if img.GetDimension() != 3:
        raise InputError(f"{path}: {what} is {img.GetDimension()}D; give one 3D stack (I, J, K slices) per file")
    array = sitk.GetArrayFromImage(img)
    if np.iscomplexobj(array):
        raise InputError(f"{path}: {what} has complex values; give the magnitude image")
    values = array.astype(np.float64).transpose(2, 1, 0)  # ITK arrays are (k, j, i)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction @ np.diag(img.GetSpacing())
    affine_lps[:3, 3] = img.GetOrigin()
    return values, LPS_TO_RAS @ affine_lps


def _warn_left_out(folder: Path, in_series: set[str]) -> None:
    """Name the files of a DICOM folder that belong to no series (unreadable, truncated, not DICOM)."""
    seen = {os.path.realpath(f) for f in in_series}
    left = sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and os.path.realpath(p) not in seen
    )
    if left:
        logger.warning(
            "%s: %d file(s) of the folder are in no DICOM series and were left out (%s%s); check them if a slice is missing",
            folder,
            len(left),
            ", ".join(left[:3]),
            ", ..." if len(left) > 3 else "",
        )


def dicom_slice_offsets(path: Path, dicom_series: str | None, geometry: StackGeometry) -> tuple[np.ndarray | None, float]:
    """Per-slice offsets from each DICOM slice's own position (Image Position Patient), relative to
    the one affine ``geometry`` the series was read with: a slice that lies e_k off its place in
    that affine shows mesh point x at x - e_k, i.e. offset d_k = -e_k (mm along i, j and the normal).

    Returns
    -------
    offsets (K, 3) or None when every slice sits where the affine puts it (within 1e-3 mm), and the
    largest deviation in mm. Slices that are not parallel (more than 0.5 degrees) are refused.
    """
    import SimpleITK as sitk

    series = dicom_series or sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series)
    positions, normals = [], []
    reader = sitk.ImageFileReader()
    for name in files:  # one header per slice (a few dozen files), not per pixel
        reader.SetFileName(name)
        reader.ReadImageInformation()
        if not (reader.HasMetaDataKey("0020|0032") and reader.HasMetaDataKey("0020|0037")):
            return None, 0.0
        positions.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
        o = np.array([float(v) for v in reader.GetMetaData("0020|0037").split("\\")])
        normals.append(np.cross(o[:3], o[3:]))
    if len(files) != geometry.n_slices or geometry.axis != 2:
        return None, 0.0
    normals_arr = np.asarray(normals) / np.linalg.norm(normals, axis=1, keepdims=True)
    tilt = np.degrees(np.arccos(np.clip(np.abs(normals_arr @ normals_arr[0]), -1, 1))).max()
    if tilt > 0.5:
        raise InputError(
            f"{path}: the DICOM slices are not parallel (up to {tilt:.1f} degrees apart); per-slice "
            "rotations are not supported: resample the series onto parallel slices"
        )
    ras = np.asarray(positions) * FRAME_TO_RAS["lps"]  # DICOM patient coordinates are LPS
    placed = geometry.affine[:3, :3] @ np.array([[0.0, 0.0, k] for k in range(geometry.n_slices)]).T
    deviation = ras - (placed.T + geometry.affine[:3, 3])
    worst = float(np.linalg.norm(deviation, axis=1).max())
    if worst < 1e-3:
        return None, worst
    return np.linalg.solve(geometry.offset_frame, -deviation.T).T, worst


def _load_vtk_layer(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A 2D slice grid saved as VTK (image data or structured grid, point or cell scalars) as a one-slice stack.

    Coordinates are taken as world RAS mm. The stack's third axis is the slice normal; its column
    length is 1 mm (a single slice has no spacing: give `slice_thickness`).
    """
    mesh = quiet_vtk_read(path, "image")
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


def read_labels_file(path: Path) -> dict[str, int]:
    """A pycemrg-style labels file: YAML with ``labels: {name: value}`` (or the mapping itself)."""
    import yaml

    require_file(Path(path), "labels file")
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a readable YAML labels file ({type(exc).__name__}); write labels: {{name: value}}"
        ) from exc
    table = doc.get("labels", doc) if isinstance(doc, dict) else None
    if not isinstance(table, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in table.values()):
        raise InputError(f"{path}: expected labels: {{name: integer value}}; fix the file")
    return {str(k): int(v) for k, v in table.items()}


def load_stack(config: StackConfig) -> RawStack:
    """Read one stack's image and masks as they are on disk (no conversion to targets).

    The geometry carries the slice thickness and, for a DICOM series, each slice's own position
    where it differs from the one affine. :func:`.targets.stack_targets` makes the targets.
    """
    path = Path(config.path)
    values, affine = load_image(path, "image", config.dicom_series)
    names = read_labels_file(config.labels) if config.labels is not None else None

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
    if config.myocardium_labels is not None:
        mask = np.isin(values, resolve_labels(config.myocardium_labels, names, str(path), "myocardium_labels"))
        if not mask.any():
            raise InputError(f"{path}: no voxel has a `myocardium_labels` value; check the labels")
    if config.slice_thickness is None and full_suffix(path) in VTK_LAYER_SUFFIXES:
        raise InputError(f"{path}: a single VTK slice layer has no slice spacing; give `slice_thickness`")
    thickness = config.slice_thickness or float(voxel_spacing(affine)[config.axis])
    geometry = StackGeometry(affine, values.shape, thickness, config.axis)
    positions = ""
    if path.is_dir():  # a DICOM series: each slice's own position, where it differs from the one affine
        offsets, worst = dicom_slice_offsets(path, config.dicom_series, geometry)
        if offsets is not None:
            geometry = geometry.with_offsets(offsets)
            positions = f"per-slice DICOM positions (up to {worst:.2f} mm from one affine)"
    return RawStack(
        values=values,
        geometry=geometry,
        mask=mask,
        remote=grid_mask(config.remote_mask, "remote mask"),
        blood_pool=grid_mask(config.blood_pool_mask, "blood-pool mask"),
        label_names=names,
        name=str(path),
        positions=positions,
    )


def read_stack(config: StackConfig, tissue: tuple[np.ndarray, np.ndarray] | None = None) -> SliceStack:
    """Read one stack and convert its values to scar targets (``tissue``: the (wall, blood)
    fractions of its prisms, which ``mixture`` needs; :func:`.api.prepare` computes them)."""
    raw = load_stack(config)
    return stack_targets(raw, config.target, raw.geometry, tissue)


def write_nifti(values: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write a 3D float32 NIfTI atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(values, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    with atomic_output(Path(path)) as tmp:
        nib.save(img, str(tmp))
