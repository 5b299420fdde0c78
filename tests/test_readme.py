"""The README's code blocks, run as a user would: in order, in one empty folder.

``bash`` blocks run with bash (``make`` lines are what CI itself runs; the ``pip`` block is run by
tests/test_install.py in a fresh environment), ``python`` blocks with this interpreter, a ``csv``
block is the ``cohort.csv`` the next block reads. ``text`` blocks are output or need files a
user brings (a label map, a SLURM cluster) and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[tuple[str, str, int]]:
    """(language, code, first line number) of every fenced block of the README."""
    out, lang, start, lines = [], None, 0, []
    for n, line in enumerate(README.read_text().splitlines(), start=1):
        if line.startswith("```"):
            if lang is None:
                lang, start, lines = line[3:].strip(), n, []
            else:
                out.append((lang, "\n".join(lines), start))
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def _commands(code: str) -> list[str]:
    return [c for c in (line.strip() for line in code.splitlines()) if c and not c.startswith("#")]


def kind(lang: str, code: str) -> str:
    """How the README test treats a block: run, manifest, ci (make), install (pip) or not code."""
    if lang == "bash":
        cmds = _commands(code)
        if all(c.startswith("make ") for c in cmds):
            return "ci"
        if any(c.startswith("pip install") for c in cmds):
            return "install"
        return "run"
    return {"python": "run", "csv": "manifest"}.get(lang, "text")


def test_every_code_block_is_runnable_as_written():
    found = {kind(lang, code) for lang, code, _ in blocks()}
    assert {"run", "ci", "install", "manifest"} <= found
    for lang, code, line in blocks():
        if lang in ("bash", "python"):
            # no placeholders a reader might paste: [--optional] groups or {a,b,c} choices
            assert not re.search(r"\[--|\{[a-z]+,[a-z]+", code), f"README.md:{line}: placeholder in a code block"
        assert lang in ("bash", "python", "csv", "text", ""), f"README.md:{line}: unknown block language {lang!r}"


@pytest.mark.slow
def test_the_readme_runs(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for lang, code, line in blocks():
        what = kind(lang, code)
        if what == "manifest":
            (tmp_path / "cohort.csv").write_text(code + "\n")
            continue
        if what != "run":
            continue
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, (
            f"README.md:{line} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    assert (tmp_path / "out_report" / "report.html").exists() and (tmp_path / "cohort_out" / "cohort.csv").exists()
