"""Cohort manifests: one row per patient, its columns the options of ``run``.

A manifest is a CSV file (header row) or a YAML file (a list of mappings, or a mapping with a
``patients`` list). Columns: ``id``, an optional ``truth`` (a point array of the mesh to score
against) and any ``run`` option by its long name with underscores (``mesh``, ``image``,
``slice_thickness``, ``align_slices``, ``max_epochs``, ...). Several stacks go in one cell
separated by ``;`` (per-stack options likewise, or one value for all). Paths are relative to the
manifest. Each row is read with the ``run`` parser and turned into the same config models, so an
option means the same in a manifest as on the command line.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._version import __version__
from .errors import InputError

#: Columns that are not ``run`` options.
RESERVED = ("id", "truth")
#: ``run`` options a manifest may not set: the cohort decides where each patient's outputs go.
REFUSED = ("output",)


@dataclass(frozen=True)
class Patient:
    """One manifest row, read and checked.

    Attributes
    ----------
    id : the patient's id (also its output folder name).
    row : 1-based data row number in the manifest, for messages.
    argv : the row as ``run`` options (paths absolute; ``--output`` is added by the cohort).
    truth : point array of the mesh holding a ground truth, or None.
    inputs : files and folders the row names (their contents go into :attr:`key`).
    error : what is wrong with the row (one line), or None.
    """

    id: str
    row: int
    argv: tuple[str, ...]
    truth: str | None
    inputs: tuple[Path, ...]
    error: str | None = None

    def key(self) -> str:
        """SHA-256 of the package version, the options and every input file's bytes: equal keys
        mean a finished patient need not be run again."""
        h = hashlib.sha256(json.dumps([__version__, list(self.argv), self.truth]).encode())
        for path in self.inputs:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                h.update(str(f).encode())
                with open(f, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
        return h.hexdigest()


class _RowError(ValueError):
    """A row the ``run`` parser refuses."""


class _RowParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _RowError(message)


def run_parser() -> argparse.ArgumentParser:
    """A parser of the ``run`` options that raises instead of exiting."""
    from .arguments import add_run_arguments

    parser = _RowParser(prog="run", add_help=False, exit_on_error=False)
    add_run_arguments(parser)
    return parser


def _rows(path: Path) -> list[dict[str, str]]:
    """The manifest's rows as column -> text (empty cells dropped)."""
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(path.read_text())
            if isinstance(doc, dict):
                doc = doc.get("patients")
            if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
                raise InputError(f"{path}: a YAML manifest is a list of patients (mappings), or has a 'patients' list")
            raw = doc
        elif path.suffix.lower() == ".csv":
            with open(path, newline="") as fh:
                raw = list(csv.DictReader(fh))
        else:
            raise InputError(f"{path}: a manifest is a .csv or .yaml file")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc.strerror}); check the path") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV file ({exc}); save it as UTF-8 CSV with a header row") from None
    except Exception as exc:  # yaml.YAMLError and friends
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable YAML file ({type(exc).__name__}); check its syntax") from None
    from .options import text_of

    rows = [{str(k).strip(): text_of(v) for k, v in r.items() if k is not None} for r in raw]
    return [{k: v for k, v in r.items() if v != ""} for r in rows if any(v != "" for v in r.values())]


def read_manifest(path: Path) -> list[Patient]:
    """Read and check a manifest.

    Problems of the whole manifest (unreadable, no ``id`` column, an unknown column, duplicate or
    unusable ids) raise :class:`.errors.InputError`; a bad row (an option the ``run`` parser or
    the config models refuse, a file that does not exist) comes back with its ``error`` set.
    """
    from .arguments import predict_config, prepare_config, runtime_config, train_config
    from .options import _RepeatError, columns_of, to_argv, validation_line

    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise InputError(f"{path}: no patients in the manifest; add one row per patient")
    parser = run_parser()
    columns = columns_of(parser)
    for name in sorted({k for r in rows for k in r}):
        if name in REFUSED:
            raise InputError(f"{path}: column '{name}' is set by the cohort (<output-dir>/<id>/); remove it")
        if name not in columns and name not in RESERVED:
            close = difflib.get_close_matches(name, [*columns, *RESERVED], n=1)
            hint = f"did you mean '{close[0]}'?" if close else "use the run option names with underscores"
            raise InputError(f"{path}: unknown column '{name}'; {hint}")
    ids = [r.get("id", "") for r in rows]
    for i, pid in enumerate(ids, start=1):
        if not pid:
            raise InputError(f"{path}: row {i} has no id; every row needs a unique 'id'")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", pid):
            raise InputError(f"{path}: row {i}: id {pid!r} is not usable as a folder name; use letters, digits, . _ -")
    dupes = sorted({p for p in ids if ids.count(p) > 1})
    if dupes:
        raise InputError(f"{path}: ids {', '.join(dupes)} appear more than once; ids must be unique")

    patients = []
    for i, row in enumerate(rows, start=1):
        options = {k: v for k, v in row.items() if k not in RESERVED}
        try:
            argv, inputs = to_argv(options, columns, path.parent)
            error = None
        except ValueError as exc:
            argv, inputs, error = [], [], str(exc)
        if error is None:
            try:
                args = parser.parse_args([*argv, "--output", "patient.vtu"])
                prepare_config(args), train_config(args), predict_config(args), runtime_config(args)
            except (_RowError, _RepeatError, argparse.ArgumentError) as exc:
                error = str(exc)
            except ValidationError as exc:
                error = validation_line(exc)
            except InputError as exc:
                error = str(exc)
        patients.append(
            Patient(
                id=row["id"],
                row=i,
                argv=tuple(argv),
                truth=row.get("truth"),
                inputs=tuple(inputs),
                error=None if error is None else f"{path}: row {i} ({row['id']}): {error}",
            )
        )
    return patients
