"""Command-line options generated from the pydantic config models: each option is declared once.

A field becomes ``--field-name`` (or the flag named in its ``json_schema_extra={"flag": ...}``),
with the field's type, choices, default and description. Unset options stay ``None`` so the
model's own default applies. Library messages name fields in backticks (`scar_label`);
:func:`flags_in_message` turns them into the flags a CLI user types (``--scar-label``).
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .config import (
    CohortConfig,
    CrossvalConfig,
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    TargetConfig,
    TrainConfig,
    ValidateConfig,
)

#: Every model whose fields are options somewhere (for the field -> flag map of messages).
_MODELS: tuple[type[BaseModel], ...] = (
    MeshConfig,
    StackConfig,
    TargetConfig,
    TrainConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    ValidateConfig,
    CrossvalConfig,
    CohortConfig,
)
#: Readable metavars by type.
_METAVAR = {Path: "PATH", int: "N", float: "X", str: "TEXT"}


def flag_name(model: type[BaseModel], field: str, prefix: str = "") -> str:
    """The flag of a field: ``--`` + its ``flag`` metadata, or ``prefix`` + its name; dashed."""
    extra = model.model_fields[field].json_schema_extra
    if isinstance(extra, dict) and "flag" in extra:
        return "--" + str(extra["flag"]).replace("_", "-")
    return "--" + (prefix + field).replace("_", "-")


def _scalar(annotation: Any) -> Any:
    """The scalar type behind Optional[...] (and pydantic's constrained int/float)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _scalar(next(a for a in typing.get_args(annotation) if a is not type(None)))
    if origin is typing.Annotated:
        return _scalar(typing.get_args(annotation)[0])
    return annotation


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    dest: str,
    skip: Sequence[str] = (),
    only: Sequence[str] | None = None,
    flag_prefix: str = "",
    repeat: bool = False,
) -> None:
    """One option per field of ``model`` (nested models skipped), destination ``dest + field``.

    ``repeat``: the option may be given several times (per-stack options: once for all stacks
    or once per ``--image``).
    """
    for name, info in model.model_fields.items():
        if name in skip or (only is not None and name not in only):
            continue
        ann = _scalar(info.annotation)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            continue
        kwargs: dict[str, Any] = {"dest": dest + name, "default": None}
        default = "" if info.is_required() or info.default is None else f" (default: {info.default})"
        text = (info.description or "") + default + ("; once, or once per --image" if repeat else "")
        kwargs["help"] = text.replace("%", "%%")  # argparse formats help with %: a literal 5% must be 5%%
        if ann is bool and not repeat:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(ann) is typing.Literal:
            choices = typing.get_args(ann)
            kwargs.update(choices=choices, type=type(choices[0]), metavar="{" + ",".join(map(str, choices)) + "}")
        elif typing.get_origin(ann) is tuple:  # a list, given comma-separated; the model splits it
            kwargs.update(type=str, metavar="A,B,...")
        else:
            kwargs["type"] = ann if ann in _METAVAR else str
            kwargs["metavar"] = _METAVAR.get(ann, "TEXT")
        extra = info.json_schema_extra
        if isinstance(extra, dict) and "metavar" in extra:
            kwargs["metavar"] = str(extra["metavar"])
        if repeat:
            kwargs["action"] = "append"
        parser.add_argument(flag_name(model, name, flag_prefix), **kwargs)


def values(args: argparse.Namespace, model: type[BaseModel], dest: str) -> dict[str, Any]:
    """The fields of ``model`` the user set on the command line."""
    out = {}
    for name in model.model_fields:
        value = getattr(args, dest + name, None)
        if value is not None:
            out[name] = value
    return out


def per_stack(args: argparse.Namespace, model: type[BaseModel], dest: str, n: int) -> list[dict[str, Any]]:
    """Per-stack field values of repeated options: each given once (all stacks) or ``n`` times."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, given in values(args, model, dest).items():
        if len(given) not in (1, n):
            raise _RepeatError(
                f"{flag_name(model, name)} given {len(given)} times for {n} --image; "
                "give it once (all stacks) or once per --image"
            )
        for i in range(n):
            out[i][name] = given[0] if len(given) == 1 else given[i]
    return out


class _RepeatError(ValueError):
    """A per-stack option given neither once nor once per stack."""


def _field_flags(models: Iterable[type[BaseModel]]) -> dict[str, str]:
    """Field name -> flag, where the flag is not the dashed name and no other model uses the name plainly."""
    seen: dict[str, set[str]] = {}
    for model in models:
        for name in model.model_fields:
            seen.setdefault(name, set()).add(flag_name(model, name))
    flags = {name: next(iter(f)) for name, f in seen.items() if len(f) == 1}
    flags["path"] = "--image"  # StackConfig.path; a mesh path is named `mesh` in messages
    return flags


_FLAGS = _field_flags(_MODELS)


def field_flag(name: str) -> str:
    """The flag a user types for a field named in a library message."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def flags_in_message(message: str, columns: bool = False) -> str:
    """Replace each backticked field name (`scar_label`) with its flag (--scar-label), or with
    ``columns`` with the name a manifest or --config file uses (scar_label)."""

    def name(m: re.Match) -> str:
        flag = field_flag(m.group(1))
        return flag[2:].replace("-", "_") if columns else flag

    return re.sub(r"`([a-z][a-z0-9_]*)`", name, message)


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def text_of(value: Any) -> str:
    """A YAML or CSV value as option text (lists joined with ``;``; booleans as true/false)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(text_of(v) for v in value)
    return str(value).strip()


def columns_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Option name (long flag without dashes, with underscores) -> the parser's action."""
    out = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--") and not o.startswith("--no-")]
        if longs:
            out[longs[0][2:].replace("-", "_")] = action
    return out


def to_argv(options: dict[str, str], columns: dict[str, argparse.Action], base: Path) -> tuple[list[str], list[Path]]:
    """Options by name (text values, as in a manifest row or a ``--config`` file) -> command-line
    arguments, and the input paths they name (made absolute against ``base``).

    Repeatable (per-stack) options take several values separated by ``;``; on/off options take
    true/false. Raises ValueError (one line) on an unknown name, a bad on/off value or a path
    that does not exist.
    """
    argv: list[str] = []
    inputs: list[Path] = []
    for name, text in options.items():
        if name not in columns:
            raise ValueError(f"unknown option '{name}'")
        action = columns[name]
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError(f"'{name}' is {text!r}; use true or false")
            argv.append(flag if text.lower() in _TRUE else "--no-" + flag[2:])
            continue
        if isinstance(action, argparse._StoreTrueAction):
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError(f"'{name}' is {text!r}; use true or false")
            argv += [flag] if text.lower() in _TRUE else []
            continue
        cells = [c.strip() for c in text.split(";")] if isinstance(action, argparse._AppendAction) else [text]
        for cell in cells:
            if action.type is Path:
                p = Path(cell).expanduser()
                p = p if p.is_absolute() else base / p
                if not p.exists() and name not in ("output", "output_dir", "json"):
                    raise ValueError(
                        f"'{name}' {cell}: not found (paths are relative to the file that names them); fix the path"
                    )
                if name not in ("output", "output_dir", "json"):
                    inputs.append(p)
                cell = str(p)
            argv += [flag, cell]
    return argv, inputs


def validation_line(exc: ValidationError) -> str:
    """One line for the first error of a pydantic validation, with the field as its flag."""
    first = exc.errors()[0]
    names = [str(x) for x in first["loc"] if isinstance(x, str)]
    msg = str(first["msg"]).removeprefix("Value error, ")
    return (f"{field_flag(names[-1])}: " if names else "") + flags_in_message(re.sub(r"\b([a-z]+_[a-z_]+)\b", r"`\1`", msg))
