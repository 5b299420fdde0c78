"""The real human case end to end: it runs, passes its group check and gives back its own scar.

The data are the project's shared real case (``../shared/data/real/human_p1`` beside the clone,
as CI has it); they are read where they lie and never copied into the repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.io.artifacts import load_training_data
from pycemrg_scar_reconstruction.metrics import dice

CASE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "human_p1"


@pytest.mark.slow
def test_the_human_case_runs_end_to_end_and_gives_back_its_scar(tmp_path, capsys):
    assert (CASE / "sa_labels.nii.gz").exists(), f"{CASE}: the shared real case is missing"
    out = tmp_path / "p1.vtu"
    argv = ["run", "--mesh", str(CASE / "mesh.vtu"), "--image", str(CASE / "sa_labels.nii.gz"), "--target", "label"]
    argv += ["--scar-label", "2", "--myocardium-labels", "1,2", "--slice-thickness", "8", "--region-array", "is_LV"]
    # one thread: bit-identical across processes (and, on this project's CPU, the same as two), so the
    # figures below are the ones measured
    assert main([*argv, "--output", str(out), "--deterministic", "-q"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "p1_report" / "report.json").read_text())
    assert report["passed"] and report["overall"]["share_within"] > 0.95  # measured: 0.967
    assert report["registration"]["moved_mm"] < 1.0 and not report["registration"]["applied"]  # measured: 0.2 mm
    # a real heart is not round about its long axis: the masks fix the turn (measured 0.023; synthetic <= 0.0031)
    assert report["registration"]["turn_dice_drop"] > 0.01 and not report["registration"]["turn_weakly_fixed"]
    data = load_training_data(tmp_path / "p1_data.npz")
    probability = np.asarray(pv.read(str(out)).point_data["scar_probability"], np.float64)
    # its own training slices' scar (group means >= 0.5 against the label), issue 29's 0.95: measured
    # 0.951 (0.958 with torch's sigmoid on one thread; 0.924 before the Fourier frequencies of this
    # 76 mm mesh were held at those of a 55 mm one)
    assert dice(data.group_mean(probability), data.group_target) >= 0.95
    assert int((data.group_target >= 0.5).sum()) == 135
    # the report says the same of the written result (its probabilities are rounded to float32 there)
    assert report["scar"]["pixels"] == 135
    assert report["scar"]["dice"] == pytest.approx(dice(data.group_mean(probability), data.group_target), abs=0.01)
