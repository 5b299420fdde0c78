"""The Python API: orchestrators that read inputs, call the pure core and write outputs.

Each function takes the same pydantic config objects as the CLI (see :mod:`.config`).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np

from .config import MeshConfig, PredictConfig, PrepareConfig, SynthConfig, TrainConfig
from .data import TrainingData, build_training_data
from .errors import InputError
from .geometry import FRAME_TO_RAS, UNIT_TO_MM, bounding_box, inside_stack_volume, stack_corners
from .io import (
    check_mesh_output,
    full_suffix,
    load_model,
    load_training_data,
    read_mesh,
    read_stack,
    save_model,
    save_training_data,
    write_json,
    write_mesh,
    write_nifti,
    write_prediction,
)
from .predict import Prediction, predict_nodes
from .stack import SliceStack
from .synthetic import case_mesh, make_case
from .train import FittedModel, fit

logger = logging.getLogger(__name__)

#: Below this share of mesh nodes inside the stacks' volume, prepare warns of partial overlap.
MIN_OVERLAP_SHARE = 0.5


def synth(config: SynthConfig, output_dir: Path) -> dict[str, Path]:
    """Generate a synthetic case and write ``mesh.vtu``, ``lge.nii.gz``, ``lge_mask.nii.gz``, ``case.json``.

    Returns
    -------
    dict of output name -> path.
    """
    case = make_case(config)
    out = Path(output_dir)
    paths = {
        "mesh": out / "mesh.vtu",
        "image": out / "lge.nii.gz",
        "mask": out / "lge_mask.nii.gz",
        "facts": out / "case.json",
    }
    write_mesh(case_mesh(case), paths["mesh"])
    write_nifti(case.values, case.affine, paths["image"])
    write_nifti(case.mask.astype(np.float32), case.affine, paths["mask"])
    write_json({**case.facts, "target": "probability", "files": {k: p.name for k, p in paths.items()}}, paths["facts"])
    return paths


def _overlap_share(points: np.ndarray, stacks: list[SliceStack]) -> float:
    """Share of nodes inside the volume of at least one stack."""
    inside = np.zeros(len(points), dtype=bool)
    for st in stacks:
        inside |= inside_stack_volume(points, st.affine, st.shape, st.thickness, st.axis)
    return float(inside.mean())


def _no_overlap_message(mesh_cfg: MeshConfig, raw_points: np.ndarray, points: np.ndarray, stacks: list[SliceStack]) -> str:
    """Explain a mesh/stack mismatch: both bounding boxes, and the frame/units that would fit."""
    lo, hi = bounding_box(points)
    corners = np.concatenate([stack_corners(st.affine, st.shape, st.thickness, st.axis) for st in stacks])
    slo, shi = bounding_box(corners)
    fmt = lambda v: "[" + ", ".join(f"{x:.1f}" for x in v) + "]"  # noqa: E731
    msg = (
        f"{mesh_cfg.path}: the mesh does not overlap the image stack(s): mesh box {fmt(lo)}..{fmt(hi)} mm, "
        f"stack box {fmt(slo)}..{fmt(shi)} mm"
    )
    best = None
    for frame, units in itertools.product(FRAME_TO_RAS, UNIT_TO_MM):
        if (frame, units) == (mesh_cfg.frame, mesh_cfg.resolved_units):
            continue
        alt = raw_points * (FRAME_TO_RAS[frame] * UNIT_TO_MM[units])
        share = _overlap_share(alt, stacks)
        if share > 0.5 and (best is None or share > best[0]):
            best = (share, frame, units)
    if best:
        msg += f"; with --mesh-frame {best[1]} --mesh-units {best[2]} {100 * best[0]:.0f}% of the mesh overlaps: use those"
    else:
        msg += "; check that mesh and image belong to the same patient and scan session"
    return msg


def prepare(config: PrepareConfig, output: Path | None = None) -> TrainingData:
    """Map the mesh nodes into the prisms of every stack's pixels and group them.

    Parameters
    ----------
    config : the mesh and stacks.
    output : where to write the training data (``.npz``); nothing is written when None.

    Raises
    ------
    InputError
        On unreadable inputs, no overlap between mesh and stacks (with the fix), or zero groups.
    """
    _, points = read_mesh(config.mesh)
    stacks = [read_stack(sc) for sc in config.stacks]
    share = _overlap_share(points, stacks)
    if share == 0.0:
        raw = points / (FRAME_TO_RAS[config.mesh.frame] * UNIT_TO_MM[config.mesh.resolved_units])
        raise InputError(_no_overlap_message(config.mesh, raw, points, stacks))
    if share < MIN_OVERLAP_SHARE:
        logger.warning(
            "%s: only %.0f%% of the mesh lies within the image stack(s); check --mesh-frame/--mesh-units",
            config.mesh.path, 100 * share,
        )
    data = build_training_data(points, stacks)
    if data.n_groups == 0:
        names = ", ".join(str(sc.path) for sc in config.stacks)
        raise InputError(f"{names}: no pixel prism holds a mesh node with a valid target; check --mask and --slice-thickness")
    if output is not None:
        save_training_data(data, Path(output))
    return data


def train(data: TrainingData | Path, config: TrainConfig, output: Path | None = None) -> FittedModel:
    """Fit the network to training data (a :class:`TrainingData` or a ``.npz`` path).

    Writes the checkpoint (and ``<stem>.history.json``) when ``output`` is given.
    """
    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    fitted = fit(data, config)
    if output is not None:
        save_model(fitted, Path(output))
    return fitted


def predict(model: FittedModel | Path, mesh: MeshConfig, output: Path | None, config: PredictConfig = PredictConfig()) -> Prediction:
    """Predict scar probability and uncertainty on a mesh; write a copy of it with the point arrays.

    Output arrays: ``scar_probability``, ``scar_uncertainty``, ``scar_supervised`` and, with a
    threshold, ``scar_binary``.
    """
    fitted = model if isinstance(model, FittedModel) else load_model(Path(model))
    if output is not None:
        check_mesh_output(Path(output))
    mesh_obj, points = read_mesh(mesh)
    result = predict_nodes(fitted, points, config.mc_samples, config.seed, config.device, config.memory_mb)
    if output is not None:
        write_prediction(mesh_obj, result.point_arrays(config.threshold), Path(output))
    return result


def output_paths(output: Path) -> dict[str, Path]:
    """Where ``reconstruct`` puts the training data and model beside the output mesh."""
    output = Path(output)
    stem = output.name[: -len(full_suffix(output))] if full_suffix(output) else output.name
    return {"mesh": output, "data": output.with_name(f"{stem}_data.npz"), "model": output.with_name(f"{stem}_model.pt")}


def reconstruct(prepare_config: PrepareConfig, train_config: TrainConfig, output: Path,
                predict_config: PredictConfig = PredictConfig()) -> Prediction:
    """The whole patient: prepare, train and predict; data and model are saved beside ``output``."""
    paths = output_paths(output)
    check_mesh_output(paths["mesh"])
    data = prepare(prepare_config, output=paths["data"])
    fitted = train(data, train_config, output=paths["model"])
    return predict(fitted, prepare_config.mesh, paths["mesh"], predict_config)
