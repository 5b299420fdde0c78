"""openCARP files: ``.pts`` (micrometres), ``.elem`` (typed elements with a region tag)."""

from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .paths import atomic_output

# openCARP element type -> (node count, VTK cell type id)
_OPENCARP_ELEMENTS = {"Tt": (4, 10), "Hx": (8, 12), "Py": (5, 14), "Pr": (6, 13), "Tr": (3, 5), "Qd": (4, 9), "Ln": (2, 3)}
_VTK_TO_OPENCARP = {vtk: name for name, (_, vtk) in _OPENCARP_ELEMENTS.items()}


def read_opencarp(path: Path) -> Any:
    """openCARP ``.pts`` (+ ``.elem`` with the same stem when present) as a pyvista mesh."""
    import pyvista as pv

    with open(path) as f:
        header = f.readline().split()
        body = f.read()
    try:
        count = int(header[0])
        pts = np.array(body.split(), dtype=np.float64).reshape(-1, 3)
    except (IndexError, ValueError) as exc:
        raise InputError(f"{path}: not an openCARP .pts file (first line: node count, then x y z per line)") from exc
    if pts.shape[0] != count:
        raise InputError(f"{path}: header says {count} nodes, file has {pts.shape[0]}; repair the file")
    elem = path.with_suffix(".elem")
    mesh = pv.PolyData(pts) if count else pv.PolyData()
    if elem.exists():
        mesh = _read_elements(elem, pts)
    base = path.with_suffix("")
    for dat in sorted(path.parent.glob(f"{base.name}.*.dat")):  # NAME.<array>.dat: one value per node
        name = dat.name[len(base.name) + 1 : -len(".dat")]
        values = np.loadtxt(dat, ndmin=1)
        if values.shape == (count,):
            mesh.point_data[name] = values
    return mesh


def _read_elements(elem: Path, pts: np.ndarray) -> Any:
    """An openCARP ``.elem`` (element types may be mixed) on the nodes ``pts``, one vectorised pass
    per element type; the region tags become the cell array ``elem_tag``."""
    import pyvista as pv

    raw = elem.read_bytes()
    body = raw[raw.find(b"\n") + 1 :] if b"\n" in raw else b""
    lines: list[bytes] | None = None
    codes = np.frombuffer(body, np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(codes == 10) + 1])
    starts = starts[starts < len(codes)]
    if len(starts) and np.all(codes[starts] > 32) and np.all(np.diff(starts) > 3) and np.all(starts + 1 < len(codes)):
        # machine-written files (no blank or indented lines): the type of every line from its first two bytes
        kinds = codes[starts].astype(np.uint16) * 256 + codes[starts + 1]
    else:
        lines = [line for line in (x.strip() for x in body.split(b"\n")) if line]
        two = (
            np.frombuffer(b"".join(x[:2].ljust(2) for x in lines), np.uint8).reshape(-1, 2)
            if lines
            else np.zeros((0, 2), np.uint8)
        )
        kinds = two[:, 0].astype(np.uint16) * 256 + two[:, 1]
    # each type token as a number (two bytes), for comparisons at numpy speed
    names = {ord(k[0]) * 256 + ord(k[1]): k for k in _OPENCARP_ELEMENTS}
    present = np.unique(kinds)
    unknown = sorted(bytes([int(c) // 256, int(c) % 256]).decode(errors="replace") for c in present if int(c) not in names)
    if unknown:
        raise InputError(f"{elem}: unknown element type '{unknown[0]}'; expected one of {' '.join(_OPENCARP_ELEMENTS)}")
    count = len(pts)
    n_elements = len(kinds)
    cells = np.zeros((n_elements, 9), np.int64)  # size + up to 8 nodes, per element in file order
    tags = np.zeros(n_elements, np.int32)
    types = np.zeros(n_elements, np.uint8)
    for kind in present:  # a handful of element types; numpy's C parser reads each type's lines at once
        name = names[int(kind)]
        n, vtk_type = _OPENCARP_ELEMENTS[name]
        sel = np.flatnonzero(kinds == kind)
        if len(sel) == n_elements and lines is None:  # one element type: drop the type tokens, parse the rest at once
            text = body.replace(b"\n" + name.encode(), b"\n")[2:]
        else:
            if lines is None:
                lines = [line for line in (x.strip() for x in body.split(b"\n")) if line]
            text = b"\n".join(lines[i][2:] for i in sel)
        table = _int_table(text, n, elem, name)
        cells[sel, 0], cells[sel, 1 : n + 1] = n, table[:, :n]
        tags[sel], types[sel] = table[:, n], vtk_type
    sizes = cells[:, 0]
    if n_elements and np.all(sizes == sizes[0]):  # one element type: the legacy cell array is a plain reshape
        flat = cells[:, : sizes[0] + 1].ravel()
        conn = cells[:, 1 : sizes[0] + 1].ravel()
    else:
        flat = cells[np.arange(9)[None, :] <= sizes[:, None]]  # row by row: size then its nodes
        is_node = np.ones(len(flat), bool)
        is_node[np.cumsum(sizes + 1) - sizes - 1] = False  # the size entries
        conn = flat[is_node]
    if conn.size and (conn.min() < 0 or conn.max() >= count):
        raise InputError(f"{elem}: elements refer to nodes outside 0..{count - 1}; check it matches the .pts")
    grid = pv.UnstructuredGrid(flat, types, pts)
    grid.cell_data["elem_tag"] = tags
    return grid


def _int_table(text: bytes, n: int, elem: Path, kind: str) -> np.ndarray:
    """(E, n + 1) node numbers and tag from ``E`` element lines of one type without their type token
    (tag 0 where there is none)."""
    fix = f"'{kind}' elements need {n} node numbers and a tag per line; repair the file"
    for cols in (n + 1, n):  # with region tags, or without
        try:
            table = np.loadtxt(_io.BytesIO(text), dtype=np.int64, usecols=range(cols), ndmin=2)
        except ValueError:
            continue
        return table if cols == n + 1 else np.column_stack([table, np.zeros(len(table), np.int64)])
    raise InputError(f"{elem}: {fix}")


def check_fibres(path: Path, n_elements: int) -> None:
    """Refuse an openCARP ``.lon`` that is not one: a first line 1 or 2 (directions per element),
    then 3 or 6 numbers for each of ``n_elements`` elements."""
    fix = "fix it or remove it (the output then has no .lon)"
    try:
        tokens = Path(path).read_bytes().split()
        directions = int(tokens[0]) if tokens else 0
        values = np.array(tokens[1:], dtype=np.float64)
    except (ValueError, OverflowError):
        raise InputError(f"{path}: not an openCARP fibre file (a number that is not one); {fix}") from None
    if directions not in (1, 2):
        raise InputError(f"{path}: not an openCARP fibre file (first line must be 1 or 2 directions per element); {fix}")
    if len(values) != 3 * directions * n_elements or not np.all(np.isfinite(values)):
        raise InputError(
            f"{path}: {len(values)} fibre values for {n_elements} elements with {directions} direction(s) "
            f"(expected {3 * directions * n_elements}, all finite); {fix}"
        )


def write_opencarp_fibres(fibres: np.ndarray, path: Path) -> None:
    """openCARP ``.lon``: the number of directions per element (1 or 2), then 3 or 6 values per element."""
    fibres = np.asarray(fibres, np.float64).reshape(len(fibres), -1)
    with atomic_output(Path(path)) as tmp, open(tmp, "w") as f:
        f.write(f"{fibres.shape[1] // 3}\n")
        np.savetxt(f, fibres, fmt="%.6g")


def write_opencarp_points(points_um: np.ndarray, path: Path) -> None:
    """openCARP ``.pts``: the node count, then ``x y z`` per line (micrometres)."""
    with atomic_output(Path(path)) as tmp, open(tmp, "w") as f:
        f.write(f"{len(points_um)}\n")
        np.savetxt(f, points_um, fmt="%.6f")


def check_element_types(types: np.ndarray, path: Path) -> None:
    """Refuse VTK cell types that have no openCARP element (``path``: the ``.elem`` to be written)."""
    unknown = sorted(set(np.unique(types).tolist()) - set(_VTK_TO_OPENCARP))
    if unknown:
        raise InputError(f"{path}: VTK cell types {unknown} have no openCARP element; write .vtu instead")


def _fixed_width_rows(prefix: bytes, table: np.ndarray) -> np.ndarray:
    """(E, W) ASCII bytes: ``prefix`` then each non-negative integer of ``table`` (E, k) right-aligned
    in its column's width, one space apart; digits computed with numpy (no per-row Python)."""
    parts = [np.broadcast_to(np.frombuffer(prefix, np.uint8), (len(table), len(prefix)))]
    for col in np.asarray(table, np.int64).T:
        width = len(str(int(col.max()))) if len(col) else 1
        digits = np.full((len(col), width + 1), ord(" "), np.uint8)
        rest = col.copy()
        for d in range(width, 0, -1):  # the digits of a column: a few vectorised passes
            digits[:, d] = np.where((rest > 0) | (d == width), ord("0") + rest % 10, ord(" "))
            rest //= 10
        parts.append(digits)
    return np.concatenate(parts, axis=1)


def write_opencarp_elements(offsets: np.ndarray, conn: np.ndarray, types: np.ndarray, tags: np.ndarray, path: Path) -> None:
    """openCARP ``.elem``: the element count, then ``Type n1 .. nk tag`` per line, element order kept
    (numbers right-aligned per element type; openCARP reads whitespace-separated fields)."""
    check_element_types(types, path)
    tags = np.asarray(tags, np.int64)
    blocks = []
    for vtk_type in np.unique(types):  # one pass per element type (a handful), not per element
        sel = np.flatnonzero(types == vtk_type)
        n = int(offsets[sel[0] + 1] - offsets[sel[0]])
        table = np.column_stack([conn[offsets[sel][:, None] + np.arange(n)], tags[sel]])
        if table.size and table.min() < 0:
            raise InputError(f"{path}: negative node numbers or element tags; openCARP tags must be non-negative here")
        blocks.append((sel, _fixed_width_rows(_VTK_TO_OPENCARP[int(vtk_type)].encode(), table)))
    if len(blocks) == 1:  # one element type: its rows, each with a newline
        block = blocks[0][1]
        out = np.concatenate([block, np.full((len(block), 1), ord("\n"), np.uint8)], axis=1).ravel()
        with atomic_output(Path(path)) as tmp:
            tmp.write_bytes(f"{len(types)}\n".encode() + out.tobytes())
        return
    # every element's line in element order: the blocks' rows scattered into one byte buffer
    length = np.zeros(len(types), np.int64)
    for sel, block in blocks:
        length[sel] = block.shape[1] + 1  # + the newline
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    out = np.full(int(length.sum()), ord("\n"), np.uint8)
    for sel, block in blocks:
        out[start[sel][:, None] + np.arange(block.shape[1])] = block
    with atomic_output(Path(path)) as tmp:
        tmp.write_bytes(f"{len(types)}\n".encode() + out.tobytes())
