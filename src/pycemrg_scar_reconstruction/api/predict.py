"""``predict``: scar probability and uncertainty on a mesh, written into a copy of it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import MeshConfig, PredictConfig, RuntimeConfig
from ..errors import InputError
from ..io.meshes import check_mesh_output, check_opencarp_cells, read_mesh, region_nodes, write_prediction
from ..io.paths import refuse_overwrite
from ._common import element_outputs, load_fitted, mesh_size_hint

if TYPE_CHECKING:  # torch-backed types: imported when a model is used, not with the API
    from ..fitted import FittedModel
    from ..prediction import Prediction


def predict(
    model: FittedModel | Path,
    mesh: MeshConfig,
    output: Path | None,
    config: PredictConfig = PredictConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
    mesh_read: tuple[Any, np.ndarray] | None = None,
) -> Prediction:
    """Predict scar probability and uncertainty on a mesh; write a copy of it with the point arrays.

    Output arrays: ``scar_probability``, ``scar_uncertainty``, ``scar_supervised`` and, with a
    threshold, ``scar_binary``. ``mesh_read``: ``read_mesh(mesh)`` when the caller has it already
    (``run`` reads the mesh once). The result's ``mesh`` is the mesh written (VTK outputs).
    """
    from ..device import torch_threads
    from ..prediction import mesh_mismatch, predict_nodes, supervised_nodes

    if output is not None:
        read = [("mesh", Path(mesh.path))] + ([("model", Path(model))] if isinstance(model, (str, Path)) else [])
        refuse_overwrite([("output mesh", Path(output))], read)
    fitted = load_fitted(model)
    if output is not None:
        check_mesh_output(Path(output), mesh_size_hint(mesh))
    mesh_obj, points = read_mesh(mesh) if mesh_read is None else mesh_read
    if output is not None:
        check_opencarp_cells(mesh_obj, Path(output), Path(mesh.path))
    region = region_nodes(mesh_obj, mesh)
    supervised = supervised_nodes(fitted, points)  # once: the mismatch check and the prediction both need it
    judged = slice(None) if region is None else region
    mismatch = mesh_mismatch(fitted, points[judged], supervised[judged])
    if mismatch and not config.allow_extrapolation:
        raise InputError(
            f"{mesh.path}: {mismatch} (another patient's mesh, or a wrong `mesh_frame`/`mesh_units`?); "
            "give the mesh the model was trained on, or set `allow_extrapolation`"
        )
    with torch_threads(runtime):
        result = predict_nodes(
            fitted,
            points,
            config.mc_samples,
            config.mc_seed,
            runtime.device,
            runtime.memory_mb,
            config.support_mm,
            config.prior,
            region,
            supervised=supervised,
        )
    if not (np.all(np.isfinite(result.probability)) and np.all(np.isfinite(result.uncertainty))):
        raise InputError(f"{mesh.path}: the prediction is not finite; re-train the model (its weights may be broken)")
    if output is not None:
        written = write_prediction(
            mesh_obj,
            result.point_arrays(config.threshold),
            Path(output),
            source=mesh,
            field_arrays={"scar_support_mm": np.array([result.support_mm]), "scar_prior": np.array([result.prior])},
            output_units=config.output_units,
            **element_outputs(mesh_obj, result.probability, config, mesh),
        )
        result = dataclasses.replace(result, mesh=written)
    return result
