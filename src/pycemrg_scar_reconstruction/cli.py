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
from .config import (
    PRESETS,
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
    ValidateConfig,
    train_config,
)
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
                      prefix: str = "", flag_prefix: dict[str, str] | None = None) -> None:
    """Add one ``--option`` per field of ``model`` (defaults stay the model's: unset means default).

    ``prefix`` is prepended to the destination (and to the flag unless ``flag_prefix`` is given, which
    maps field names to their flag prefix; absent names get a plain flag).
    """
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        ann = _base_type(info.annotation)
        kwargs: dict[str, Any] = {"dest": prefix + name, "default": None}
        default = "" if info.is_required() or info.default is None else f" (default: {info.default})"
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
        flag = _flag(prefix + name) if flag_prefix is None else _flag(flag_prefix.get(name, "") + name)
        parser.add_argument(flag, **kwargs)


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
    p.add_argument("--dicom-series", action="append", help=desc("dicom_series"))
    p.add_argument("--normalise", action="append", choices=typing.get_args(StackConfig.model_fields["normalise"].annotation),
                   help=desc("normalise") + " (default: minmax); once, or once per --image")
    p.add_argument("--remote-mask", action="append", type=Path, help=desc("remote_mask"))
    p.add_argument("--n-sd", action="append", type=float, help=desc("n_sd") + " (default: 5)")
    p.add_argument("--blood-pool-mask", action="append", type=Path, help=desc("blood_pool_mask"))
    p.add_argument("--iir-low", action="append", type=float, help=desc("iir_low") + " (default: 1.2)")
    p.add_argument("--iir-high", action="append", type=float, help=desc("iir_high") + " (default: 1.32)")


def _prepare_config(args: argparse.Namespace) -> PrepareConfig:
    n = len(args.image)
    columns = {
        "slice_thickness": _per_image(args.slice_thickness, n, "--slice-thickness"),
        "mask": _per_image(args.mask, n, "--mask"),
        "target": _per_image(args.target, n, "--target"),
        "scar_label": _per_image(args.scar_label, n, "--scar-label"),
        "axis": _per_image(args.slice_axis, n, "--slice-axis"),
        "normalise": _per_image(args.normalise, n, "--normalise"),
        "dicom_series": _per_image(args.dicom_series, n, "--dicom-series"),
        "remote_mask": _per_image(args.remote_mask, n, "--remote-mask"),
        "n_sd": _per_image(args.n_sd, n, "--n-sd"),
        "blood_pool_mask": _per_image(args.blood_pool_mask, n, "--blood-pool-mask"),
        "iir_low": _per_image(args.iir_low, n, "--iir-low"),
        "iir_high": _per_image(args.iir_high, n, "--iir-high"),
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


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=tuple(PRESETS), default="default",
                   help="starting configuration; options given explicitly override it (paper: the published setup)")
    add_model_options(p, TrainConfig, skip=("model",))
    add_model_options(p, ModelConfig, prefix="model_", flag_prefix={})


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return train_config(args.preset, **model_values(args, TrainConfig), model=model_values(args, ModelConfig, prefix="model_"))


def _add_predict_options(p: argparse.ArgumentParser, with_training: bool = False) -> None:
    """Prediction options; beside training options, the names both share get a ``--predict-`` flag."""
    shared = {n: "predict_" for n in PredictConfig.model_fields if with_training and n in TrainConfig.model_fields}
    add_model_options(p, PredictConfig, skip=("device",), prefix="predict_", flag_prefix=shared)


def _predict_config(args: argparse.Namespace) -> PredictConfig:
    values = model_values(args, PredictConfig, prefix="predict_")
    if getattr(args, "device", None):
        values.setdefault("device", args.device)
    return PredictConfig(**values)


def _print_fit(fitted) -> None:
    h = fitted.history[fitted.best_epoch - 1] if fitted.best_epoch else {"loss": float("nan")}
    print(f"trained {len(fitted.history)} epochs in {fitted.seconds:.1f} s (stopped: {fitted.stop_reason}); "
          f"best epoch {fitted.best_epoch}, group loss {h['loss']:.5f} (RMSE {h['loss'] ** 0.5:.4f})")


def _print_prediction(result, output: Path) -> None:
    p = result.probability
    print(f"nodes: {len(p)}  mean probability {p.mean():.3f}  nodes >= 0.5: {int((p >= 0.5).sum())}  "
          f"mean uncertainty {result.uncertainty.mean():.4f}  supervised: {int(result.supervised.sum())}")
    print(f"wrote {output}")


def cmd_train(args: argparse.Namespace) -> int:
    from .api import train

    fitted = train(args.data, _train_config(args), output=args.output)
    _print_fit(fitted)
    print(f"wrote {args.output} and {args.output.with_suffix('.history.json')}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .api import predict

    mesh = MeshConfig(path=args.mesh, **model_values(args, MeshConfig, prefix="mesh_"))
    result = predict(args.model, mesh, args.output, _predict_config(args))
    _print_prediction(result, args.output)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .api import output_paths, reconstruct

    prep = _prepare_config(args)
    result = reconstruct(prep, _train_config(args), args.output, _predict_config(args), with_report=args.report)
    paths = output_paths(args.output)
    print(f"training data: {paths['data']}\nmodel: {paths['model']}")
    if args.report:
        print(f"report: {paths['report']}/")
    _print_prediction(result, args.output)
    return 0


def _mesh_arg(args: argparse.Namespace) -> MeshConfig | None:
    if args.mesh is None:
        return None
    return MeshConfig(path=args.mesh, **model_values(args, MeshConfig, prefix="mesh_"))


def cmd_validate(args: argparse.Namespace) -> int:
    from .api import validate
    from .io import write_json
    from .validate import format_report

    config = ValidateConfig(**model_values(args, ValidateConfig))
    report = validate(args.data, config, model=args.model, mesh=_mesh_arg(args))
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0 if report["passed"] else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from .api import baseline

    values = baseline(args.method, _prepare_config(args), args.output)
    print(f"{args.method}: nodes {len(values)}  mean {values.mean():.3f}  nodes >= 0.5: {int((values >= 0.5).sum())}")
    print(f"wrote {args.output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .api import report
    from .validate import format_report

    result = report(args.output_dir, args.data, _mesh_arg(args), model=args.model,
                    config=ValidateConfig(**model_values(args, ValidateConfig)))
    print(format_report(result))
    print(f"wrote {args.output_dir}/")
    return 0


def _add_mesh(p: argparse.ArgumentParser, required: bool, help_text: str) -> None:
    p.add_argument("--mesh", required=required, type=Path, help=help_text)
    add_model_options(p, MeshConfig, skip=("path",), prefix="mesh_")


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

    p = sub.add_parser("train", help="fit the network to training data")
    p.add_argument("--data", required=True, type=Path, help="training data (.npz) from prepare")
    p.add_argument("--output", required=True, type=Path, help="model checkpoint (.pt); the loss curve goes beside it")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="write scar probability and uncertainty onto a mesh")
    p.add_argument("--model", required=True, type=Path, help="model checkpoint (.pt) from train")
    _add_mesh(p, True, MeshConfig.model_fields["path"].description)
    p.add_argument("--output", required=True, type=Path, help="output mesh (.vtu .vtk .vtp): a copy of the input with the scar arrays")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="prediction device (default: auto)")
    _add_predict_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("run", help="prepare + train + predict for one patient")
    _add_prepare_inputs(p)
    p.add_argument("--output", required=True, type=Path,
                   help="output mesh (.vtu .vtk .vtp); training data and model are saved beside it")
    _add_train_options(p)
    _add_predict_options(p, with_training=True)
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                   help="write the pictures and report.json into <output stem>_report/ (default: on)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="check the group constraints (exit 0 pass, 1 fail, 2 bad input)")
    p.add_argument("--data", required=True, type=Path, help="training data (.npz) from prepare")
    p.add_argument("--model", type=Path, help="model checkpoint (.pt) to check")
    _add_mesh(p, False, "or a reconstructed mesh with scar_probability (also the mesh that holds --truth)")
    add_model_options(p, ValidateConfig)
    p.add_argument("--json", type=Path, help="also write the report as JSON")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("baseline", help="a reference reconstruction (nearest slice, linear, log-odds)")
    p.add_argument("--method", required=True, choices=("nearest", "linear", "logodds"))
    _add_prepare_inputs(p)
    p.add_argument("--output", required=True, type=Path, help="output mesh (.vtu .vtk .vtp)")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("report", help="pictures (slices, mesh, training) and report.json")
    p.add_argument("--data", required=True, type=Path, help="training data (.npz) from prepare")
    _add_mesh(p, True, "reconstructed mesh (with scar_probability), e.g. the output of predict")
    p.add_argument("--model", type=Path, help="model checkpoint (.pt): adds the training curve")
    p.add_argument("--output-dir", required=True, type=Path, help="folder for the PNGs and report.json")
    add_model_options(p, ValidateConfig, skip=("mc_samples", "seed"))
    p.set_defaults(func=cmd_report)
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
