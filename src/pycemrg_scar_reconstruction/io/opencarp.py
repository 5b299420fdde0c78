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

    lines = np.array(elem.read_text().splitlines()[1:])
    lines = lines[np.char.str_len(np.char.strip(lines)) > 0]
    kinds = np.array([line.lstrip()[:2] for line in lines])  # the type token is two letters
    unknown = sorted(set(np.unique(kinds).tolist()) - set(_OPENCARP_ELEMENTS))
    if unknown:
        raise InputError(f"{elem}: unknown element type '{unknown[0]}'; expected one of {' '.join(_OPENCARP_ELEMENTS)}")
    count = len(pts)
    cells = np.zeros((len(lines), 9), np.int64)  # size + up to 8 nodes, per element in file order
    tags = np.zeros(len(lines), np.int32)
    types = np.zeros(len(lines), np.uint8)
    for kind in np.unique(kinds):  # a handful of element types
        n, vtk_type = _OPENCARP_ELEMENTS[str(kind)]
        sel = np.flatnonzero(kinds == kind)
        try:
            table = np.loadtxt(lines[sel], usecols=range(1, n + 2), dtype=np.int64, ndmin=2)
        except ValueError:
            try:  # no region tags
                table = np.column_stack(
                    [np.loadtxt(lines[sel], usecols=range(1, n + 1), dtype=np.int64, ndmin=2), np.zeros(len(sel), np.int64)]
                )
            except ValueError as exc:
                raise InputError(
                    f"{elem}: '{kind}' elements need {n} node numbers and a tag per line; repair the file"
                ) from exc
        cells[sel, 0], cells[sel, 1 : n + 1] = n, table[:, :n]
        tags[sel], types[sel] = table[:, n], vtk_type
    sizes = cells[:, 0]
    flat = cells[np.arange(9)[None, :] <= sizes[:, None]]  # row by row: size then its nodes
    is_node = np.ones(len(flat), bool)
    is_node[np.cumsum(sizes + 1) - sizes - 1] = False  # the size entries
    conn = flat[is_node]
    if conn.size and (conn.min() < 0 or conn.max() >= count):
        raise InputError(f"{elem}: elements refer to nodes outside 0..{count - 1}; check it matches the .pts")
    grid = pv.UnstructuredGrid(flat, types, pts)
    grid.cell_data["elem_tag"] = tags
    return grid


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
