"""Install as a user would, into a fresh virtual environment: the README's pip block with the built
wheel, then ``synth`` and ``run`` with the installed command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import _commands, blocks, kind

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, **kwargs)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_environment_and_runs(tmp_path):
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(ROOT)])
    (wheel,) = (tmp_path / "dist").glob("pycemrg_scar_reconstruction-*.whl")
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")])
    bin_ = tmp_path / "venv" / "bin"
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(tmp_path / "venv")}
    (block,) = [code for lang, code, _ in blocks() if kind(lang, code) == "install"]
    for command in _commands(block):
        command = command.split("#")[0].strip()
        # this machine reaches PyPI only (no PyTorch index): the same CPU build, pinned as the Makefile does
        command = command.replace(
            "pip install torch --index-url https://download.pytorch.org/whl/cpu", "pip install torch==2.13.0"
        )
        command = command.replace('".[cohort,itk]"', f'"{wheel}[cohort,itk]"')
        done = _run(["bash", "-euo", "pipefail", "-c", command], env=env, cwd=tmp_path)
        if command.startswith("scar-reconstruct --version"):
            assert done.stdout.strip() == f"scar-reconstruct {version}"
    # the installed package is typed and a user's run works
    site = _run(
        [
            str(bin_ / "python"),
            "-c",
            "import pycemrg_scar_reconstruction as p, pathlib; print(pathlib.Path(p.__file__).parent)",
        ]
    )
    assert (Path(site.stdout.strip()) / "py.typed").exists()
    _run([str(bin_ / "scar-reconstruct"), "synth", "--output-dir", "case", "--n-nodes", "4000"], cwd=tmp_path, env=env)
    run = ["run", "--mesh", "case/mesh.vtu", "--image", "case/lge.nii.gz", "--slice-thickness", "8", "--output", "out.vtu"]
    _run([str(bin_ / "scar-reconstruct"), *run, "--max-epochs", "20", "-q"], cwd=tmp_path, env=env)
    assert (tmp_path / "out.vtu").exists() and (tmp_path / "out_report" / "report.html").exists()
