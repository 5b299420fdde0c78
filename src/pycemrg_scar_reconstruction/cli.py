"""The ``scar-reconstruct`` command line: a thin layer over :mod:`.api`.

Options come from the pydantic config models' fields (name, type, default, help), so each option
is defined once. Bad input prints one line ``error: ...`` and exits 2, with no traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types
import typing
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

from . import __version__
from .config import MeshConfig, PrepareConfig, StackConfig, SynthConfig
from .errors import InputError

log = logging.getLogger("pycemrg_scar_reconstruction")


# ------------------------------------------------------------------ options from config models
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(annotation: Any) -> Any:
    """The scalar type behind Optional[...] / Literal[...] annotations."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _base_type(args[0])
    return annotation


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel], skip: Sequence[str] = (),
                      prefix: str = "") -> None:
    """Add one ``--option`` per field of ``model`` (defaults stay the model's: unset means default)."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        ann = _base_type(info.annotation)
        kwargs: dict[str, Any] = {"dest": prefix + name, "default": None}
        default = "" if info.is_required() else f" (default: {info.default})"
        kwargs["help"] = (info.description or "") + default
        if ann is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(ann) is typing.Literal:
            choices = typing.get_args(ann)
            kwargs["choices"] = choices
            kwargs["type"] = type(choices[0])
        elif ann in (int, float, str, Path):
            kwargs["type"] = ann
        else:  # pydantic constrained types (PositiveInt, ...) carry their base in metadata
            kwargs["type"] = float if "float" in str(ann).lower() else int if "int" in str(ann).lower() else str
        parser.add_argument(_flag(prefix + name), **kwargs)


def model_values(args: argparse.Namespace, model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """The fields of ``model`` the user set on the command line."""
    out = {}
    for name in model.model_fields:
        value = getattr(args, prefix + name, None)
        if value is not None:
            out[name] = value
    return out


def _per_image(values: list | None, n: int, flag: str) -> list:
    """Broadcast a repeated per-image option: absent, once (all images) or once per image."""
    if not values:
        return [None] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise InputError(f"{flag} given {len(values)} times for {n} --image; give it once (all images) or once per image")
    return values


# -------------------------------------------------------------------------------- subcommands
def _add_prepare_inputs(p: argparse.ArgumentParser) -> None:
    desc = lambda f: StackConfig.model_fields[f].description  # noqa: E731
    p.add_argument("--mesh", required=True, type=Path, help=MeshConfig.model_fields["path"].description)
    add_model_options(p, MeshConfig, skip=("path",), prefix="mesh_")
    p.add_argument("--image", required=True, action="append", type=Path, help=desc("path") + "; repeat for more stacks")
    p.add_argument("--slice-thickness", action="append", type=float, help=desc("slice_thickness") + "; once, or once per --image")
    p.add_argument("--mask", action="append", type=Path, help=desc("mask") + "; once, or once per --image")
    p.add_argument("--target", action="append", choices=typing.get_args(StackConfig.model_fields["target"].annotation),
                   help=desc("target") + " (default: probability); once, or once per --image")
    p.add_argument("--scar-label", action="append", type=int, help=desc("scar_label"))
    p.add_argument("--slice-axis", action="append", type=int, choices=(0, 1, 2), help=desc("axis") + " (default: 2)")


def _prepare_config(args: argparse.Namespace) -> PrepareConfig:
    n = len(args.image)
    columns = {
        "slice_thickness": _per_image(args.slice_thickness, n, "--slice-thickness"),
        "mask": _per_image(args.mask, n, "--mask"),
        "target": _per_image(args.target, n, "--target"),
        "scar_label": _per_image(args.scar_label, n, "--scar-label"),
        "axis": _per_image(args.slice_axis, n, "--slice-axis"),
    }
    stacks = []
    for i, path in enumerate(args.image):
        fields = {k: v[i] for k, v in columns.items() if v[i] is not None}
        stacks.append(StackConfig(path=path, **fields))
    mesh = MeshConfig(path=args.mesh, **model_values(args, MeshConfig, prefix="mesh_"))
    return PrepareConfig(mesh=mesh, stacks=stacks)


def cmd_synth(args: argparse.Namespace) -> int:
    from .api import synth

    values = model_values(args, SynthConfig)
    if args.axial:
        values["oblique"] = False
    paths = synth(SynthConfig(**values), args.output_dir)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .api import prepare
    from .data import summary

    data = prepare(_prepare_config(args), output=args.output)
    print(summary(data))
    print(f"wrote {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scar-reconstruct",
        description="Per-patient 3D scar reconstruction from 2D LGE slices onto a ventricular mesh.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate a synthetic case (mesh, scar truth, LGE stack)")
    p.add_argument("--output-dir", required=True, type=Path, help="folder for mesh.vtu, lge.nii.gz, case.json")
    add_model_options(p, SynthConfig)
    p.add_argument("--axial", action="store_true", help="slices aligned with the scanner axes (same as --no-oblique)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="map mesh nodes into pixel prisms and write grouped training data")
    _add_prepare_inputs(p)
    p.add_argument("--output", required=True, type=Path, help="training data file (.npz)")
    p.set_defaults(func=cmd_prepare)
    return parser


class _CliHandler(logging.StreamHandler):
    """Writes the package's log records to the current stderr as ``warning: ...`` lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _setup_logging(verbose: bool) -> None:
    for handler in [h for h in log.handlers if isinstance(h, _CliHandler)]:
        log.removeHandler(handler)
    log.addHandler(_CliHandler())
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        print(f"error: {where + ': ' if where else ''}{first['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
