"""``baseline``: a reference reconstruction (nearest slice, linear, log-odds) on a mesh."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import PredictConfig, PrepareConfig
from ..data import build_training_data
from ..errors import InputError
from ..io.meshes import check_mesh_output, check_opencarp_cells, write_prediction
from ..io.paths import refuse_overwrite
from ._common import element_outputs, elements, mesh_size_hint, prepare_inputs
from .prepare import run_stages

logger = logging.getLogger(__name__)


def baseline(method: str, config: PrepareConfig, output: Path | None = None) -> np.ndarray:
    """A reference reconstruction (``nearest``, ``linear`` or ``logodds``) from the first stack,
    prepared as :func:`.prepare.prepare` prepares the network's inputs (up to the targets).

    Written like :func:`.predict.predict` (``scar_probability``, ``scar_supervised``) into a copy of the mesh.
    """
    from ..baselines import METHODS

    if method not in METHODS:
        raise InputError(f"unknown baseline method {method!r}; choose one of {', '.join(METHODS)}")
    if output is not None:
        refuse_overwrite([("output mesh", Path(output))], prepare_inputs(config))
        check_mesh_output(Path(output), mesh_size_hint(config.mesh))
    run = run_stages(config, until="targets")  # the network's inputs: same overlap check, offsets, targets
    mesh_obj, points, stacks = run.mesh_obj, run.points, run.stacks
    if output is not None:
        check_opencarp_cells(mesh_obj, Path(output), Path(config.mesh.path))
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
            **element_outputs(mesh_obj, elements(mesh_obj, values), PredictConfig(), config.mesh),
        )
    return values
