"""No output is ever written over an input; what VTK says becomes one line; flagged inputs get one
warning line; --log-file gets the run's INFO lines. (The CLI cases of every command are in the
bad-input corpus, ``tests/hostile.py``.)"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import MeshConfig, PredictConfig, TrainConfig
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.io.paths import refuse_overwrite, same_file
from tests.conftest import write_dicom_series


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_same_file_by_every_spelling(tmp_path, monkeypatch):
    a = tmp_path / "a.vtu"
    a.write_text("x")
    (tmp_path / "link.vtu").symlink_to(a)
    os.link(a, tmp_path / "hard.vtu")
    monkeypatch.chdir(tmp_path)
    for other in (
        Path("a.vtu"),
        Path("./a.vtu"),
        tmp_path / "sub" / ".." / "a.vtu",
        tmp_path / "link.vtu",
        tmp_path / "hard.vtu",
    ):
        assert same_file(a, other), other
    assert not same_file(a, tmp_path / "b.vtu")
    assert same_file(tmp_path / "new.vtu", Path("new.vtu"))  # neither exists: by absolute path


def test_opencarp_sets_are_compared_whole(tmp_path):
    with pytest.raises(
        InputError, match=r"heart\.pts: the output .* over the mesh .*heart\.elem.*no output may be an input"
    ):
        refuse_overwrite([("output", tmp_path / "heart.pts")], [("mesh", tmp_path / "heart.elem")])
    with pytest.raises(InputError, match="scar.dat"):  # the NAME.<array>.dat files of the output
        refuse_overwrite([("output", tmp_path / "heart.pts")], [("values", tmp_path / "heart.scar.dat")])
    refuse_overwrite([("output", tmp_path / "out.pts")], [("mesh", tmp_path / "heart.pts")])  # other names: fine


def test_the_api_refuses_an_output_that_is_its_input(small_case, tmp_path):
    from pycemrg_scar_reconstruction.api import predict, prepare, train
    from pycemrg_scar_reconstruction.config import PrepareConfig, StackConfig

    mesh = MeshConfig(path=small_case["mesh"])
    config = PrepareConfig(mesh=mesh, stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0)])
    before = _digest(small_case["mesh"])
    with pytest.raises(InputError, match="no output may be an input"):
        prepare(config, output=small_case["mesh"])
    data = prepare(config, output=tmp_path / "d.npz")
    with pytest.raises(InputError, match="no output may be an input"):
        train(tmp_path / "d.npz", TrainConfig(max_epochs=1), output=tmp_path / "d.npz")
    fitted = train(data, TrainConfig(max_epochs=1))
    with pytest.raises(InputError, match="no output may be an input"):
        predict(fitted, mesh, small_case["mesh"], PredictConfig(mc_samples=2))
    assert _digest(small_case["mesh"]) == before


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a child process: stderr as a user sees it (no test harness logging in between)."""
    return subprocess.run(
        [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_vtk_messages_become_the_one_error_line(small_case, tmp_path):
    mesh = small_case["mesh"]
    (tmp_path / "trunc.vtu").write_bytes(mesh.read_bytes()[:5000])
    (tmp_path / "renamed.stl").write_bytes(mesh.read_bytes())
    (tmp_path / "garbage.vti").write_bytes(np.random.default_rng(0).bytes(3000))
    image = ["--image", str(small_case["image"]), "--slice-thickness", "8"]
    runs = {
        "trunc.vtu": ["prepare", "--mesh", "trunc.vtu", *image, "--output", "d.npz"],
        "renamed.stl": ["prepare", "--mesh", "renamed.stl", *image, "--output", "d.npz", "-v"],
        "garbage.vti": [
            "prepare",
            "--mesh",
            str(mesh),
            "--image",
            "garbage.vti",
            "--slice-thickness",
            "8",
            "--output",
            "d.npz",
        ],
    }
    for name, argv in runs.items():
        done = _cli(*argv, cwd=tmp_path)
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        assert done.returncode == 2, (name, done.stderr)
        assert len(lines) == 1 and lines[0].startswith(f"error: {name}: cannot read") and "(VTK: " in lines[0], done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(runs)  # nothing left behind, no lock


def test_nan_pixels_are_named_in_one_warning(small_case, tmp_path):
    import nibabel as nib

    img = nib.load(str(small_case["image"]))
    values = np.asarray(img.dataobj, np.float32)
    values[:3, :3, 0] = np.nan
    nib.save(nib.Nifti1Image(values, img.affine), str(tmp_path / "nan.nii.gz"))
    done = _cli(
        "prepare",
        "--mesh",
        str(small_case["mesh"]),
        "--image",
        "nan.nii.gz",
        "--slice-thickness",
        "8",
        "--output",
        "d.npz",
        cwd=tmp_path,
    )
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 0, done.stderr
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "9 NaN pixels" in lines[0], done.stderr


def test_a_dicom_file_left_out_of_the_series_is_named(small_case, tmp_path):
    from pycemrg_scar_reconstruction.io.images import load_image

    folder = write_dicom_series(small_case["mask"], tmp_path / "dicom")
    (folder / "s999.dcm").write_bytes((folder / "slice000.dcm").read_bytes()[:200])  # a truncated file
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("pycemrg_scar_reconstruction.io.images")
    log.addHandler(handler)
    try:
        values, _ = load_image(folder)
    finally:
        log.removeHandler(handler)
    assert values.shape[2] == len(list(folder.glob("slice*.dcm")))
    assert len(records) == 1 and "1 file(s)" in records[0] and "s999.dcm" in records[0]


def test_log_file_gets_the_info_lines_and_the_result(small_case, tmp_path):
    argv = ["prepare", "--mesh", str(small_case["mesh"]), "--image", str(small_case["image"]), "--slice-thickness", "8"]
    assert main([*argv, "--output", str(tmp_path / "d.npz"), "--log-file", str(tmp_path / "run.log"), "-q"]) == 0
    text = (tmp_path / "run.log").read_text()
    for stage in ("read", "overlap", "align", "tissue", "targets", "memberships"):
        assert f"INFO pycemrg_scar_reconstruction.api.prepare: prepare: {stage} in" in text
    assert "supervised nodes:" in text  # the summary a person reads on stdout
