"""``report``: the pictures, ``report.json`` and ``report.html`` of a reconstruction."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import MeshConfig, ValidateConfig
from ..data import TrainingData
from ..data_layout import stack_arrays
from ..errors import InputError
from ..io.artifacts import load_training_data
from ..io.meshes import read_mesh
from ..io.paths import atomic_output, check_output_dir, stem, write_json
from ..stack import main_slice_normal
from ._common import load_fitted
from .crossval import HELDOUT_NEEDS_MODEL, heldout_summary, model_crossval
from .validate import validate

if TYPE_CHECKING:  # torch-backed types: imported when a model is used, not with the API
    from ..fitted import FittedModel


def slice_offsets_mm(data: TrainingData, measured: bool = False) -> dict[str, list[list[float]]]:
    """``report.json``'s ``slice_offsets_mm`` (the applied offsets) or, with ``measured``,
    ``measured_offsets_mm`` (empty when not measured): each stack's file name without extensions ->
    one ``[di, dj, dn]`` (mm) per slice."""
    arrays = data.measured_offsets if measured else stack_arrays(data.stacks)["stack_slice_offsets"]
    if arrays is None:
        return {}
    return {stem(Path(str(name))): np.round(o, 3).tolist() for name, o in zip(data.stack_names, data.per_stack(arrays))}


def support_summary(mesh_obj: object) -> dict | None:
    """The support rule's figures of a reconstruction (cutoff, prior, share of region nodes given
    the prior, share of nodes in the region), or None when the mesh has no support arrays."""
    point_data, field_data = mesh_obj.point_data, mesh_obj.field_data  # type: ignore[attr-defined]
    if not ("scar_distance_mm" in point_data and "scar_support_mm" in field_data):
        return None
    support = float(np.asarray(field_data["scar_support_mm"]).ravel()[0])
    distance = np.asarray(point_data["scar_distance_mm"], dtype=np.float64)
    in_region = np.asarray(point_data.get("scar_in_region", np.ones(len(distance))), bool)
    # results written before the coverage rule have no scar_prior: the distance alone decided
    given = np.asarray(point_data["scar_prior"], bool) if "scar_prior" in point_data else distance > support
    return {
        "support_mm": support,
        "prior": float(np.asarray(field_data["scar_prior"]).ravel()[0]),
        "prior_share": float(np.mean(given[in_region])) if in_region.any() else 0.0,
        "region_share": float(in_region.mean()),
    }


#: The figures of :func:`~..regions.scar_burden`, kept in the output mesh's field data as ``scar_<name>``.
BURDEN_KEYS = (
    "myocardium_ml",
    "border_zone_ml",
    "core_ml",
    "expected_ml",
    "border_zone_share",
    "core_share",
    "expected_share",
)


def burden_summary(mesh_obj: object) -> dict[str, float] | None:
    """The scar burden ``predict`` kept in a reconstruction's field data, or None (a mesh without
    volume cells, or written before 2026-12-05)."""
    field_data = mesh_obj.field_data  # type: ignore[attr-defined]
    if not all(f"scar_{k}" in field_data for k in BURDEN_KEYS):
        return None
    return {k: float(np.asarray(field_data[f"scar_{k}"]).ravel()[0]) for k in BURDEN_KEYS}


def report(
    output_dir: Path,
    data: TrainingData | Path,
    mesh: MeshConfig,
    model: FittedModel | Path | None = None,
    config: ValidateConfig = ValidateConfig(),
    command: str | None = None,
    heldout: dict | None = None,
    stage_seconds: dict[str, float] | None = None,
    data_path: Path | None = None,
    mesh_obj: Any = None,
) -> dict:
    """Write ``slices.png``, ``mesh.png``, ``training.png`` (with a model), ``calibration.png``
    (with held-out figures), ``report.json`` and ``report.html`` (all of it on one self-contained page).

    ``mesh`` is a reconstruction (with ``scar_probability``); the group check reads it
    (``mesh_obj``: the same mesh as read or as written, when the caller has it).
    ``command`` (the command line that made the result) is recorded when given; ``stage_seconds``
    (``run``'s wall time per stage) too, with this report's own time up to ``report.json`` added.
    Prepare's pictures beside the training data (``data`` when it is a path, else ``data_path``)
    join the page: the study registration's when it was applied or warned about, the breath-hold
    alignment's when offsets were measured.
    """
    from ..figures import plot_calibration, plot_mesh, plot_slices, plot_training
    from ..report_page import report_page, versions

    start = time.perf_counter()
    out = Path(output_dir)
    check_output_dir(out, "report folder")
    if not isinstance(data, TrainingData):
        data_path = Path(data)
        data = load_training_data(data_path)
    if config.heldout and model is None and heldout is None:
        raise InputError(HELDOUT_NEEDS_MODEL)
    if mesh_obj is None:
        mesh_obj = read_mesh(mesh)[0]
    result = validate(data, config.model_copy(update={"heldout": False}), mesh=mesh, mesh_obj=mesh_obj)
    if config.heldout and heldout is None:
        heldout = model_crossval(data, model, config.mc_samples, config.mc_seed)
    result["slice_offsets_mm"] = slice_offsets_mm(data)
    if data.measured_offsets is not None:
        result["measured_offsets_mm"] = slice_offsets_mm(data, measured=True)
    if data.registration is not None:
        registration = json.loads(data.registration)
        result["study_to_mesh"] = registration.pop("study_to_mesh")
        result["registration"] = registration
    result["stacks"] = [
        {"name": str(name), "thickness_mm": g.thickness, "targets": json.loads(str(mapping))}
        for name, g, mapping in zip(data.stack_names, data.stacks, data.stack_mapping)
    ]
    support = support_summary(mesh_obj)
    if support is not None:
        result["support"] = support
    burden = burden_summary(mesh_obj)
    if burden is not None:
        result["burden"] = burden
    plot_slices(data, np.asarray(mesh_obj.point_data["scar_probability"]), out / "slices.png")
    # seen along the main stack's normal (the long axis, for a short-axis stack), as prepare takes it
    several = max(st.n_slices for st in data.stacks) > 1
    plot_mesh(mesh_obj, out / "mesh.png", axis=main_slice_normal(data.stacks) if several else None)
    if model is not None:
        fitted = load_fitted(model)
        plot_training(fitted.history, out / "training.png", fitted.best_epoch)
        result["training"] = {
            "epochs": len(fitted.history),
            "best_epoch": fitted.best_epoch,
            "stop_reason": fitted.stop_reason,
            "seconds": fitted.seconds,
            # the thread count changes float rounding, and with it where training can stop
            **({"threads": fitted.threads, "device": fitted.device} if fitted.threads else {}),
        }
    if command:
        result["command"] = command
    if heldout is not None:  # a cross-validation's figures (see :func:`.crossval.crossval`)
        result["heldout"] = heldout_summary(heldout)
    result["versions"] = versions()
    if stage_seconds is not None:
        result["stage_seconds"] = {**stage_seconds, "report": round(time.perf_counter() - start, 3)}
    write_json(result, out / "report.json")
    pictures = {
        "Slices: input pixels, reconstruction's group means, difference": out / "slices.png",
        "Mesh: scar probability and uncertainty": out / "mesh.png",
    }
    if model is not None:
        pictures["Training: group loss per epoch"] = out / "training.png"
    if data_path is not None:  # prepare's pictures of this training data, when it drew them
        from .prepare import alignment_picture_path, registration_drawn, registration_picture_path

        registration = json.loads(data.registration) if data.registration is not None else None
        picture = registration_picture_path(data_path)
        if registration is not None and registration_drawn(registration) and picture.exists():
            verb = "applied" if registration["applied"] else "measured, not applied"
            pictures[f"Study registration ({verb}): each masked slice over the mesh's wall, before and after"] = picture
        picture = alignment_picture_path(data_path)
        if data.measured_offsets is not None and picture.exists():
            pictures["Breath-hold alignment: each slice's mask over the mesh, before and after"] = picture
    if heldout is not None and heldout.get("calibration"):
        plot_calibration(heldout["calibration"], out / "calibration.png")
        pictures["Uncertainty calibration on the held-out pixels"] = out / "calibration.png"
    page = report_page(result, pictures, f"Scar reconstruction: {mesh.path}")
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page)
    return result
