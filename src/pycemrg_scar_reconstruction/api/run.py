"""``run`` (:func:`reconstruct`): the whole patient, prepare, train and predict, with its report."""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import CrossvalConfig, PredictConfig, PrepareConfig, RuntimeConfig, TrainConfig, ValidateConfig
from ..io.artifacts import check_model_output, save_model
from ..io.meshes import check_mesh_output, check_opencarp_cells, read_mesh, write_mesh
from ..io.paths import check_output_dir, full_suffix, refuse_overwrite, stem
from ._common import mesh_size_hint, prepare_inputs
from .crossval import crossval
from .predict import predict
from .prepare import prepare
from .report import report
from .train import train

if TYPE_CHECKING:  # torch-backed types: imported when a model is trained or used, not with the API
    from ..prediction import Prediction

logger = logging.getLogger(__name__)


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
    of its uncertainty (:mod:`..calibration`) is stored in it, and the held-out figures go into the report.
    The wall time of each stage (s) is the result's ``seconds`` and the report's ``stage_seconds``;
    with a report, a VTK output mesh is written while the report draws (its time is the report's).
    """
    paths = {
        **output_paths(output),
        **{k: Path(v) for k, v in (("data", data_path), ("model", model_path), ("report", report_dir)) if v is not None},
    }
    refuse_overwrite([(f"{k} of run", p) for k, p in paths.items()], prepare_inputs(prepare_config))
    check_mesh_output(paths["mesh"], mesh_size_hint(prepare_config.mesh))
    check_model_output(paths["model"])
    if with_report:
        check_output_dir(paths["report"], "report folder")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    # read once: prepare and predict share it, and the report is given the mesh predict wrote
    # (at 1.4 million nodes each read of the .vtu took 2.7 s)
    mesh_read = read_mesh(prepare_config.mesh)
    if full_suffix(paths["mesh"]) == ".pts":
        check_opencarp_cells(mesh_read[0], paths["mesh"], Path(prepare_config.mesh.path))

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    data = prepare(prepare_config, output=paths["data"], mesh_read=mesh_read)
    lap("prepare")
    fitted = train(data, train_config, output=paths["model"], runtime=runtime)
    lap("train")
    heldout = None
    if calibration.calibrate:
        heldout = crossval(
            data, train_config, runtime, calibration, predict_config.mc_samples, predict_config.mc_seed, fitted
        )
        from ..folds import fit_residual_sd

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
        lap("calibrate")
    # a VTK output is written while the report draws: VTK's writer releases the GIL (at 1.4 million
    # nodes the write took 1.35 s and the mesh picture 1.9 s, 2.4 s together)
    deferred = with_report and full_suffix(paths["mesh"]) != ".pts"
    result = predict(
        fitted,
        prepare_config.mesh,
        paths["mesh"],
        predict_config,
        runtime,
        mesh_read,
        supervised=data.supervised(),
        defer_write=deferred,
    )
    lap("predict")
    if with_report:
        mesh = prepare_config.mesh.model_copy(update={"path": paths["mesh"]})
        with ThreadPoolExecutor(max_workers=1) as pool:
            # a copy of its own (0.08 s at 1.4 million nodes): VTK objects are not thread-safe, and
            # even reading an array can write its cached range
            written = pool.submit(write_mesh, result.mesh.copy(deep=True), paths["mesh"]) if deferred else None
            report(paths["report"], data, mesh, fitted, check, command, heldout, seconds, paths["data"], result.mesh)
            if written is not None:
                written.result()
        lap("report")
    logger.info("stage times: %s", stage_line(seconds))
    return dataclasses.replace(result, seconds=seconds)


def stage_line(seconds: dict[str, float]) -> str:
    """``prepare 4.1 s, train 25.0 s, ... (total 31 s)`` from stage -> wall seconds."""
    parts = ", ".join(f"{stage} {value:.1f} s" for stage, value in seconds.items())
    return f"{parts} (total {sum(seconds.values()):.0f} s)"
