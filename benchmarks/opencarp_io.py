"""openCARP ``.elem`` reading and writing at scale: the package's vectorised reader and writer
against a line-by-line reader (what the package did before), in one run.

    .venv/bin/python benchmarks/opencarp_io.py [--elements 2000000]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from pycemrg_scar_reconstruction.io.opencarp import _read_elements, write_opencarp_elements


def line_by_line(path: Path) -> tuple[list[list[int]], list[int]]:
    """The reference: one Python split per line."""
    cells, tags = [], []
    with open(path) as f:
        f.readline()
        for line in f:
            tok = line.split()
            cells.append([int(t) for t in tok[1:5]])
            tags.append(int(tok[5]))
    return cells, tags


def savetxt_writer(conn: np.ndarray, tags: np.ndarray, path: Path) -> None:
    """The reference writer (what the package did before): savetxt, then a prefix per line."""
    buf = io.StringIO()
    np.savetxt(buf, np.column_stack([conn, tags]), fmt="%d")
    lines = [f"Tt {row}" for row in buf.getvalue().splitlines()]
    path.write_text(f"{len(lines)}\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=2_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_nodes = args.elements // 5 + 4
    points = rng.normal(size=(n_nodes, 3))
    conn = rng.integers(0, n_nodes, size=(args.elements, 4))
    offsets = np.arange(args.elements + 1) * 4
    types = np.full(args.elements, 10, np.uint8)  # VTK tetra
    tags = rng.integers(1, 4, size=args.elements).astype(np.int32)
    print(f"elements: {args.elements} tetrahedra; load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.elem"
        t0 = time.perf_counter()
        write_opencarp_elements(offsets, conn.ravel(), types, tags, path)
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        savetxt_writer(conn, tags, Path(tmp) / "ref.elem")
        t_ref_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        grid = _read_elements(path, points)
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref_cells, ref_tags = line_by_line(path)
        t_ref = time.perf_counter() - t0
        assert np.array_equal(np.asarray(grid.cell_data["elem_tag"]), np.asarray(ref_tags))
        assert np.array_equal(np.asarray(grid.cells).reshape(-1, 5)[:, 1:], np.asarray(ref_cells))
    print(
        f"| step | seconds |\n|---|---|\n| write (package) | {t_write:.2f} |\n| read (package, vectorised) | {t_read:.2f} |"
    )
    print(f"| write (savetxt + a prefix per line, reference) | {t_ref_write:.2f} |")
    print(f"| read (line by line, reference) | {t_ref:.2f} |")
    print(f"vectorised write: {t_ref_write / t_write:.1f}x faster than the reference")
    print(f"vectorised read: {t_ref / t_read:.1f}x faster than line by line (same cells and tags)")


if __name__ == "__main__":
    main()
