"""The reliability promise, case by case: every bad input gives exit 2, one line ``error: ...``,
no traceback, and leaves the folder as it was (see tests/hostile.py for the corpus)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pycemrg_scar_reconstruction.api import predict, prepare, synth, train
from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import (
    MeshConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    SynthConfig,
    TrainConfig,
)
from tests.conftest import SMALL
from tests.hostile import CASES, COMMANDS


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small good patient: mesh.vtu, lge.nii.gz, lge_mask.nii.gz, data.npz, model.pt, out.vtu."""
    d = tmp_path_factory.mktemp("good")
    files = synth(SynthConfig(seed=5, **SMALL), d)
    mesh = MeshConfig(path=files["mesh"])
    config = PrepareConfig(mesh=mesh, stacks=[StackConfig(path=files["image"], slice_thickness=8.0)])
    data = prepare(config, d / "data.npz")
    quiet = RuntimeConfig(quiet=True)
    fitted = train(data, TrainConfig(max_epochs=5), d / "model.pt", quiet)
    predict(fitted, mesh, d / "out.vtu", PredictConfig(mc_samples=2), quiet)
    return d


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) -> a digest of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_one_error_line_and_changes_nothing(name, good, tmp_path, capfd):
    for f in good.iterdir():
        if f.is_file():
            shutil.copy2(f, tmp_path / f.name)
    argv = CASES[name](tmp_path)
    assert COMMANDS[name] in argv[:3]  # general options may come before the command
    before = snapshot(tmp_path)
    capfd.readouterr()
    code = main(argv)
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert "Traceback" not in err + out
    assert snapshot(tmp_path) == before


def test_the_corpus_covers_every_command():
    from pycemrg_scar_reconstruction.cli.parser import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS.values()) == set(sub.choices)  # type: ignore[arg-type]
    assert len(CASES) >= 40


def test_an_unwritable_folder_is_refused_before_any_work(good, tmp_path, capfd):
    if os.geteuid() == 0:
        pytest.skip("root may write into any folder: an unwritable folder cannot be made here")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code = main(["train", "--data", str(good / "data.npz"), "--output", str(ro / "m.pt")])
    finally:
        ro.chmod(0o755)
    assert code == 2 and "not writable" in capfd.readouterr().err


def test_a_fit_without_a_finite_loss_fails_and_saves_nothing(good, tmp_path, monkeypatch, capfd):
    import torch

    import pycemrg_scar_reconstruction.training as training

    monkeypatch.setattr(training, "group_loss", lambda pred, *a: pred.sum() * torch.tensor(float("nan")))
    code = main(["train", "--data", str(good / "data.npz"), "--output", str(tmp_path / "m.pt"), "--max-epochs", "3"])
    err = capfd.readouterr().err
    assert code == 2 and "never reached a finite group loss" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("errno_, words", [(28, "disk is full"), (30, "read-only")])
def test_a_failing_write_gives_one_line_and_leaves_no_file(good, tmp_path, monkeypatch, capfd, errno_, words):
    import numpy as np

    real = np.savez

    def failing(file, **arrays):
        real(file, **arrays)  # the bytes are there, then the device fails
        raise OSError(errno_, os.strerror(errno_), str(file))

    monkeypatch.setattr(np, "savez", failing)
    argv = ["prepare", "--mesh", str(good / "mesh.vtu"), "--image", str(good / "lge.nii.gz")]
    code = main([*argv, "--slice-thickness", "8", "--output", str(tmp_path / "d.npz")])
    err = capfd.readouterr().err
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_a_killed_write_leaves_the_old_output_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from pycemrg_scar_reconstruction.io.paths import atomic_output\n"
        "with atomic_output(Path(sys.argv[1])) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert target.read_text() == "old"
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".out.json.")]
    assert len(stale) == 1
    from pycemrg_scar_reconstruction.io.paths import write_json

    write_json({"new": 1}, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_second_writer_of_the_same_output_is_refused(good, tmp_path, capfd):
    out = tmp_path / "m.pt"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pycemrg_scar_reconstruction.io.paths import output_lock\n"
            "with output_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code = main(["train", "--data", str(good / "data.npz"), "--output", str(out), "--max-epochs", "2"])
        err = capfd.readouterr().err
        assert code == 2 and "another process is writing this output" in err
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder: the next writer goes ahead and leaves no lock file behind
    assert main(["train", "--data", str(good / "data.npz"), "--output", str(out), "--max-epochs", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.history.json", "m.pt"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_saves_the_best_epoch(good, tmp_path, sig, code):
    import torch

    from pycemrg_scar_reconstruction.io.artifacts import load_model

    out = tmp_path / "m.pt"
    cmd = [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "-v", "train", "--data", str(good / "data.npz")]
    cmd += ["--output", str(out), "--max-epochs", "100000", "--patience", "100000", "--deterministic"]
    # a shell without job control starts background jobs with SIGINT ignored, and Python then
    # keeps it ignored: give the child the default, as a terminal would
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until training runs
        if "parameters on" in line:
            break
    time.sleep(3.0)
    proc.send_signal(sig)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == code, rest
    lines = [line for line in rest.splitlines() if line.strip() and not line.startswith("info: ")]  # -v
    assert len(lines) == 1, rest
    word = "terminated" if sig == signal.SIGTERM else "interrupted"
    assert lines[0].startswith(f"{word} during epoch") and f"saved to {out}" in lines[0], rest
    fitted = load_model(out)
    assert fitted.stop_reason == "interrupted" and fitted.best_epoch >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the same fit stopped at the best epoch has the same weights
    again = tmp_path / "again.pt"
    cmd2 = [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "train", "--data", str(good / "data.npz")]
    cmd2 += ["--output", str(again), "--max-epochs", str(fitted.best_epoch), "--patience", "100000"]
    assert subprocess.run([*cmd2, "--deterministic"], timeout=600).returncode == 0
    ref = load_model(again)
    assert ref.best_epoch == fitted.best_epoch
    a, b = fitted.net.state_dict(), ref.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_json_is_strict_nan_becomes_null(tmp_path):
    """report.json and --json stay strict JSON (no NaN literal a browser or jq would refuse)."""
    import json

    from pycemrg_scar_reconstruction.io.paths import json_text, write_json

    obj = {"a": float("nan"), "b": [1.0, np.inf, np.float32("nan")], "c": np.array([0.5, np.nan]), "d": 2}
    write_json(obj, tmp_path / "x.json")
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": [0.5, None], "d": 2}
    assert json.loads(json_text(obj)) == json.loads(text)
