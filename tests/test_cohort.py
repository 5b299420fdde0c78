"""Cohorts: manifests read with the ``run`` options, patients on Dask, failures recorded, resume."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.manifest import read_manifest


def _write(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


@pytest.fixture
def files(small_case, tmp_path):
    """The small case's files copied next to a manifest, so that relative paths are short."""
    for name in ("mesh", "image", "mask"):
        src = Path(small_case[name])
        (tmp_path / src.name).write_bytes(src.read_bytes())
    return tmp_path


def test_csv_and_yaml_manifests_give_the_same_run_options(files):
    csv_m = _write(
        files / "m.csv",
        """
id,mesh,image,mask,slice_thickness,align_slices,max_epochs,truth
a,mesh.vtu,lge.nii.gz;lge.nii.gz,lge_mask.nii.gz,8;6,true,30,scar_truth
""",
    )
    yaml_m = _write(
        files / "m.yaml",
        """
patients:
  - id: a
    mesh: mesh.vtu
    image: [lge.nii.gz, lge.nii.gz]
    mask: lge_mask.nii.gz
    slice_thickness: [8, 6]
    align_slices: true
    max_epochs: 30
    truth: scar_truth
""",
    )
    (a,), (b,) = read_manifest(csv_m), read_manifest(yaml_m)
    assert a.error is None and a.argv == b.argv and a.truth == b.truth == "scar_truth"
    argv = list(a.argv)
    # paths made absolute against the manifest's folder; one --image (and thickness) per stack
    assert argv[argv.index("--mesh") + 1] == str(files / "mesh.vtu")
    assert [argv[i + 1] for i, v in enumerate(argv) if v == "--image"] == [str(files / "lge.nii.gz")] * 2
    assert [argv[i + 1] for i, v in enumerate(argv) if v == "--slice-thickness"] == ["8", "6"]
    assert "--align-slices" in argv and "--max-epochs" in argv


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "id,mesh,image,slice_thicknes\na,mesh.vtu,lge.nii.gz,8",
            "unknown column 'slice_thicknes'; did you mean 'slice_thickness'",
        ),
        ("id,mesh,image\na,mesh.vtu,lge.nii.gz\na,mesh.vtu,lge.nii.gz", "ids a appear more than once"),
        ("id,mesh,image,output\na,mesh.vtu,lge.nii.gz,x.vtu", "column 'output' is set by the cohort"),
        ("id,mesh,image\n../x,mesh.vtu,lge.nii.gz", "is not usable as a folder name"),
        ("id,mesh,image\n", "no patients in the manifest"),
    ],
)
def test_a_manifest_that_cannot_be_used_is_refused_whole(files, text, message):
    path = _write(files / "m.csv", text)
    with pytest.raises(InputError, match=message):
        read_manifest(path)
    assert main(["cohort", "--manifest", str(path), "--output-dir", str(files / "out")]) == 2
    assert not (files / "out").exists()  # before any work


def test_bad_rows_are_named_one_line_each(files):
    path = _write(
        files / "m.csv",
        """
id,mesh,image,slice_thickness,align_slices,border_threshold
ok,mesh.vtu,lge.nii.gz,8,,
gone,mesh.vtu,nothere.nii.gz,8,,
word,mesh.vtu,lge.nii.gz,eight,,
flag,mesh.vtu,lge.nii.gz,8,maybe,
range,mesh.vtu,lge.nii.gz,8,,1.5
""",
    )
    rows = {p.id: p for p in read_manifest(path)}
    assert rows["ok"].error is None
    assert "row 2 (gone): 'image' nothere.nii.gz: not found" in str(rows["gone"].error)
    assert "--slice-thickness: invalid float value: 'eight'" in str(rows["word"].error)
    assert "'align_slices' is 'maybe'; use true or false" in str(rows["flag"].error)
    assert "--border-threshold" in str(rows["range"].error)
    assert all("\n" not in str(p.error) for p in rows.values())


def test_strict_refuses_the_manifest_with_one_error_line_per_bad_row(files, capsys):
    path = _write(
        files / "m.csv",
        """
id,mesh,image,slice_thickness
ok,mesh.vtu,lge.nii.gz,8
gone,mesh.vtu,nothere.nii.gz,8
lost,nothere.vtu,lge.nii.gz,8
""",
    )
    assert main(["cohort", "--manifest", str(path), "--output-dir", str(files / "out"), "--strict"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "(gone)" in lines[0] and "(lost)" in lines[1]
    assert not (files / "out").exists()


def test_the_key_changes_with_an_input_byte_and_with_an_option(files):
    text = "id,mesh,image,slice_thickness\na,mesh.vtu,lge.nii.gz,8"
    key = read_manifest(_write(files / "m.csv", text))[0].key()
    assert read_manifest(files / "m.csv")[0].key() == key
    assert read_manifest(_write(files / "m.csv", text.replace(",8", ",7")))[0].key() != key
    _write(files / "m.csv", text)
    mesh = files / "mesh.vtu"
    mesh.write_bytes(mesh.read_bytes() + b" ")
    assert read_manifest(files / "m.csv")[0].key() != key


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_a_cohort_runs_the_good_patients_records_the_bad_and_resumes(files):
    manifest = _write(
        files / "m.csv",
        """
id,mesh,image,slice_thickness,max_epochs,truth,device,calibrate,folds,simulate
good1,mesh.vtu,lge.nii.gz,8,30,scar_truth,,,,
missing,mesh.vtu,nothere.nii.gz,8,30,scar_truth,,,,
badopt,mesh.vtu,lge.nii.gz,8,30,scar_truth,cuda,,,
good2,mesh.vtu,lge.nii.gz,6,30,scar_truth,,true,2,true
""",
    )
    out = files / "out"
    cmd = [sys.executable, "-m", "pycemrg_scar_reconstruction.cli", "cohort", "--manifest", str(manifest)]
    cmd += ["--output-dir", str(out), "--workers", "2"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stderr
    assert "4 patients: 2 done, 0 skipped, 2 failed" in first.stdout
    assert "Traceback" not in first.stderr
    rows = _rows(out / "cohort.csv")
    assert [rows[i]["status"] for i in ("good1", "missing", "badopt", "good2")] == ["done", "failed", "failed", "done"]
    assert "nothere.nii.gz: not found" in rows["missing"]["error"]
    assert "no CUDA device is available here" in rows["badopt"]["error"]
    for good in ("good1", "good2"):
        assert float(rows[good]["dice"]) > 0.6 and int(rows[good]["nodes"]) > 0
        assert (out / good / "scar.vtu").exists() and (out / good / "scar_report" / "report.json").exists()
    assert rows["good1"]["holdout_dice"] == "" and 0 <= float(rows["good2"]["holdout_mae"]) <= 1  # calibrate: held-out
    assert rows["good1"]["simulated_dice"] == "" and 0 <= float(rows["good2"]["simulated_dice"]) <= 1
    assert rows["good1"]["calibration_ece"] == "" and 0 <= float(rows["good2"]["calibration_ece"]) <= 0.5
    assert rows["good2"]["misregistration_mm"] == ""  # no mask, nothing measured
    assert "good1" in (out / "cohort.html").read_text()

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1, again.stderr
    rows2 = _rows(out / "cohort.csv")
    assert rows2["good1"]["status"] == rows2["good2"]["status"] == "skipped"
    assert rows2["good1"]["dice"] == rows["good1"]["dice"]
    assert rows2["badopt"]["status"] == "failed"  # failures are tried again


@pytest.mark.slow
def test_a_patient_whose_worker_is_killed_is_retried_and_completes(files):
    import dask
    from distributed import Client, LocalCluster

    from pycemrg_scar_reconstruction.cohort import run_cohort
    from pycemrg_scar_reconstruction.config import CohortConfig

    manifest = _write(files / "m.csv", "id,mesh,image,slice_thickness,max_epochs\np,mesh.vtu,lge.nii.gz,8,60")
    out = files / "out"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(r=run_cohort(manifest, out, CohortConfig(scheduler=cluster.scheduler_address)))
    )
    try:
        thread.start()
        deadline = time.time() + 300
        while not (out / "p" / ".attempts").exists():  # the patient has started on the worker
            assert time.time() < deadline
            time.sleep(0.2)
        time.sleep(1.0)
        (pid,) = client.run(os.getpid).values()
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=600)
    finally:
        client.close()
        cluster.close()
    (row,) = result["r"].rows
    assert row["status"] == "done" and row["attempts"] == 2, row
    assert not [f for f in (out / "p").rglob(".*") if f.name != ".attempts"]  # no temporary file left


def test_the_cohort_page_leaves_out_columns_no_patient_has(tmp_path):
    """cohort.html: a column empty for every patient (no truths: no Dice) is not drawn, the others are,
    their names may break after an underscore; one patient's burden is drawn (a bar, not a histogram)."""
    from pycemrg_scar_reconstruction.cohort import COLUMNS, write_summary

    done = {**dict.fromkeys(COLUMNS, ""), "id": "p1", "status": "done", "seconds": 12.5, "nodes": 900}
    done |= {"group_rmse": 0.061, "core_share": 0.031, "core_ml": 5.1, "output": "p1/scar.vtu"}
    failed = {**dict.fromkeys(COLUMNS, ""), "id": "p2", "status": "failed", "error": "p2/lge.nii.gz: not found"}
    write_summary([done, failed], tmp_path / "cohort.html", "Cohort m.csv")
    page = (tmp_path / "cohort.html").read_text()
    heads = page.split("<thead>")[1].split("</thead>")[0]
    assert ">group_<wbr>rmse<" in heads and ">core_<wbr>share<" in heads and ">error<" in heads
    assert ">dice<" not in heads and "holdout" not in heads and ">output<" not in heads
    assert "not found" in page and page.count("data:image/png;base64,") == 1
