"""The ``scar-reconstruct`` argument parser: subcommands, with options grouped as a user reads them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from .._version import __version__
from ..config import (
    PRESETS,
    CohortConfig,
    CrossvalConfig,
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TargetConfig,
    TrainConfig,
    ValidateConfig,
)
from .options import add_options

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
TRAIN_RUNTIME = ("device", "amp", "compile", "deterministic", "threads", "quiet")
PREDICT_RUNTIME = ("device", "deterministic", "threads", "memory_mb")


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (with the valid choices, which argparse names), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see {self.prog} --help\n")


def _mesh(parser: argparse.ArgumentParser, required: bool, help_text: str) -> None:
    g = parser.add_argument_group("mesh")
    g.add_argument("--mesh", required=required, type=Path, metavar="PATH", help=help_text)
    add_options(g, MeshConfig, D_MESH, skip=("path",), flag_prefix="mesh_")


def _inputs(parser: argparse.ArgumentParser) -> None:
    """The mesh and the stacks; per-stack options once (all stacks) or once per --image."""
    _mesh(parser, True, MeshConfig.model_fields["path"].description or "")
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
    g = parser.add_argument_group("breath-hold alignment")
    add_options(
        g, PrepareConfig, D_PREPARE, only=("align_slices", "measure_offsets", "align_max_inplane_mm", "align_max_normal_mm")
    )


def _training(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default="default",
        help="starting configuration; options given explicitly override it (paper: the published setup)",
    )
    add_options(g, TrainConfig, D_TRAIN)
    add_options(parser.add_argument_group("model"), ModelConfig, D_MODEL)


def _prediction(parser: argparse.ArgumentParser) -> None:
    add_options(parser.add_argument_group("prediction"), PredictConfig, D_PREDICT)


def _runtime(parser: argparse.ArgumentParser, fields: tuple[str, ...]) -> None:
    add_options(parser.add_argument_group("runtime (not saved with the model)"), RuntimeConfig, D_RUNTIME, only=fields)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``run`` (also the columns of a cohort manifest)."""
    _inputs(p)
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
    _training(p)
    _prediction(p)
    add_options(p.add_argument_group("held-out accuracy and calibration"), CrossvalConfig, D_CROSSVAL)
    _runtime(p, tuple(RuntimeConfig.model_fields))


def _global_options(parser: argparse.ArgumentParser, at_top: bool) -> None:
    """Options every command takes, before or after the command's name."""
    default: Any = {} if at_top else {"default": argparse.SUPPRESS}
    g = parser.add_argument_group("general (before or after the command)")
    g.add_argument("-v", "--verbose", action="store_true", help="log progress details", **default)
    g.add_argument("-q", "--silent", action="store_true", help="errors only: no warnings, no progress", **default)
    g.add_argument("--log-file", type=Path, metavar="PATH", help="also log everything (with times) to this file", **default)
    g.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="YAML file of this command's options by name (slice_thickness: 8); the command line overrides it",
        **default,
    )
    g.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="a machine-readable summary: on stdout instead of the text (--json), or into PATH (--json PATH)",
        **default,
    )


def build_parser() -> argparse.ArgumentParser:
    from . import commands as c

    parser = _Parser(
        prog="scar-reconstruct",
        description="Per-patient 3D scar reconstruction from 2D LGE slices onto a ventricular mesh.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, at_top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = _Parser(add_help=False)  # the same options after the command, not overriding those before it
    _global_options(shared, at_top=False)
    _add = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _add(name, parents=[shared], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]

    p = sub.add_parser("synth", help="generate a synthetic case (mesh, scar truth, LGE stack)")
    p.add_argument(
        "--output-dir", required=True, type=Path, metavar="DIR", help="folder for mesh.vtu, lge.nii.gz, case.json"
    )
    add_options(p.add_argument_group("case"), SynthConfig, D_SYNTH)
    p.add_argument("--axial", action="store_true", help="slices aligned with the scanner axes (same as --no-oblique)")
    p.set_defaults(func=c.cmd_synth)

    p = sub.add_parser("prepare", help="map mesh nodes into pixel prisms and write grouped training data")
    _inputs(p)
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="training data file (.npz)")
    p.set_defaults(func=c.cmd_prepare)

    p = sub.add_parser("train", help="fit the network to training data")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    p.add_argument(
        "--output", required=True, type=Path, metavar="PATH", help="model checkpoint (.pt); the loss curve goes beside it"
    )
    _training(p)
    _runtime(p, TRAIN_RUNTIME)
    p.set_defaults(func=c.cmd_train)

    p = sub.add_parser("predict", help="write scar probability and uncertainty onto a mesh")
    p.add_argument("--model", required=True, type=Path, metavar="PATH", help="model checkpoint (.pt) from train")
    _mesh(p, True, MeshConfig.model_fields["path"].description or "")
    p.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="PATH",
        help="output mesh (.vtu .vtk .vtp, or openCARP NAME.pts): a copy of the input with the scar arrays",
    )
    _prediction(p)
    _runtime(p, PREDICT_RUNTIME)
    p.set_defaults(func=c.cmd_predict)

    p = sub.add_parser("run", help="prepare + train + predict for one patient")
    add_run_arguments(p)
    p.set_defaults(func=c.cmd_run)

    p = sub.add_parser(
        "cohort",
        help="run every patient of a manifest (CSV/YAML; columns: id and the run options) on Dask",
        description="Run every patient of a manifest on Dask (a local cluster of worker processes, or --scheduler). "
        "Each patient writes <output-dir>/<id>/; cohort.csv and cohort.html summarise. Exit 0: all done or "
        "skipped; 1: some failed; 2: the manifest is unusable.",
    )
    p.add_argument("--manifest", required=True, type=Path, metavar="PATH", help="CSV or YAML, one row per patient")
    p.add_argument(
        "--output-dir", required=True, type=Path, metavar="DIR", help="<id>/ per patient, cohort.csv, cohort.html"
    )
    add_options(p.add_argument_group("cohort"), CohortConfig, D_COHORT)
    _runtime(p, ("device", "amp", "compile", "deterministic", "threads", "memory_mb"))
    p.set_defaults(func=c.cmd_cohort)

    p = sub.add_parser(
        "crossval",
        help="held-out accuracy: leave out whole slices (or views), train on the rest, score the left-out pixels",
    )
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    add_options(p.add_argument_group("folds"), CrossvalConfig, D_CROSSVAL, skip=("calibrate",))
    add_options(p.add_argument_group("prediction"), PredictConfig, D_PREDICT, only=("mc_samples", "mc_seed"))
    _training(p)
    _runtime(p, TRAIN_RUNTIME)
    p.set_defaults(func=c.cmd_crossval)

    p = sub.add_parser("validate", help="check the group constraints (exit 0 pass, 1 fail, 2 bad input)")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    p.add_argument("--model", type=Path, metavar="PATH", help="model checkpoint (.pt) to check")
    _mesh(p, False, "or a reconstructed mesh with scar_probability (also the mesh that holds --truth)")
    add_options(p.add_argument_group("check"), ValidateConfig, D_VALIDATE)
    p.set_defaults(func=c.cmd_validate)

    p = sub.add_parser("baseline", help="a reference reconstruction (nearest slice, linear, log-odds)")
    p.add_argument("--method", required=True, choices=("nearest", "linear", "logodds"))
    _inputs(p)
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="output mesh (.vtu .vtk .vtp)")
    p.set_defaults(func=c.cmd_baseline)

    p = sub.add_parser("report", help="pictures (slices, mesh, training) and report.json")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    _mesh(p, True, "reconstructed mesh (with scar_probability), e.g. the output of predict")
    p.add_argument("--model", type=Path, metavar="PATH", help="model checkpoint (.pt): adds the training curve")
    p.add_argument("--output-dir", required=True, type=Path, metavar="DIR", help="folder for the PNGs and report.json")
    add_options(p.add_argument_group("check"), ValidateConfig, D_VALIDATE)  # MC passes: for --heldout
    p.set_defaults(func=c.cmd_report)
    return parser
