"""``validate``: the group constraints of a reconstruction, its truth and held-out figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import MeshConfig, PredictConfig, ValidateConfig
from ..data import TrainingData
from ..errors import InputError
from ..io.artifacts import load_training_data
from ..io.meshes import read_mesh
from ..metrics import group_report, truth_report
from ._common import burden, elements, load_fitted
from .crossval import HELDOUT_NEEDS_MODEL, heldout_summary, model_crossval

if TYPE_CHECKING:  # torch-backed types: imported when a model is used, not with the API
    from ..fitted import FittedModel


def mesh_field(mesh: Any, field: str, path: Path, n_nodes: int) -> np.ndarray:
    """A point array of a mesh, checked to exist and to match the training data's node count."""
    if field not in mesh.point_data:
        names = ", ".join(mesh.point_data.keys()) or "none"
        raise InputError(f"{path}: no point array '{field}' (it has: {names}); name an existing array")
    values = np.asarray(mesh.point_data[field], dtype=np.float64)
    if values.shape != (n_nodes,):
        raise InputError(
            f"{path}: '{field}' has {values.shape[0]} values, the training data {n_nodes} nodes; "
            "use the mesh the training data was prepared from"
        )
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise InputError(f"{path}: '{field}' has {bad} NaN or infinite values of {n_nodes}; re-run predict")
    return values


def validate(
    data: TrainingData | Path,
    config: ValidateConfig = ValidateConfig(),
    model: FittedModel | Path | None = None,
    mesh: MeshConfig | None = None,
    mesh_obj: Any = None,
) -> dict:
    """Check the group constraints of a reconstruction (a model, or a mesh with ``scar_probability``).

    With ``model`` the nodes of the training data are predicted with MC dropout; otherwise the
    mesh's ``scar_probability`` (and ``scar_uncertainty`` when present) is read. ``config.truth``
    names a point array of ``mesh`` with a ground truth and adds Dice, MAE and the uncertainty's
    rank correlation with the error. ``mesh_obj`` is the mesh already read, if it was.

    Returns
    -------
    The report (see :func:`..metrics.group_report`), with ``truth`` when asked and
    ``misregistration_mm`` when the data's offsets were measured.
    """
    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    if model is None and mesh is None:
        raise InputError("validate needs `model` (a checkpoint) or `mesh` (a mesh with scar_probability)")
    if config.truth and mesh is None:
        raise InputError(f"`truth` {config.truth} needs `mesh`, the mesh that holds that point array")
    if config.heldout and model is None:
        raise InputError(HELDOUT_NEEDS_MODEL)
    if mesh is not None and mesh_obj is None:
        mesh_obj = read_mesh(mesh)[0]
    uncertainty = None
    if model is not None:
        from ..prediction import predict_nodes

        result = predict_nodes(load_fitted(model), data.points, config.mc_samples, config.mc_seed)
        values, uncertainty = result.probability, result.uncertainty
    else:
        assert mesh is not None
        values = mesh_field(mesh_obj, "scar_probability", mesh.path, data.n_nodes)
        if "scar_uncertainty" in mesh_obj.point_data:
            uncertainty = mesh_field(mesh_obj, "scar_uncertainty", mesh.path, data.n_nodes)
    report = group_report(data, values, config.tolerance, config.min_share)
    if data.misregistration_mm() is not None:
        report["misregistration_mm"] = data.misregistration_mm()
    if config.truth:
        assert mesh is not None
        truth = mesh_field(mesh_obj, config.truth, mesh.path, data.n_nodes)
        # with a region, its nodes only: nodes set to 0 outside it are no evidence either way
        region = np.asarray(mesh_obj.point_data["scar_in_region"], bool) if "scar_in_region" in mesh_obj.point_data else None
        if not (region is not None and region.shape == (data.n_nodes,) and region.any() and not region.all()):
            region = None
        # the scar volume against the truth's, summed as predict sums it (before the region's subset)
        volumes = [burden(mesh_obj, elements(mesh_obj, v), PredictConfig(), mesh, region) for v in (values, truth)]
        if region is not None:
            values, truth = values[region], truth[region]
            uncertainty = None if uncertainty is None else uncertainty[region]
        report["truth"] = truth_report(values, truth, uncertainty)
        found, true = volumes
        if found is not None and true is not None:
            report["truth"]["volume_ml"] = {
                "myocardium": found["myocardium_ml"],
                "core": found["core_ml"],
                "truth_core": true["core_ml"],
                "expected": found["expected_ml"],
                "truth_expected": true["expected_ml"],
            }
    if config.heldout:
        report["heldout"] = heldout_summary(model_crossval(data, model, config.mc_samples, config.mc_seed))
    return report
