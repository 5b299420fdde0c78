"""The Python API: orchestrators that read inputs, call the pure core and write outputs.

Each function takes the same pydantic config objects as the CLI (see :mod:`.config`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .alignment import Alignment, estimate_offsets
from .config import (
    CrossvalConfig,
    MeshConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    ValidateConfig,
)
from .data import MISREGISTRATION_WARN_MM, TrainingData, build_training_data, stack_arrays
from .errors import InputError, Interrupted
from .forward import frame_search, overlap_share
from .geometry import bounding_box
from .io.artifacts import (
    check_data_output,
    check_model_output,
    load_model,
    load_training_data,
    save_model,
    save_training_data,
)
from .io.images import OffsetsOf, TissueOf, read_stack, write_nifti
from .io.meshes import (
    check_mesh_output,
    check_opencarp_cells,
    mesh_cells,
    myocardium_test,
    read_mesh,
    region_nodes,
    write_mesh,
    write_prediction,
)
from .io.paths import atomic_output, check_output, check_output_dir, full_suffix, stem, write_json
from .metrics import group_report, truth_report
from .progress import Ticker
from .regions import cell_mean, classify, element_tags
from .stack import StackGeometry
from .synthetic import case_mesh, make_case
from .tissue import tissue_fractions

if TYPE_CHECKING:  # torch-backed types: imported when a model is trained or used, not with the API
    from .fitted import FittedModel
    from .prediction import Prediction

logger = logging.getLogger(__name__)

#: Below this share of mesh nodes inside the stacks' volume, prepare warns of partial overlap.
MIN_OVERLAP_SHARE = 0.5


def synth(config: SynthConfig, output_dir: Path) -> dict[str, Path]:
    """Generate a synthetic case and write ``mesh.vtu``, ``lge.nii.gz``, ``lge_mask.nii.gz``, ``case.json``
    (and ``lge_la<v>.nii.gz`` with its mask per long-axis view).

    With ``intensity`` the stacks are LGE-like signal with a segmentation-like mask, and each stack
    also gets ``<stack>_probability.nii.gz`` (+ ``_probability_mask``: the same case as
    probabilities), ``<stack>_blood_mask.nii.gz`` and ``<stack>_remote_mask.nii.gz`` (reference
    masks for the clinical normalisations).

    Returns
    -------
    dict of output name -> path.
    """
    out = Path(output_dir)
    check_output_dir(out)
    case = make_case(config)
    paths = {"mesh": out / "mesh.vtu", "facts": out / "case.json"}
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # path key -> (values, affine)
    stacks = [("", case.stack)] + [(f"_la{v + 1}", la) for v, la in enumerate(case.long_axis)]
    for i, (key, stack) in enumerate(stacks):
        affine = stack.geometry.affine
        images[f"image{key}"] = (stack.values, affine)
        images[f"mask{key}"] = (np.asarray(stack.mask, dtype=np.float32), affine)
        if case.probability:
            prob = case.probability[i]
            images[f"probability{key}"] = (prob.values, affine)
            images[f"probability_mask{key}"] = (np.asarray(prob.mask, dtype=np.float32), affine)
            images[f"blood_mask{key}"] = (case.blood_pool[i].astype(np.float32), affine)
            images[f"remote_mask{key}"] = (case.remote[i].astype(np.float32), affine)
    for name in images:
        kind, _, view = name.partition("_la")
        base = "lge" + (f"_la{view}" if view else "")
        paths[name] = out / (f"{base}.nii.gz" if kind == "image" else f"{base}_{kind}.nii.gz")
    write_mesh(case_mesh(case), paths["mesh"])
    for name, (values, affine) in images.items():
        write_nifti(values, affine, paths[name])
    facts = {"target": "probability", **case.facts, "files": {k: p.name for k, p in paths.items()}}
    write_json(facts, paths["facts"])
    return paths


def _no_overlap_message(
    mesh_cfg: MeshConfig, raw_points: np.ndarray, points: np.ndarray, geometries: list[StackGeometry]
) -> str:
    """Explain a mesh/stack mismatch: both bounding boxes, and the frame/units that would fit."""
    lo, hi = bounding_box(points)
    slo, shi = bounding_box(np.concatenate([g.corners() for g in geometries]))
    fmt = lambda v: "[" + ", ".join(f"{x:.1f}" for x in v) + "]"  # noqa: E731
    msg = (
        f"{mesh_cfg.path}: the mesh does not overlap the image stack(s): mesh box {fmt(lo)}..{fmt(hi)} mm, "
        f"stack box {fmt(slo)}..{fmt(shi)} mm"
    )
    best = frame_search(raw_points, geometries, (mesh_cfg.frame, mesh_cfg.resolved_units))
    if best:
        msg += f"; with `mesh_frame` {best[1]} `mesh_units` {best[2]} {100 * best[0]:.0f}% of the mesh overlaps: use those"
    else:
        msg += "; check that mesh and image belong to the same patient and scan session"
    return msg


def _require_overlap(mesh_obj: Any, points: np.ndarray, mesh: MeshConfig, geometry: StackGeometry) -> None:
    """Refuse a stack that no mesh node lies in, with the explanation (before work that needs both)."""
    if overlap_share(points, [geometry]) == 0.0:
        raw = np.asarray(mesh_obj.points, dtype=np.float64)
        raise InputError(_no_overlap_message(mesh, raw, points, [geometry]))


def _tissue_of(mesh_obj: Any, points: np.ndarray, mesh: MeshConfig, stack: StackConfig) -> TissueOf | None:
    """The (wall, blood) fractions of a stack's prisms from the mesh, for the ``mixture`` normalisation."""
    if not (stack.target.kind == "intensity" and stack.target.normalise == "mixture"):
        return None
    inside = myocardium_test(mesh_obj, mesh)
    box = bounding_box(points)

    def tissue(geometry: StackGeometry) -> tuple[np.ndarray, np.ndarray]:
        _require_overlap(mesh_obj, points, mesh, geometry)
        return tissue_fractions(inside, geometry, box)

    return tissue


def _offsets_of(
    mesh_obj: Any,
    points: np.ndarray,
    config: PrepareConfig,
    region: np.ndarray | None,
    found: dict[str, Alignment],
) -> OffsetsOf | None:
    """Per-slice breath-hold offsets of a stack from its mask against the mesh
    (``align_slices``); each stack's :class:`.alignment.Alignment` is kept in ``found`` by stack name.
    With ``measure_offsets`` alone they are measured and kept in ``found`` but not applied."""
    if not (config.align_slices or config.measure_offsets):
        return None
    option = "`align_slices`" if config.align_slices else "`measure_offsets`"
    inside = myocardium_test(mesh_obj, config.mesh, region, why=option, instead=f"leave out {option}")

    def offsets(geometry: StackGeometry, mask: np.ndarray | None, name: str) -> np.ndarray | None:
        if mask is None:
            logger.warning(
                "%s: no myocardium mask, so its slices' offsets are not estimated (%s needs `mask` or `myocardium_labels`)",
                name,
                option,
            )
            return None
        _require_overlap(mesh_obj, points, config.mesh, geometry)
        result = estimate_offsets(inside, geometry, mask, config.align_max_inplane_mm, config.align_max_normal_mm)
        found[name] = result
        if not config.align_slices:
            return geometry.slice_offsets
        if result.at_bound.any():
            logger.warning(
                "%s: slice(s) %s reached the edge of the alignment search; the true offset may be larger "
                "(raise `align_max_inplane_mm` / `align_max_normal_mm` and compare the alignment picture)",
                name,
                ", ".join(str(int(k)) for k in np.flatnonzero(result.at_bound)),
            )
        return result.offsets

    return offsets


def _warn_misregistration(data: TrainingData, config: PrepareConfig) -> None:
    """Warn when offsets measured but not applied (``measure_offsets`` alone) are large."""
    rms = data.misregistration_mm()
    if rms is not None and rms > MISREGISTRATION_WARN_MM:
        logger.warning(
            "%s: the slices' masks sit %.1f mm (RMS) off the mesh's myocardium, a breath-hold misregistration "
            "left in the memberships; `align_slices` corrects it",
            ", ".join(str(sc.path) for sc in config.stacks),
            rms,
        )


def slice_offsets_mm(data: TrainingData, measured: bool = False) -> dict[str, list[list[float]]]:
    """``report.json``'s ``slice_offsets_mm`` (the applied offsets) or, with ``measured``,
    ``measured_offsets_mm`` (empty when not measured): each stack's file name without extensions ->
    one ``[di, dj, dn]`` (mm) per slice."""
    arrays = data.measured_offsets if measured else stack_arrays(data.stacks)["stack_slice_offsets"]
    if arrays is None:
        return {}
    return {stem(Path(str(name))): np.round(o, 3).tolist() for name, o in zip(data.stack_names, data.per_stack(arrays))}


def alignment_picture_path(output: Path) -> Path:
    """Where ``prepare`` puts the alignment picture beside its training data: ``<stem>_alignment.png``."""
    return Path(output).with_name(f"{stem(Path(output))}_alignment.png")


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
    if output is not None:
        check_data_output(Path(output))
        if config.align_slices:
            check_output(alignment_picture_path(Path(output)), "alignment picture")
    ticker = Ticker()
    mesh_obj, points = read_mesh(config.mesh)
    ticker.tick("prepare: read %s (%d nodes) in %.1f s", config.mesh.path, len(points), ticker.elapsed)
    region = region_nodes(mesh_obj, config.mesh)
    alignments: dict[str, Alignment] = {}
    offsets_of = _offsets_of(mesh_obj, points, config, region, alignments)
    stacks = [read_stack(sc, _tissue_of(mesh_obj, points, config.mesh, sc), offsets_of) for sc in config.stacks]
    share = overlap_share(points, [st.geometry for st in stacks])
    if share == 0.0:
        raw = np.asarray(mesh_obj.points, dtype=np.float64)  # the mesh's own frame and units
        raise InputError(_no_overlap_message(config.mesh, raw, points, [st.geometry for st in stacks]))
    if share < MIN_OVERLAP_SHARE:
        logger.warning(
            "%s: only %.0f%% of the mesh lies within the image stack(s); check `mesh_frame`/`mesh_units`",
            config.mesh.path,
            100 * share,
        )
    ticker.tick("prepare: read %d stack(s) at %.1f s", len(stacks), ticker.elapsed)
    data = build_training_data(points, stacks, region)
    if alignments:
        measured = [
            st.geometry.with_offsets(alignments[st.name].offsets) if st.name in alignments else st.geometry for st in stacks
        ]
        data = replace(data, measured_offsets=stack_arrays(measured)["stack_slice_offsets"])
        _warn_misregistration(data, config)
    ticker.tick("prepare: %d groups, %d memberships at %.1f s", data.n_groups, data.n_members, ticker.elapsed)
    if data.n_groups == 0:
        names = ", ".join(str(sc.path) for sc in config.stacks)
        raise InputError(
            f"{names}: no pixel prism holds a mesh node with a valid target; check `mask` and `slice_thickness`"
        )
    if output is not None:
        save_training_data(data, Path(output))
        if alignments and config.align_slices:
            from .figures import plot_alignment

            stacks_by_name = {st.name: st for st in stacks}
            plot_alignment({n: (stacks_by_name[n], a) for n, a in alignments.items()}, alignment_picture_path(output))
    return data


def train(
    data: TrainingData | Path, config: TrainConfig, output: Path | None = None, runtime: RuntimeConfig = RuntimeConfig()
) -> FittedModel:
    """Fit the network to training data (a :class:`TrainingData` or a ``.npz`` path).

    Writes the checkpoint (and ``<stem>.history.json``) when ``output`` is given. Torch's CPU
    thread count follows ``runtime`` during the fit and is restored after.
    """
    from .device import torch_threads
    from .training import fit

    if output is not None:
        check_model_output(Path(output))  # before hours of work
    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    try:
        with torch_threads(runtime):
            fitted = fit(data, config, runtime)
    except Interrupted as exc:  # keep the best epoch so far, then stop
        if output is None or exc.partial is None:
            raise
        save_model(exc.partial, Path(output))  # type: ignore[arg-type]
        best = exc.partial.best_epoch  # type: ignore[attr-defined]
        raise Interrupted(f"{exc}; best model (epoch {best}) saved to {output}", exc.cause, exc.partial) from None
    if output is not None:
        save_model(fitted, Path(output))
    return fitted


def crossval(
    data: TrainingData | Path,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    folds: CrossvalConfig = CrossvalConfig(),
    mc_samples: int = 20,
    mc_seed: int = 0,
    fitted: FittedModel | None = None,
) -> dict:
    """Held-out accuracy of a patient's reconstruction from its own data (see :mod:`.heldout`):
    leave out whole slices (or views), train on the rest, score the left-out pixels.

    With ``folds.simulate`` the result also has ``simulated`` (:func:`.heldout.simulated_accuracy`),
    for ``fitted`` (the model trained on all the data; trained here when not given).
    """
    from .device import torch_threads
    from .heldout import crossval as run_folds
    from .heldout import simulated_accuracy
    from .training import fit

    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    with torch_threads(runtime):
        result = run_folds(data, config, runtime, folds.folds, folds.holdout, mc_samples, mc_seed, folds.workers)
        if folds.simulate:
            fitted = fitted if fitted is not None else fit(data, config, runtime, progress=False)
            result["simulated"] = simulated_accuracy(data, fitted, config, runtime, mc_samples, mc_seed)
    return result


#: The figures of a cross-validation that go into report.json (``heldout``).
HELDOUT_KEYS = (
    "holdout",
    "folds",
    "pixels",
    "holdout_dice",
    "holdout_mae",
    "holdout_rmse",
    "interior",
    "end",
    "simulated",
    "baseline_dice",
    "baseline_mae",
    "baseline_pixels",
    "calibration",
)


HELDOUT_NEEDS_MODEL = "`heldout` needs `model`: the folds are trained with the model's own settings"


def heldout_summary(result: dict) -> dict:
    """The figures of a :func:`crossval` result that reports show (no per-fold rows)."""
    return {k: result[k] for k in HELDOUT_KEYS if k in result}


def _load_fitted(model: FittedModel | Path) -> FittedModel:
    from .fitted import FittedModel

    return model if isinstance(model, FittedModel) else load_model(Path(model))


def predict(
    model: FittedModel | Path,
    mesh: MeshConfig,
    output: Path | None,
    config: PredictConfig = PredictConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
) -> Prediction:
    """Predict scar probability and uncertainty on a mesh; write a copy of it with the point arrays.

    Output arrays: ``scar_probability``, ``scar_uncertainty``, ``scar_supervised`` and, with a
    threshold, ``scar_binary``.
    """
    from .device import torch_threads
    from .prediction import mesh_mismatch, predict_nodes

    fitted = _load_fitted(model)
    if output is not None:
        check_mesh_output(Path(output), _mesh_size_hint(mesh))
    mesh_obj, points = read_mesh(mesh)
    if output is not None:
        check_opencarp_cells(mesh_obj, Path(output))
    region = region_nodes(mesh_obj, mesh)
    mismatch = mesh_mismatch(fitted, points if region is None else points[region])
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
        )
    if not (np.all(np.isfinite(result.probability)) and np.all(np.isfinite(result.uncertainty))):
        raise InputError(f"{mesh.path}: the prediction is not finite; re-train the model (its weights may be broken)")
    if output is not None:
        write_prediction(
            mesh_obj,
            result.point_arrays(config.threshold),
            Path(output),
            source=mesh,
            field_arrays={"scar_support_mm": np.array([result.support_mm]), "scar_prior": np.array([result.prior])},
            output_units=config.output_units,
            **_element_outputs(mesh_obj, result.probability, config, mesh),
        )
    return result


def _element_outputs(mesh_obj: Any, probability: np.ndarray, config: PredictConfig, mesh: MeshConfig) -> dict[str, Any]:
    """Per element, when the mesh has cells: ``cell_arrays`` {``scar_region``: the healthy / border
    zone / core scar tags} and the openCARP ``element_tags`` (``tag_mode`` applied to the input tags:
    ``tag_array``, an openCARP mesh's own tags, or 0)."""
    offsets, conn, types = mesh_cells(mesh_obj)
    if len(types) == 0:
        return {"cell_arrays": {}, "element_tags": None}
    element_class = classify(cell_mean(offsets, conn, probability), config.border_threshold, config.core_threshold)
    if mesh.tag_array is not None:
        if mesh.tag_array not in mesh_obj.cell_data:
            names = ", ".join(mesh_obj.cell_data.keys()) or "none"
            raise InputError(
                f"{mesh.path}: no cell array '{mesh.tag_array}' (it has: {names}); name an existing `tag_array`"
            )
        input_tags = np.asarray(mesh_obj.cell_data[mesh.tag_array])
    else:
        input_tags = np.asarray(mesh_obj.cell_data.get("elem_tag", np.zeros(len(types))))
    return {
        "cell_arrays": {"scar_region": np.asarray(config.tags, np.int32)[element_class]},
        "element_tags": element_tags(
            input_tags, element_class, config.tag_mode, (config.tag_offset_border, config.tag_offset_core), config.tags
        ),
    }


def _mesh_size_hint(mesh: MeshConfig) -> int:
    """Rough bytes of an output mesh: twice the input mesh file (the copy plus the new arrays)."""
    path = Path(mesh.path)
    return 2 * path.stat().st_size if path.is_file() else 0


def output_paths(output: Path) -> dict[str, Path]:
    """Where ``reconstruct`` puts the training data and model beside the output mesh."""
    output = Path(output)
    name = stem(output)
    return {
        "mesh": output,
        "data": output.with_name(f"{name}_data.npz"),
        "model": output.with_name(f"{name}_model.pt"),
        "report": output.with_name(f"{name}_report"),
    }


def reconstruct(
    prepare_config: PrepareConfig,
    train_config: TrainConfig,
    output: Path,
    predict_config: PredictConfig = PredictConfig(),
    with_report: bool = True,
    runtime: RuntimeConfig = RuntimeConfig(),
    check: ValidateConfig = ValidateConfig(),
    command: str | None = None,
    data_path: Path | None = None,
    model_path: Path | None = None,
    report_dir: Path | None = None,
    calibration: CrossvalConfig = CrossvalConfig(),
) -> Prediction:
    """The whole patient: prepare, train and predict.

    The training data, the model and (unless ``with_report`` is False) the report folder go to
    ``data_path``, ``model_path`` and ``report_dir``; each one not given goes beside ``output``
    (see :func:`output_paths`). The report holds the pictures, ``report.json`` and ``report.html``
    (group check with ``check``; ``command`` recorded when given). With ``calibration.calibrate``
    the model is cross-validated after training (one training per fold), the held-out calibration
    of its uncertainty (:mod:`.calibration`) is stored in it, and the held-out figures go into the report.
    """
    paths = {
        **output_paths(output),
        **{k: Path(v) for k, v in (("data", data_path), ("model", model_path), ("report", report_dir)) if v is not None},
    }
    check_mesh_output(paths["mesh"], _mesh_size_hint(prepare_config.mesh))
    check_model_output(paths["model"])
    if with_report:
        check_output_dir(paths["report"], "report folder")
    if full_suffix(paths["mesh"]) == ".pts":
        check_opencarp_cells(read_mesh(prepare_config.mesh)[0], paths["mesh"])
    data = prepare(prepare_config, output=paths["data"])
    fitted = train(data, train_config, output=paths["model"], runtime=runtime)
    heldout = None
    if calibration.calibrate:
        heldout = crossval(
            data, train_config, runtime, calibration, predict_config.mc_samples, predict_config.mc_seed, fitted
        )
        from .heldout import fit_residual_sd

        fitted.uncertainty_floor = fit_residual_sd(fitted, data, predict_config.mc_samples, predict_config.mc_seed)
        fitted.uncertainty_border = heldout["calibration"]["border"]
        fitted.uncertainty_factors = tuple(heldout["calibration"]["factors"])
        save_model(fitted, paths["model"])
        logger.info(
            "held-out calibration: uncertainty = (%s by band of p) * sqrt(%.4f^2 + MC spread^2 + %.3f^2 p (1 - p))",
            " / ".join(f"{f:.3f}" for f in fitted.uncertainty_factors),
            fitted.uncertainty_floor,
            fitted.uncertainty_border,
        )
    result = predict(fitted, prepare_config.mesh, paths["mesh"], predict_config, runtime)
    if with_report:
        mesh = prepare_config.mesh.model_copy(update={"path": paths["mesh"]})
        report(paths["report"], data, mesh, fitted, check, command, heldout)
    return result


def _mesh_field(mesh: object, field: str, path: Path, n_nodes: int) -> np.ndarray:
    """A point array of a mesh, checked to exist and to match the training data's node count."""
    if field not in mesh.point_data:  # type: ignore[attr-defined]
        names = ", ".join(mesh.point_data.keys()) or "none"  # type: ignore[attr-defined]
        raise InputError(f"{path}: no point array '{field}' (it has: {names}); name an existing array")
    values = np.asarray(mesh.point_data[field], dtype=np.float64)  # type: ignore[attr-defined]
    if values.shape != (n_nodes,):
        raise InputError(
            f"{path}: '{field}' has {values.shape[0]} values, the training data {n_nodes} nodes; "
            "use the mesh the training data was prepared from"
        )
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
    The report (see :func:`.metrics.group_report`), with ``truth`` when asked and
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
        from .prediction import predict_nodes

        result = predict_nodes(_load_fitted(model), data.points, config.mc_samples, config.mc_seed)
        values, uncertainty = result.probability, result.uncertainty
    else:
        values = _mesh_field(mesh_obj, "scar_probability", mesh.path, data.n_nodes)  # type: ignore[union-attr]
        if "scar_uncertainty" in mesh_obj.point_data:
            uncertainty = _mesh_field(mesh_obj, "scar_uncertainty", mesh.path, data.n_nodes)  # type: ignore[union-attr]
    report = group_report(data, values, config.tolerance, config.min_share)
    if data.misregistration_mm() is not None:
        report["misregistration_mm"] = data.misregistration_mm()
    if config.truth:
        truth = _mesh_field(mesh_obj, config.truth, mesh.path, data.n_nodes)  # type: ignore[union-attr]
        report["truth"] = truth_report(values, truth, uncertainty)
    if config.heldout:
        report["heldout"] = heldout_summary(_model_crossval(data, model, config))
    return report


def _model_crossval(data: TrainingData, model: FittedModel | Path | None, config: ValidateConfig) -> dict:
    """Leave-one-slice-out cross-validation, and the simulated accuracy, with the settings of ``model``."""
    if model is None:
        raise InputError(HELDOUT_NEEDS_MODEL)
    fitted = _load_fitted(model)
    folds = CrossvalConfig(simulate=True)  # the model is at hand: the simulation costs one training
    return crossval(data, fitted.config, RuntimeConfig(), folds, config.mc_samples, config.mc_seed, fitted)


def baseline(method: str, config: PrepareConfig, output: Path | None = None) -> np.ndarray:
    """A reference reconstruction (``nearest``, ``linear`` or ``logodds``) from the first stack.

    Written like :func:`predict` (``scar_probability``, ``scar_supervised``) into a copy of the mesh.
    """
    from .baselines import METHODS

    if method not in METHODS:
        raise InputError(f"unknown baseline method {method!r}; choose one of {', '.join(METHODS)}")
    if output is not None:
        check_mesh_output(Path(output), _mesh_size_hint(config.mesh))
    mesh_obj, points = read_mesh(config.mesh)
    if output is not None:
        check_opencarp_cells(mesh_obj, Path(output))
    stacks = [read_stack(sc, _tissue_of(mesh_obj, points, config.mesh, sc)) for sc in config.stacks]
    if len(stacks) > 1:
        logger.warning("baselines use the first stack only (%s)", stacks[0].name)
    values = METHODS[method](points, stacks[0]).astype(np.float32)
    if output is not None:
        supervised = build_training_data(points, stacks[:1]).supervised().astype(np.uint8)
        write_prediction(
            mesh_obj,
            {"scar_probability": values, "scar_supervised": supervised},
            Path(output),
            source=config.mesh,
            **_element_outputs(mesh_obj, values, PredictConfig(), config.mesh),
        )
    return values


def report(
    output_dir: Path,
    data: TrainingData | Path,
    mesh: MeshConfig,
    model: FittedModel | Path | None = None,
    config: ValidateConfig = ValidateConfig(),
    command: str | None = None,
    heldout: dict | None = None,
) -> dict:
    """Write ``slices.png``, ``mesh.png``, ``training.png`` (with a model), ``calibration.png``
    (with held-out figures), ``report.json`` and ``report.html`` (all of it on one self-contained page).

    ``mesh`` is a reconstruction (with ``scar_probability``); the group check reads it.
    ``command`` (the command line that made the result) is recorded when given.
    """
    from .figures import plot_calibration, plot_mesh, plot_slices, plot_training
    from .report_page import report_page, versions

    out = Path(output_dir)
    check_output_dir(out, "report folder")
    if not isinstance(data, TrainingData):
        data = load_training_data(Path(data))
    if config.heldout and model is None and heldout is None:
        raise InputError(HELDOUT_NEEDS_MODEL)
    mesh_obj = read_mesh(mesh)[0]
    result = validate(data, config.model_copy(update={"heldout": False}), mesh=mesh, mesh_obj=mesh_obj)
    if config.heldout and heldout is None:
        heldout = _model_crossval(data, model, config)
    result["slice_offsets_mm"] = slice_offsets_mm(data)
    if data.measured_offsets is not None:
        result["measured_offsets_mm"] = slice_offsets_mm(data, measured=True)
    result["stacks"] = [
        {"name": str(name), "thickness_mm": g.thickness, "targets": json.loads(str(mapping))}
        for name, g, mapping in zip(data.stack_names, data.stacks, data.stack_mapping)
    ]
    if "scar_distance_mm" in mesh_obj.point_data and "scar_support_mm" in mesh_obj.field_data:
        support = float(np.asarray(mesh_obj.field_data["scar_support_mm"]).ravel()[0])
        distance = np.asarray(mesh_obj.point_data["scar_distance_mm"], dtype=np.float64)
        in_region = np.asarray(mesh_obj.point_data.get("scar_in_region", np.ones(len(distance))), bool)
        result["support"] = {
            "support_mm": support,
            "prior": float(np.asarray(mesh_obj.field_data["scar_prior"]).ravel()[0]),
            "prior_share": float(np.mean(distance[in_region] > support)) if in_region.any() else 0.0,
            "region_share": float(in_region.mean()),
        }
    plot_slices(data, np.asarray(mesh_obj.point_data["scar_probability"]), out / "slices.png")
    plot_mesh(mesh_obj, out / "mesh.png")
    if model is not None:
        fitted = _load_fitted(model)
        plot_training(fitted.history, out / "training.png", fitted.best_epoch)
        result["training"] = {
            "epochs": len(fitted.history),
            "best_epoch": fitted.best_epoch,
            "stop_reason": fitted.stop_reason,
            "seconds": fitted.seconds,
        }
    if command:
        result["command"] = command
    if heldout is not None:  # a cross-validation's figures (see :func:`crossval`)
        result["heldout"] = heldout_summary(heldout)
    result["versions"] = versions()
    write_json(result, out / "report.json")
    pictures = {
        "Slices: input pixels, reconstruction's group means, difference": out / "slices.png",
        "Mesh: scar probability and uncertainty": out / "mesh.png",
    }
    if model is not None:
        pictures["Training: group loss per epoch"] = out / "training.png"
    if heldout is not None and heldout.get("calibration"):
        plot_calibration(heldout["calibration"], out / "calibration.png")
        pictures["Uncertainty calibration on the held-out pixels"] = out / "calibration.png"
    page = report_page(result, pictures, f"Scar reconstruction: {mesh.path}")
    with atomic_output(out / "report.html") as tmp:
        tmp.write_text(page)
    return result
