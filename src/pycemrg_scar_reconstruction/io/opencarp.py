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
    if not elem.exists():
        return pv.PolyData(pts) if count else pv.PolyData()
    cells, types, tags = [], [], []
    with open(elem) as f:
        f.readline()
        for line in f:  # element lines may mix types; this is file parsing, not a hot path
            tok = line.split()
            if not tok:
                continue
            if tok[0] not in _OPENCARP_ELEMENTS:
                raise InputError(f"{elem}: unknown element type '{tok[0]}'; expected one of {' '.join(_OPENCARP_ELEMENTS)}")
            n, vtk_type = _OPENCARP_ELEMENTS[tok[0]]
            cells.append([n, *map(int, tok[1 : 1 + n])])
            types.append(vtk_type)
            tags.append(int(tok[1 + n]) if len(tok) > 1 + n else 0)
    flat = np.concatenate([np.asarray(c, dtype=np.int64) for c in cells]) if cells else np.zeros(0, np.int64)
    sizes = np.asarray([c[0] for c in cells], dtype=np.int64) + 1
    is_node = np.ones(len(flat), dtype=bool)
    is_node[np.cumsum(sizes) - sizes] = False  # drop the per-cell size entries
    conn = flat[is_node]
    if conn.size and (conn.min() < 0 or conn.max() >= count):
        raise InputError(f"{elem}: elements refer to nodes outside 0..{count - 1}; check it matches {path.name}")
    grid = pv.UnstructuredGrid(flat, np.asarray(types, dtype=np.uint8), pts)
    grid.cell_data["elem_tag"] = np.asarray(tags, dtype=np.int32)
    return grid


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


def write_opencarp_elements(offsets: np.ndarray, conn: np.ndarray, types: np.ndarray, tags: np.ndarray, path: Path) -> None:
    """openCARP ``.elem``: the element count, then ``Type n1 .. nk tag`` per line, element order kept."""
    check_element_types(types, path)
    lines = np.empty(len(types), dtype=object)
    for vtk_type in np.unique(types):  # one pass per element type (a handful), not per element
        sel = np.flatnonzero(types == vtk_type)
        n = int(offsets[sel[0] + 1] - offsets[sel[0]])
        nodes = conn[offsets[sel][:, None] + np.arange(n)]
        buf = _io.StringIO()
        np.savetxt(buf, np.column_stack([nodes, np.asarray(tags)[sel]]), fmt="%d")
        lines[sel] = [f"{_VTK_TO_OPENCARP[int(vtk_type)]} {row}" for row in buf.getvalue().splitlines()]
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(f"{len(types)}\n" + "\n".join(lines.tolist()) + "\n")
