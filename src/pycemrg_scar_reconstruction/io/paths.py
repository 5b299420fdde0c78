"""Paths and atomic writes: the one place where output files come into being.

Outputs are written to a temporary file in the destination folder and renamed into place, so a
failure never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError


def stem(path: Path) -> str:
    """The file name without its extension (``.nii.gz`` counted whole): ``lge`` for ``lge.nii.gz``."""
    name, suffix = Path(path).name, full_suffix(Path(path))
    return name[: -len(suffix)] if suffix else name


def full_suffix(path: Path) -> str:
    """Lower-case suffix, with ``.nii.gz`` kept whole."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: {what} not found; check the path")
    if not path.is_file():
        raise InputError(f"{path}: {what} is not a file; give the path of the file itself")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot read the {what}: permission denied; check the file's permissions")


#: The files an openCARP mesh ``NAME.pts`` stands for (``NAME.<array>.dat`` files besides).
OPENCARP_SUFFIXES = (".pts", ".elem", ".lon")


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name the same file: by inode when both exist (symbolic and hard links,
    ``./x``), else by their absolute paths with links resolved."""
    a, b = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return Path(os.path.realpath(a)) == Path(os.path.realpath(b))


def _file_set(path: Path) -> list[Path]:
    """The files one path stands for: an openCARP ``NAME.pts`` also names ``NAME.elem`` and ``NAME.lon``."""
    path = Path(path)
    if full_suffix(path) == ".pts":
        return [path.with_suffix(s) for s in OPENCARP_SUFFIXES]
    return [path]


def _opencarp_dat(output: Path, other: Path) -> bool:
    """``other`` is one of the ``NAME.<array>.dat`` files an openCARP output ``NAME.pts`` writes."""
    if full_suffix(output) != ".pts" or not other.name.endswith(".dat"):
        return False
    prefix = output.with_suffix("").name + "."
    return other.name.startswith(prefix) and same_file(other.parent, output.parent)


def refuse_overwrite(outputs: list[tuple[str, Path]], inputs: list[tuple[str, Path]]) -> None:
    """Refuse, before any work, an output that would be written over an input.

    ``outputs`` and ``inputs`` are (what, path) pairs. Paths are compared by the file they name
    (:func:`same_file`), openCARP sets whole (``NAME.pts``, ``.elem``, ``.lon``, ``NAME.*.dat``).

    Raises
    ------
    InputError
        Naming both, and the fix.
    """
    for what_out, out in outputs:
        for what_in, given in inputs:
            for o in _file_set(out):
                for i in _file_set(given):
                    if same_file(o, i) or _opencarp_dat(out, i):
                        also = "" if (o == Path(out) and i == Path(given)) else f" ({o.name} is {i.name})"
                        raise InputError(
                            f"{out}: the {what_out} would be written over the {what_in} {given}{also}; "
                            "give another output path (no output may be an input)"
                        )


def _existing_ancestor(path: Path) -> Path:
    """The nearest part of ``path`` (itself included) that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: Path, what: str = "output folder", size_hint: int = 0) -> None:
    """Refuse, before any work, a folder that cannot hold outputs: a file in the way, no write
    permission, or less free space than ``size_hint`` bytes."""
    path = Path(path)
    base = _existing_ancestor(path)
    if not base.is_dir():
        if base == Path(os.path.abspath(path)):
            raise InputError(f"{path}: {what} is a file; give a folder (or a new name)")
        raise InputError(f"{base}: is a file, so the {what} {path} cannot be made there; choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{base}: folder not writable, so the {what} {path} cannot be written; choose another path")
    free = shutil.disk_usage(base).free
    if free < size_hint:
        raise InputError(
            f"{base}: {free / 1e6:.0f} MB free, the {what} needs about {size_hint / 1e6:.0f} MB; "
            "free some space or write elsewhere"
        )


def check_output(path: Path, what: str = "output", size_hint: int = 0) -> None:
    """Refuse, before any work, an output file that cannot be written (a folder of that name, a
    file where its folder should be, no permission, no space for about ``size_hint`` bytes)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: the {what} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{path}: the {what} exists and is read-only; remove it or choose another name")
    check_output_dir(path.parent, f"folder of the {what}", size_hint)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_stale(path: Path, suffix: str) -> None:
    """Remove temporary files of ``path`` left by a process that was killed while writing it."""
    for tmp in path.parent.glob(f".{path.name}.*{suffix}"):
        parts = tmp.name[len(path.name) + 2 :].split(".", 1)
        if parts and parts[0].isdigit() and not _alive(int(parts[0])):
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it to ``path`` on success.

    On any exception (Ctrl-C included) the temporary file is removed and ``path`` is left
    untouched. The temporary name carries the process id, so that one left by a killed process
    is removed by the next write to the same place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = full_suffix(path) or ".tmp"
    _remove_stale(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


#: Lock files this process holds (a command's orchestrators nest: run -> prepare, train, predict).
_HELD: set[Path] = set()


@contextlib.contextmanager
def output_lock(*paths: Path) -> Iterator[None]:
    """Hold an exclusive lock on each output for the duration of the block, so that two processes
    writing the same output cannot interleave: the second is refused at once (no waiting).

    The lock is ``.<name>.lock`` beside the output (``flock``: released by the system even when
    the process is killed) and is removed when the block ends.
    """
    import fcntl

    taken: list[tuple[Path, int]] = []
    try:
        for path in paths:
            lock = Path(os.path.abspath(path)).with_name(f".{Path(path).name}.lock")
            if lock in _HELD or not lock.parent.is_dir():
                continue
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise InputError(
                    f"{path}: another process is writing this output now; wait for it to finish or choose another name"
                ) from None
            taken.append((lock, fd))
            _HELD.add(lock)
        yield
    finally:
        for lock, fd in taken:
            _HELD.discard(lock)
            with contextlib.suppress(OSError):
                lock.unlink()
            os.close(fd)


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON of ``obj``: numpy values as plain ones, NaN and infinities as null."""
    return json.dumps(_finite(obj), indent=indent, default=_json_default, allow_nan=False)


def write_json(obj: Any, path: Path) -> None:
    """Write :func:`json_text` (indented) atomically."""
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(json_text(obj, indent=2) + "\n")


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (also in numpy arrays and scalars) replaced by None."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
