"""Every benchmark and example script still imports and parses its options (they are not run here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Every script (helper modules such as ``_cases.py`` start with an underscore and have no command line).
SCRIPTS = sorted([*ROOT.glob("benchmarks/[!_]*.py"), ROOT / "examples" / "demo.py"])


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script: Path):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout


def test_every_benchmark_is_listed_for_developers():
    """docs/developer.md's table names every script in benchmarks/ (what each answers)."""
    page = (ROOT / "docs" / "developer.md").read_text()
    missing = [p.name for p in SCRIPTS if p.parent.name == "benchmarks" and f"`{p.name}`" not in page]
    assert not missing, f"add to docs/developer.md's benchmark table: {missing}"
