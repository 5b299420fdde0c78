"""The ``scar-reconstruct`` command line: a thin layer over :mod:`..api`.

* :mod:`..options` / :mod:`..arguments` (below the CLI, shared with cohort manifests): options
  generated from the config models (each declared once), parsed options -> config models;
* :mod:`.parser`: the subcommands and their option groups, short and full help;
* :mod:`.commands`: options -> config models -> API call -> printed summary;
* :func:`main`: logging for the command line, and errors as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ..errors import InputError, Interrupted
from ..options import _RepeatError, flags_in_message, validation_line
from .commands import SUMMARY_LOGGER

log = logging.getLogger("pycemrg_scar_reconstruction")


#: Progress lines (training epochs, prediction batches, prepare stages): shown on stderr when it is
#: not a terminal (cluster logs, where no progress bar is drawn) or with -v; never with -q.
PROGRESS_LOGGER = "pycemrg_scar_reconstruction.progress"


class _CliHandler(logging.StreamHandler):
    """Writes the package's log records to the current stderr as ``warning: ...`` lines; progress
    records pass when ``progress`` is on, whatever the level."""

    def __init__(self, level: int, progress: bool) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        self.min_level, self.progress = level, progress

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == PROGRESS_LOGGER:
            return self.progress
        if record.name == SUMMARY_LOGGER:
            return False
        return record.levelno >= self.min_level

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)  # other handlers see the record unchanged
        record.levelname = "progress" if record.name == PROGRESS_LOGGER else record.levelname.lower()
        record.msg = flags_in_message(str(record.msg))
        return super().format(record)


def _setup_logging(verbose: bool, silent: bool = False, log_file: Path | None = None) -> None:
    """Where the package's log goes for this command: stderr (errors only with ``silent``,
    info with ``verbose``, else warnings; progress lines when stderr is not a terminal) and,
    with ``log_file``, everything with times."""
    for handler in [h for h in log.handlers if isinstance(h, (_CliHandler, logging.FileHandler))]:
        log.removeHandler(handler)
        handler.close()
    level = logging.ERROR if silent else logging.INFO if verbose else logging.WARNING
    progress = not silent and (verbose or not sys.stderr.isatty())
    log.addHandler(_CliHandler(level, progress))
    if log_file is not None:
        from ..io.paths import check_output

        check_output(log_file, "log file")
        file_handler = logging.FileHandler(log_file, mode="a")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(file_handler)
    log.setLevel(logging.INFO)  # the handlers choose what they show
    log.propagate = False


def _with_config(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with the options of a ``--config`` YAML file inserted after the command's name;
    an option also given on the command line keeps the command line's value."""
    if not any(a == "--config" or a.startswith("--config=") for a in argv):
        return argv
    import yaml

    from ..options import columns_of, text_of, to_argv

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    position, skip, path = None, False, None
    for i, token in enumerate(argv):
        if skip:
            skip = False
            if argv[i - 1] == "--config":
                path = Path(token)
            continue
        if token in ("--config", "--log-file"):
            skip = True
        elif token.startswith("--config="):
            path = Path(token.split("=", 1)[1])
        elif position is None and token in sub.choices:
            position = i
    if path is None or position is None:
        return argv  # argparse will say what is missing
    command = sub.choices[argv[position]]
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the config file ({exc.strerror}); check the path") from None
    except yaml.YAMLError:
        raise InputError(f"{path}: not a readable YAML file; check its syntax") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: a config file is a YAML mapping of option names to values (slice_thickness: 8)")
    given = {a.split("=")[0][2:].replace("-", "_").removeprefix("no_") for a in argv if a.startswith("--")}
    columns = {k: v for k, v in columns_of(command).items() if k not in ("config", "help")}
    options = {str(k).replace("-", "_"): text_of(v) for k, v in doc.items()}
    try:
        extra, _ = to_argv({k: v for k, v in options.items() if k not in given and v != ""}, columns, path.parent)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}; see scar-reconstruct {argv[position]} --help") from None
    return [*argv[: position + 1], *extra, *argv[position + 1 :]]


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

    given = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_with_config(parser, given))
    except SystemExit as exc:  # --help, --version, or a usage error (already printed as one line)
        return (exc.code if isinstance(exc.code, int) else 2), False
    except InputError as exc:  # an unusable --config file
        print(f"error: {exc}", file=sys.stderr)
        return 2, False
    args.command_line = shlex.join(["scar-reconstruct", *given])
    try:
        from ..io.paths import refuse_overwrite
        from .commands import written_and_read

        refuse_overwrite(*written_and_read(args))  # before anything is opened for writing, the log file too
        _setup_logging(args.verbose, args.silent, args.log_file)
        if args.json not in (None, "-"):
            from ..io.paths import check_output

            check_output(Path(args.json), "JSON summary")
        return int(args.func(args) or 0), args.verbose
    except (InputError, _RepeatError) as exc:
        for line in str(exc).splitlines():  # several lines: one per bad row of a manifest
            print(f"error: {flags_in_message(line)}", file=sys.stderr)
        return 2, args.verbose
    except ValidationError as exc:
        print(f"error: {validation_line(exc)}", file=sys.stderr)
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
