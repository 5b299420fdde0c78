"""The ``scar-reconstruct`` command line: a thin layer over :mod:`..api`.

* :mod:`.options`: options generated from the config models (each declared once);
* :mod:`.parser`: the subcommands and their option groups;
* :mod:`.commands`: options -> config models -> API call -> printed summary;
* :func:`main`: logging for the command line, and errors as one line with exit code 2.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from ..errors import InputError
from .options import _RepeatError, field_flag, flags_in_message

log = logging.getLogger("pycemrg_scar_reconstruction")


class _CliHandler(logging.StreamHandler):
    """Writes the package's log records to the current stderr as ``warning: ...`` lines."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        record.msg = flags_in_message(str(record.msg))
        return super().format(record)


def _setup_logging(verbose: bool) -> None:
    for handler in [h for h in log.handlers if isinstance(h, _CliHandler)]:
        log.removeHandler(handler)
    log.addHandler(_CliHandler())
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def _validation_line(exc: ValidationError) -> str:
    """One line for the first error of a pydantic validation, with the field as its flag."""
    first = exc.errors()[0]
    names = [str(x) for x in first["loc"] if isinstance(x, str)]
    msg = str(first["msg"]).removeprefix("Value error, ")
    return (f"{field_flag(names[-1])}: " if names else "") + flags_in_message(re.sub(r"\b([a-z]+_[a-z_]+)\b", r"`\1`", msg))


def main(argv: Sequence[str] | None = None) -> int:
    from .parser import build_parser

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (InputError, _RepeatError) as exc:
        for line in str(exc).splitlines():  # several lines: one per bad row of a manifest
            print(f"error: {flags_in_message(line)}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"error: {_validation_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
