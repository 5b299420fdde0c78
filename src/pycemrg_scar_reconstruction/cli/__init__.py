"""The ``scar-reconstruct`` command line: a thin layer over :mod:`..api`.

* :mod:`.options`: options generated from the config models (each declared once);
* :mod:`.parser`: the subcommands and their option groups;
* :mod:`.commands`: options -> config models -> API call -> printed summary;
* :func:`main`: logging for the command line, and errors as one line with exit code 2.
"""

from __future__ import annotations

import errno
import logging
import re
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from pydantic import ValidationError

from ..errors import InputError, Interrupted
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


class Terminated(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler sends before killing a job), raised where the process is,
    so that it stops like Ctrl-C: the current step ends, temporary files go, the best model is kept."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


#: errno -> what to do about it, for an OSError's one line.
_OS_FIX = {
    errno.ENOSPC: "the disk is full; free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up; free some space or write elsewhere",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "it is a folder; give a file name",
}


def _os_line(exc: OSError) -> str:
    where = exc.filename or "file system"
    return f"{where}: {exc.strerror or exc}; {_OS_FIX.get(exc.errno or 0, 'check the path')}"


def _interrupted(exc: KeyboardInterrupt) -> int:
    """One line for an interruption (what was kept, when something was); exit 143 for SIGTERM, 130 for Ctrl-C."""
    terminated = isinstance(exc, Terminated) or isinstance(getattr(exc, "cause", None), Terminated)
    kept = f" {exc}" if isinstance(exc, Interrupted) else ""
    print(("terminated" if terminated else "interrupted") + kept, file=sys.stderr)
    return 143 if terminated else 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (0 done, 1 a check failed or some patients failed,
    2 bad input or options, 3 an internal error, 130/143 interrupted by SIGINT/SIGTERM)."""
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code, verbose = _main(argv)
            if code in (0, 1) or verbose:  # on an error, its one line is the message
                for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught if str(w.message)):
                    print(f"warning: {message}", file=sys.stderr)
            return code
    except KeyboardInterrupt as exc:  # during start-up, before a command could handle it
        return _interrupted(exc)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> tuple[int, bool]:
    from .parser import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed as one line)
        return (exc.code if isinstance(exc.code, int) else 2), False
    _setup_logging(args.verbose)
    args.command_line = shlex.join(["scar-reconstruct", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0), args.verbose
    except (InputError, _RepeatError) as exc:
        for line in str(exc).splitlines():  # several lines: one per bad row of a manifest
            print(f"error: {flags_in_message(line)}", file=sys.stderr)
        return 2, args.verbose
    except ValidationError as exc:
        print(f"error: {_validation_line(exc)}", file=sys.stderr)
        return 2, args.verbose
    except OSError as exc:
        print(f"error: {_os_line(exc)}", file=sys.stderr)
        return 2, args.verbose
    except KeyboardInterrupt as exc:
        return _interrupted(exc), args.verbose
    except Exception as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"error: internal error ({type(exc).__name__}: {first}); please report it with the command (-v shows where)",
            file=sys.stderr,
        )
        return 3, args.verbose
