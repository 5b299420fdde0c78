"""Reading VTK files safely: impossible header counts refused before VTK allocates for them, and
VTK's own messages collected (not printed) and given as the cause of the one error line."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from .paths import full_suffix

#: The most a zlib stream shrinks (1032:1 for a run of one byte): an XML file's compressed data
#: cannot hold more raw bytes than this many times its size.
MAX_ZLIB_RATIO = 1032
#: Bytes of one point in an XML mesh: 3 coordinates of at least 4 bytes (float32).
XML_BYTES_PER_POINT = 12
#: The XML header's counts (``NumberOfPoints="..."``, ``NumberOfCells="..."``).
_XML_COUNT = re.compile(rb'NumberOf(Points|Cells|Polys|Strips|Verts|Lines)="(\d+)"')


def _refuse_impossible_counts(path: Path) -> None:
    """Refuse, before VTK allocates for it, an XML mesh whose header declares more points (or
    cells) than its bytes can hold, even compressed (a crafted or corrupted header)."""
    if full_suffix(path) not in (".vtu", ".vtp", ".vti", ".vts"):
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    capacity = size * (MAX_ZLIB_RATIO if b"compressor=" in head else 1)
    for kind, count in _XML_COUNT.findall(head):
        n = int(count)
        need = n * (XML_BYTES_PER_POINT if kind == b"Points" else 1)
        if need > capacity:
            raise InputError(
                f"{path}: the header declares {n} {kind.decode().lower()}, more than {size} bytes can hold; "
                "the file is corrupt, export it again"
            )


#: A legacy .vtk file stores each point in at least this many bytes ("0 0 0\n" in ASCII, 3 floats in binary).
MIN_BYTES_PER_POINT = 6


class _Collect(logging.Filter):
    """A root-logger filter that keeps VTK's messages and lets none through."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


@contextlib.contextmanager
def vtk_messages() -> Iterator[list[str]]:
    """Collect the messages VTK sends while reading (pyvista passes them to the root logger)
    instead of letting them reach stderr; yields the list they go into.

    A null handler keeps ``logging.error`` from configuring the root logger on its own.
    """
    root = logging.getLogger()
    collect, null = _Collect(), logging.NullHandler()
    root.addFilter(collect)
    root.addHandler(null)
    try:
        yield collect.messages
    finally:
        root.removeFilter(collect)
        root.removeHandler(null)


def _cause(messages: list[str]) -> str:
    """The first VTK message, shortened, as the cause in an error line ('' without one)."""
    if not messages:
        return ""
    first = messages[0].strip().splitlines()[0].strip()
    first = re.sub(r" \(0x[0-9a-f]+\)", "", first)  # object addresses say nothing to a user
    return f" (VTK: {first[:150]})"


def quiet_vtk_read(path: Path, what: str = "file") -> Any:
    """pyvista.read with VTK's errors observed (not printed, not logged) and raised, their first
    message as the cause; ``what`` the file is (mesh, image) names it in the error."""
    import pyvista as pv

    _refuse_impossible_counts(path)
    with vtk_messages() as messages:
        try:
            with warnings.catch_warnings(), pv.vtk_verbosity("off"):
                warnings.simplefilter("error")  # pyvista reports some reader failures as warnings
                with pv.VtkErrorCatcher(raise_errors=True, send_to_logging=False) as caught:
                    mesh = pv.read(str(path))
        except Exception as exc:
            cause = _cause(messages) or _cause([str(exc)])
            raise InputError(
                f"{path}: cannot read the {what}{cause}; check the file is a complete, valid {full_suffix(path)}"
            ) from exc
    # some readers report a failed read ("Error reading binary data!") only as a warning
    failed = [e.alert for e in caught.events if "error" in e.alert.lower()]
    if failed:
        raise InputError(f"{path}: {failed[0].splitlines()[-1].strip()}; check the file is complete")
    n_points = int(getattr(mesh, "n_points", 0))
    if full_suffix(path) == ".vtk" and path.stat().st_size < MIN_BYTES_PER_POINT * n_points:
        # the legacy ASCII reader fills a truncated file's missing points with zeros, silently
        raise InputError(
            f"{path}: {path.stat().st_size} bytes cannot hold the {n_points} points the file declares; "
            "the file is truncated, copy it again"
        )
    return mesh
