"""The options of the commands as argparse arguments built from the config models, and parsed
arguments -> config models: one place for the CLI and for cohort manifests (whose rows are ``run``
options), so an option means the same in both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import (
    PRESETS,
    CrossvalConfig,
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    TargetConfig,
    TrainConfig,
)
from .options import add_options, per_stack, values

#: Destination prefixes of each model's options in the parsed namespace.
D_PREPARE = "prepare."
D_COHORT = "cohort."
D_CROSSVAL = "crossval."
D_MESH, D_STACK, D_TARGET, D_TRAIN, D_MODEL, D_PREDICT, D_RUNTIME, D_VALIDATE, D_SYNTH = (
    "mesh.",
    "stack.",
    "target.",
    "train.",
    "model.",
    "predict.",
    "runtime.",
    "validate.",
    "synth.",
)
#: Runtime options that matter to each kind of work.
#: (``quiet`` is no option of its own: the general ``-q/--silent`` sets it.)
TRAIN_RUNTIME = ("device", "amp", "compile", "deterministic", "threads")
PREDICT_RUNTIME = ("device", "deterministic", "threads", "memory_mb")


def add_mesh(parser: argparse.ArgumentParser, required: bool, help_text: str) -> None:
    g = parser.add_argument_group("mesh")
    g.add_argument("--mesh", required=required, type=Path, metavar="PATH", help=help_text)
    add_options(g, MeshConfig, D_MESH, skip=("path",), flag_prefix="mesh_")


def add_inputs(parser: argparse.ArgumentParser) -> None:
    """The mesh and the stacks; per-stack options once (all stacks) or once per --image."""
    add_mesh(parser, True, MeshConfig.model_fields["path"].description or "")
    g = parser.add_argument_group("stacks (repeat --image for more stacks; per-stack options once, or once per --image)")
    g.add_argument(
        "--image",
        required=True,
        action="append",
        type=Path,
        metavar="PATH",
        help=StackConfig.model_fields["path"].description,
    )
    add_options(g, StackConfig, D_STACK, skip=("path",), repeat=True)
    g = parser.add_argument_group("targets: what the pixel values are")
    add_options(g, TargetConfig, D_TARGET, repeat=True)
    g = parser.add_argument_group("study registration and breath-hold alignment")
    add_options(
        g,
        PrepareConfig,
        D_PREPARE,
        only=(
            "study_registration",
            "register_min_mm",
            "align_slices",
            "measure_offsets",
            "align_max_inplane_mm",
            "align_max_normal_mm",
        ),
    )


def add_training(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="starting configuration; options given explicitly override it (paper: the published setup)",
    )
    add_options(g, TrainConfig, D_TRAIN)
    add_options(parser.add_argument_group("model"), ModelConfig, D_MODEL)


def add_prediction(parser: argparse.ArgumentParser) -> None:
    add_options(parser.add_argument_group("prediction"), PredictConfig, D_PREDICT)


def add_runtime(parser: argparse.ArgumentParser, fields: tuple[str, ...]) -> None:
    add_options(parser.add_argument_group("runtime (not saved with the model)"), RuntimeConfig, D_RUNTIME, only=fields)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``run`` (also the columns of a cohort manifest)."""
    add_inputs(p)
    p.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="PATH",
        help="output mesh (.vtu .vtk .vtp or NAME.pts); training data and model are saved beside it",
    )
    p.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write the pictures and report.json into <output stem>_report/ (default: on)",
    )
    add_training(p)
    add_prediction(p)
    add_options(p.add_argument_group("held-out accuracy and calibration"), CrossvalConfig, D_CROSSVAL)
    add_runtime(p, tuple(f for f in RuntimeConfig.model_fields if f != "quiet"))


def mesh_config(args: argparse.Namespace) -> MeshConfig | None:
    if args.mesh is None:
        return None
    return MeshConfig(path=args.mesh, **values(args, MeshConfig, D_MESH))


def prepare_config(args: argparse.Namespace) -> PrepareConfig:
    n = len(args.image)
    stacks = per_stack(args, StackConfig, D_STACK, n)
    targets = per_stack(args, TargetConfig, D_TARGET, n)
    return PrepareConfig(
        **values(args, PrepareConfig, D_PREPARE),
        mesh=mesh_config(args),
        stacks=[StackConfig(path=path, target=TargetConfig(**targets[i]), **stacks[i]) for i, path in enumerate(args.image)],
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.from_preset(
        args.preset, **values(args, TrainConfig, D_TRAIN), model=values(args, ModelConfig, D_MODEL)
    )


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    given = values(args, RuntimeConfig, D_RUNTIME)
    if getattr(args, "silent", False):  # -q: no progress bar either
        given["quiet"] = True
    return RuntimeConfig(**given)


def predict_config(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(**values(args, PredictConfig, D_PREDICT))


def crossval_config(args: argparse.Namespace) -> CrossvalConfig:
    return CrossvalConfig(**values(args, CrossvalConfig, D_CROSSVAL))
