"""``predict``: scar probability and uncertainty on a mesh, written into a copy of it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import MeshConfig, PredictConfig, RuntimeConfig
from ..errors import InputError
from ..io.meshes import check_mesh_output, check_opencarp_cells, prediction_mesh, read_mesh, region_nodes, write_prediction
from ..io.paths import full_suffix, refuse_overwrite
from ._common import burden, element_outputs, elements, load_fitted, mesh_size_hint

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
    supervised: np.ndarray | None = None,
    defer_write: bool = False,
) -> Prediction:
    """Predict scar probability and uncertainty on a mesh; write a copy of it with the point arrays.

    Output arrays: ``scar_probability``, ``scar_uncertainty``, ``scar_supervised`` and, with a
    threshold, ``scar_binary``. ``mesh_read``: ``read_mesh(mesh)`` when the caller has it already
    (``run`` reads the mesh once); ``supervised``: (N,) bool, the nodes in a training group's prism
    within the region, when the caller has them (``run``: its training data's
    :meth:`~.data.TrainingData.supervised`). The result's ``mesh`` is the mesh written (VTK
    outputs); with ``defer_write`` a VTK output is only built, and the caller writes ``mesh`` to
    ``output`` (:func:`~.io.meshes.write_mesh`; ``run`` writes it while the report draws).
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
    if supervised is None:  # once: the mismatch check and the prediction both need it
        supervised = supervised_nodes(fitted, points)
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
    cells = elements(mesh_obj, result.probability)  # once, for the burden and the element outputs
    result = dataclasses.replace(result, burden=burden(mesh_obj, cells, config, mesh, region))
    if output is None:
        return result
    arrays = {
        "point_arrays": result.point_arrays(config.threshold),
        "source": mesh,
        "field_arrays": {
            "scar_support_mm": np.array([result.support_mm]),
            "scar_prior": np.array([result.prior]),
            **{f"scar_{k}": np.array([v]) for k, v in (result.burden or {}).items()},
        },
        "output_units": config.output_units,
        **element_outputs(mesh_obj, cells, config, mesh),
    }
    if defer_write and full_suffix(Path(output)) != ".pts":
        arrays.pop("element_tags")  # openCARP's alone
        return dataclasses.replace(result, mesh=prediction_mesh(mesh_obj, **arrays))
    return dataclasses.replace(result, mesh=write_prediction(mesh_obj, path=Path(output), **arrays))
