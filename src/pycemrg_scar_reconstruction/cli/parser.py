"""The ``scar-reconstruct`` argument parser: subcommands, with options grouped as a user reads them.

``COMMAND --help`` shows what a first run needs (:data:`ESSENTIAL`: inputs, outputs, thickness,
target, threshold, device, threads) and says how many more options ``--help-all`` shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from .._version import __version__
from ..arguments import (
    D_COHORT,
    D_CROSSVAL,
    D_PREDICT,
    D_SYNTH,
    D_VALIDATE,
    PREDICT_RUNTIME,
    TRAIN_RUNTIME,
    add_inputs,
    add_mesh,
    add_prediction,
    add_run_arguments,
    add_runtime,
    add_training,
)
from ..config import CohortConfig, CrossvalConfig, MeshConfig, PredictConfig, SynthConfig, ValidateConfig
from ..options import add_options

#: The options ``COMMAND --help`` shows, in this order (required options are always shown); ``--help-all`` shows all.
ESSENTIAL = (
    "--help",
    "--help-all",
    "--manifest",
    "--data",
    "--model",
    "--mesh",
    "--image",
    "--slice-thickness",
    "--mask",
    "--myocardium-labels",
    "--target",
    "--scar-label",
    "--truth",
    "--output",
    "--output-dir",
    "--threshold",
    "--device",
    "--threads",
)


class _ShortHelp(argparse.Action):
    """``-h/--help``: the essential options only, and a line saying how to see the rest."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        shown, hidden_groups, n_hidden = [], [], 0
        for group in parser._action_groups:
            for a in group._group_actions:
                if a.help is argparse.SUPPRESS:
                    continue
                if a.required or set(ESSENTIAL).intersection(a.option_strings):
                    shown.append(a)
                else:
                    n_hidden += 1
                    title = (group.title or "").split(" (")[0].split(":")[0]
                    if title not in hidden_groups and group not in (parser._optionals, parser._positionals):
                        hidden_groups.append(title)
        rank = {flag: i for i, flag in enumerate(ESSENTIAL)}
        shown.sort(key=lambda a: min((rank.get(f, len(rank)) for f in a.option_strings), default=len(rank)))
        formatter = parser._get_formatter()
        formatter.add_usage(parser.usage, shown, [])
        formatter.add_text(parser.description)
        formatter.start_section("the options a first run needs")
        formatter.add_arguments(shown)
        formatter.end_section()
        if n_hidden:
            formatter.add_text(f"{n_hidden} more options ({', '.join(hidden_groups)}): {parser.prog} --help-all")
        parser._print_message(formatter.format_help(), sys.stdout)
        parser.exit()


class _FullHelp(argparse.Action):
    """``--help-all``: every option, in its group."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.print_help()
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (with the valid choices, which argparse names), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}; see {self.prog} --help\n")


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
        p = _add(name, parents=[shared], add_help=False, **kwargs)
        p.add_argument("-h", "--help", action=_ShortHelp, help="show the options a first run needs, and exit")
        p.add_argument("--help-all", action=_FullHelp, help="show every option, and exit")
        return p

    sub.add_parser = add_parser  # type: ignore[method-assign,assignment]

    p = sub.add_parser("synth", help="generate a synthetic case (mesh, scar truth, LGE stack)")
    p.add_argument(
        "--output-dir", required=True, type=Path, metavar="DIR", help="folder for mesh.vtu, lge.nii.gz, case.json"
    )
    add_options(p.add_argument_group("case"), SynthConfig, D_SYNTH)
    p.add_argument("--axial", action="store_true", help="slices aligned with the scanner axes (same as --no-oblique)")
    p.set_defaults(func=c.cmd_synth)

    p = sub.add_parser("prepare", help="map mesh nodes into pixel prisms and write grouped training data")
    add_inputs(p)
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="training data file (.npz)")
    p.set_defaults(func=c.cmd_prepare)

    p = sub.add_parser("train", help="fit the network to training data")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    p.add_argument(
        "--output", required=True, type=Path, metavar="PATH", help="model checkpoint (.pt); the loss curve goes beside it"
    )
    add_training(p)
    add_runtime(p, TRAIN_RUNTIME)
    p.set_defaults(func=c.cmd_train)

    p = sub.add_parser("predict", help="write scar probability and uncertainty onto a mesh")
    p.add_argument("--model", required=True, type=Path, metavar="PATH", help="model checkpoint (.pt) from train")
    add_mesh(p, True, MeshConfig.model_fields["path"].description or "")
    p.add_argument(
        "--output",
        required=True,
        type=Path,
        metavar="PATH",
        help="output mesh (.vtu .vtk .vtp, or openCARP NAME.pts): a copy of the input with the scar arrays",
    )
    add_prediction(p)
    add_runtime(p, PREDICT_RUNTIME)
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
    add_runtime(p, ("device", "amp", "compile", "deterministic", "threads", "memory_mb"))
    p.set_defaults(func=c.cmd_cohort)

    p = sub.add_parser(
        "crossval",
        help="held-out accuracy: leave out whole slices (or views), train on the rest, score the left-out pixels",
    )
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    add_options(p.add_argument_group("folds"), CrossvalConfig, D_CROSSVAL, skip=("calibrate",))
    add_options(p.add_argument_group("prediction"), PredictConfig, D_PREDICT, only=("mc_samples", "mc_seed"))
    add_training(p)
    add_runtime(p, TRAIN_RUNTIME)
    p.set_defaults(func=c.cmd_crossval)

    p = sub.add_parser("validate", help="check the group constraints (exit 0 pass, 1 fail, 2 bad input)")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    p.add_argument("--model", type=Path, metavar="PATH", help="model checkpoint (.pt) to check")
    add_mesh(p, False, "or a reconstructed mesh with scar_probability (also the mesh that holds --truth)")
    add_options(p.add_argument_group("check"), ValidateConfig, D_VALIDATE)
    p.set_defaults(func=c.cmd_validate)

    p = sub.add_parser("baseline", help="a reference reconstruction (nearest slice, linear, log-odds)")
    p.add_argument("--method", required=True, choices=("nearest", "linear", "logodds"))
    add_inputs(p)
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="output mesh (.vtu .vtk .vtp)")
    p.set_defaults(func=c.cmd_baseline)

    p = sub.add_parser("transform", help="write an image of the LGE study into the mesh's frame (its affine changed only)")
    p.add_argument(
        "--image", required=True, type=Path, metavar="PATH", help="any image of the study (long-axis view, T1 map)"
    )
    p.add_argument(
        "--report",
        required=True,
        type=Path,
        metavar="PATH",
        help="the reconstruction's report.json (study_to_mesh), or its training data (.npz)",
    )
    p.add_argument("--output", required=True, type=Path, metavar="PATH", help="the image in the mesh's frame (.nii.gz)")
    p.set_defaults(func=c.cmd_transform)

    p = sub.add_parser("report", help="pictures (slices, mesh, training) and report.json")
    p.add_argument("--data", required=True, type=Path, metavar="PATH", help="training data (.npz) from prepare")
    add_mesh(p, True, "reconstructed mesh (with scar_probability), e.g. the output of predict")
    p.add_argument("--model", type=Path, metavar="PATH", help="model checkpoint (.pt): adds the training curve")
    p.add_argument("--output-dir", required=True, type=Path, metavar="DIR", help="folder for the PNGs and report.json")
    add_options(p.add_argument_group("check"), ValidateConfig, D_VALIDATE)  # MC passes: for --heldout
    p.set_defaults(func=c.cmd_report)
    return parser
