"""Held-out accuracy: folds of whole slices, held-out group means, neighbour baselines, calibration."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pycemrg_scar_reconstruction.api import prepare
from pycemrg_scar_reconstruction.cli import main
from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, RuntimeConfig, StackConfig, TrainConfig
from pycemrg_scar_reconstruction.folds import subset
from pycemrg_scar_reconstruction.heldout import crossval, neighbour_baselines, slice_folds, view_folds


@pytest.fixture(scope="module")
def data(small_case):
    config = PrepareConfig(
        mesh=MeshConfig(path=small_case["mesh"]),
        stacks=[StackConfig(path=small_case["image"], slice_thickness=8.0, mask=small_case["mask"])],
    )
    return prepare(config)


def test_folds_partition_whole_slices(data):
    fold = slice_folds(data)
    pairs = {(int(s), int(k)) for s, k in zip(data.group_stack, data.group_slice)}
    assert len(np.unique(fold)) == len(pairs)
    for f in np.unique(fold):  # each fold is exactly one slice
        assert len({(int(s), int(k)) for s, k in zip(data.group_stack[fold == f], data.group_slice[fold == f])}) == 1
    grouped = slice_folds(data, 3)
    assert set(np.unique(grouped)) == {0, 1, 2}
    for s, k in pairs:  # a slice is never split between folds
        assert len(np.unique(grouped[(data.group_stack == s) & (data.group_slice == k)])) == 1
    assert np.array_equal(view_folds(data), data.group_stack)


def test_a_fold_never_sees_its_held_out_groups(data):
    held = slice_folds(data) == 2
    train = subset(data, ~held)
    assert train.n_groups == int((~held).sum())
    assert train.n_members == int(data.group_count[~held].sum())
    np.testing.assert_array_equal(train.group_target, data.group_target[~held])
    held_keys = {tuple(v) for v in data.group_voxel[held]}
    assert not held_keys & {tuple(v) for v in train.group_voxel}
    # the kept groups hold the same nodes as before
    node_values = np.random.default_rng(0).random(data.n_nodes)
    np.testing.assert_allclose(train.group_mean(node_values), data.group_mean(node_values)[~held])


def test_neighbour_baselines_by_hand(data):
    g = data.stacks[0]
    k = g.n_slices // 2
    held = (data.group_stack == 0) & (data.group_slice == k)
    base = neighbour_baselines(data, held)
    lookup = {tuple(v): t for v, t in zip(data.group_voxel, data.group_target)}
    checked = 0
    for j, v in enumerate(data.group_voxel[held]):
        below, above = v.copy(), v.copy()
        below[g.axis] -= 1
        above[g.axis] += 1
        if tuple(below) in lookup and tuple(above) in lookup:
            assert base["nearest"][j] == pytest.approx(lookup[tuple(below)])
            assert base["linear"][j] == pytest.approx(0.5 * (lookup[tuple(below)] + lookup[tuple(above)]))
            checked += 1
    assert checked > 10


def test_neighbour_baselines_follow_the_slice_offsets(data):
    """The same pixels moved by whole pixels per slice, with those breath-hold offsets given, give
    the same neighbour baselines; without the offsets they do not."""
    import dataclasses

    g = data.stacks[0]
    a, b = g.inplane
    rng = np.random.default_rng(1)
    shifts = rng.integers(-2, 3, size=(g.n_slices, 2))
    assert data.group_voxel[:, [a, b]].min() >= 2 and (np.asarray(g.shape)[[a, b]] - data.group_voxel[:, [a, b]]).min() > 2
    voxel = data.group_voxel.copy()
    voxel[:, [a, b]] += shifts[data.group_voxel[:, g.axis]]  # the heart at x + d_k in slice k
    offsets = np.column_stack([shifts * g.spacing[[a, b]], np.zeros(g.n_slices)])
    moved = dataclasses.replace(data, group_voxel=voxel, stacks=(g.with_offsets(offsets),))
    unaligned = dataclasses.replace(data, group_voxel=voxel)
    k = g.n_slices // 2
    held = (data.group_stack == 0) & (data.group_slice == k)
    expected = neighbour_baselines(data, held)
    for name, values in neighbour_baselines(moved, held).items():
        np.testing.assert_array_equal(values, expected[name])
        assert not np.array_equal(neighbour_baselines(unaligned, held)[name], expected[name], equal_nan=True)


def test_untraced_end_slices_make_the_labelled_ends_the_extrapolated_ones(data):
    """A real stack's basal and apical slices are often untraced: its first and last labelled
    slices are then the ends (extrapolation), and no gap fold leaves out a slice with no labelled
    slice on one side."""
    from pycemrg_scar_reconstruction.heldout import end_slices, gap_folds, labelled_slices

    n = data.stacks[0].n_slices
    assert end_slices(data) == {(0, 0), (0, n - 1)}
    traced = subset(data, (data.group_slice >= 1) & (data.group_slice <= n - 2))  # slices 0 and n - 1 untraced
    np.testing.assert_array_equal(labelled_slices(traced)[0], np.arange(1, n - 1))
    assert end_slices(traced) == {(0, 1), (0, n - 2)}
    folds = gap_folds(traced)
    alone = [sorted(set(traced.group_slice[held])) for gap, held in folds if gap == 2]
    pairs = [sorted(set(traced.group_slice[held])) for gap, held in folds if gap == 3]
    assert alone == [[k] for k in range(2, n - 2)]  # slice 1 has no labelled slice before it
    assert pairs == [[k, k + 1] for k in range(2, n - 3)]
    # on the full stack, the folds are what they were before labelled slices counted: 1 .. n - 2
    assert [sorted(set(data.group_slice[h])) for g, h in gap_folds(data, (2,))] == [[k] for k in range(1, n - 1)]


def test_crossval_reports_held_out_figures(data, tmp_path, capsys):
    config = TrainConfig(max_epochs=15, batch_size=1024)
    result = crossval(data, config, RuntimeConfig(quiet=True), folds=3, mc_samples=5)
    assert len(result["per_fold"]) == 3 and result["pixels"] == data.n_groups
    assert 0 <= result["holdout_mae"] <= 1 and result["holdout_rmse"] >= result["holdout_mae"]
    assert set(result["baseline_dice"]) == {"nearest", "linear"}
    assert result["interior"]["pixels"] + result["end"]["pixels"] == data.n_groups
    assert result["end"]["pixels"] > 0  # the first and last slices are extrapolation
    assert result["scar_pixels"] == int(np.sum(data.group_target >= 0.5)) > 0
    assert result["interior"]["scar"] + result["end"]["scar"] == result["scar_pixels"]
    # average precision: a reconstruction ranks the held-out scar far above the scar's share, which
    # is what values in random order would score
    share = result["scar_pixels"] / result["pixels"]
    assert 2 * share < result["holdout_average_precision"] <= 1
    assert set(result["baseline_average_precision"]) == {"nearest", "linear"}
    from pycemrg_scar_reconstruction.metrics import format_heldout

    lines = format_heldout(result)
    assert f"({result['scar_pixels']} scar)" in lines[0]
    assert f"AP {result['holdout_average_precision']:.3f}" in lines[0]
    no_scar = {**result, "end": {**result["end"], "scar": 0}}  # Dice 1 by convention there: the line says why
    assert "no scar held out" in format_heldout(no_scar)[2]
    from pycemrg_scar_reconstruction.io.artifacts import save_training_data

    save_training_data(data, tmp_path / "d.npz")
    out = tmp_path / "cv.json"
    argv = ["crossval", "--data", str(tmp_path / "d.npz"), "--folds", "2", "--max-epochs", "5", "-q"]
    assert main([*argv, "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert {"holdout_dice", "holdout_mae", "holdout_rmse", "baseline_dice", "per_fold", "seconds"} <= set(saved)
    assert "held-out pixels" in capsys.readouterr().out


def test_run_calibrate_stores_the_recalibration_and_predict_applies_it(small_case, tmp_path):
    import dataclasses

    from pycemrg_scar_reconstruction.io.artifacts import load_model
    from pycemrg_scar_reconstruction.prediction import predict_nodes

    argv = ["run", "--mesh", str(small_case["mesh"]), "--image", str(small_case["image"]), "--slice-thickness", "8"]
    argv += ["--output", str(tmp_path / "o.vtu"), "--max-epochs", "8", "-q", "--calibrate", "--folds", "2"]
    argv += ["--mask", str(small_case["mask"]), "--measure-offsets", "--simulate"]
    assert main(argv) == 0
    fitted = load_model(tmp_path / "o_model.pt")
    report = json.loads((tmp_path / "o_report" / "report.json").read_text())
    stages = report["stage_seconds"]  # run's wall time per stage, in the order run does them
    assert list(stages) == ["prepare", "train", "calibrate", "predict", "report"] and min(stages.values()) > 0
    training = report["training"]  # where it was trained: the thread count moves where training stops
    assert training["threads"] == fitted.threads >= 1 and training["device"] == "cpu"
    mm = report["misregistration_mm"]  # measured, and what the simulation included
    assert 0 <= mm < 1.5 and report["heldout"]["simulated"]["misregistration_mm"] == mm
    measured = np.asarray(report["measured_offsets_mm"]["lge"])
    assert measured.shape == np.asarray(report["slice_offsets_mm"]["lge"]).shape
    assert np.sqrt(np.mean(np.sum(measured[:, :2] ** 2, axis=1))) == pytest.approx(mm, abs=0.01)  # none applied
    page = (tmp_path / "o_report" / "report.html").read_text()
    assert "measured di" in page and "Study registration: each masked slice" not in page  # measured, not applied
    cal = report["heldout"]["calibration"]
    assert fitted.uncertainty_factors == pytest.approx(cal["factors"]) and cal["factors"] != [1.0] * 3
    assert fitted.uncertainty_border == pytest.approx(cal["border"]) and fitted.uncertainty_floor > 0
    assert {"holdout_dice", "holdout_mae", "interior", "end", "baseline_dice"} <= set(report["heldout"])
    assert "Held-out" in (tmp_path / "o_report" / "report.html").read_text()
    assert (tmp_path / "o_report" / "calibration.png").stat().st_size > 1000  # the reliability diagram
    from pycemrg_scar_reconstruction.io.artifacts import load_training_data

    nodes = load_training_data(tmp_path / "o_data.npz").points
    calibrated = predict_nodes(fitted, nodes, 4, 0)
    as_is = dataclasses.replace(fitted, uncertainty_floor=0.0, uncertainty_border=0.0, uncertainty_factors=(1.0,) * 3)
    plain = predict_nodes(as_is, nodes, 4, 0)
    sup = calibrated.supervised.astype(bool)
    p = plain.probability[sup].astype(np.float64)
    border2 = fitted.uncertainty_border**2 * p * (1 - p)
    factor = np.asarray(cal["factors"])[np.digitize(p, (0.1, 0.9), right=True)]
    expected = factor * np.sqrt(fitted.uncertainty_floor**2 + plain.uncertainty[sup] ** 2 + border2)
    np.testing.assert_allclose(calibrated.uncertainty[sup], expected, rtol=1e-5, atol=1e-7)
    new_keys = ("uncertainty_floor", "uncertainty_border", "uncertainty_factors")
    earlier = {k: v for k, v in fitted.to_checkpoint().items() if k not in new_keys}
    older = type(fitted).from_checkpoint({**earlier, "uncertainty_scale": 2.5})  # a model calibrated by one scale
    assert (older.uncertainty_floor, older.uncertainty_border, older.uncertainty_factors) == (0.0, 0.0, (2.5,) * 3)


def test_a_slice_equal_to_its_neighbours_is_predicted_well(data):
    """Targets that depend only on the in-plane position (the same scar in every slice): a left-out
    slice equals its neighbours, so the baselines are exact and the network's held-out error small."""
    from dataclasses import replace

    g = data.stacks[0]
    a, _ = g.inplane
    ia = data.group_voxel[:, a]
    flat = replace(data, group_target=(ia < np.median(ia)).astype(np.float64))
    middle = (flat.group_slice >= 1) & (flat.group_slice <= g.n_slices - 2)
    k = int(np.median(flat.group_slice[middle]))
    held = flat.group_slice == k
    base = neighbour_baselines(flat, held)
    both = np.isfinite(base["linear"])
    np.testing.assert_allclose(base["linear"][both], flat.group_target[held][both])
    result = crossval(flat, TrainConfig(max_epochs=60, batch_size=1024), RuntimeConfig(quiet=True), folds=None, mc_samples=5)
    fold = next(f for f in result["per_fold"] if [0, k] in [list(s) for s in f["slices"]])
    assert fold["mae"] < 0.1 and fold["dice"] > 0.85, fold


def test_gap_predictions_leave_out_every_interior_slice(data):
    from pycemrg_scar_reconstruction.heldout import gap_predictions

    one = gap_predictions(data, TrainConfig(max_epochs=3, batch_size=1024), RuntimeConfig(quiet=True), 2, gaps=(2,))
    interior = (data.group_slice >= 1) & (data.group_slice <= data.stacks[0].n_slices - 2)
    assert set(one) == {2} and np.array_equal(np.isfinite(one[2][0]), interior)  # every interior slice, once


def test_the_simulated_accuracy_recovers_its_own_stand_in_truth(data, tmp_path, capsys):
    """The stand-in truth is the reconstruction thresholded; the targets are its group means plus
    noise of the fit's residual RMS; a retraining on them scores well against it."""
    from pycemrg_scar_reconstruction.io.artifacts import save_training_data
    from pycemrg_scar_reconstruction.prediction import predict_nodes
    from pycemrg_scar_reconstruction.simulated import simulated_targets
    from pycemrg_scar_reconstruction.training import fit

    config = TrainConfig(max_epochs=60, batch_size=1024)
    fitted = fit(data, config, RuntimeConfig(quiet=True), progress=False)
    truth, targets, sd = simulated_targets(data, fitted, 3, 0)
    p = predict_nodes(fitted, data.points, 3, 0).probability
    np.testing.assert_array_equal(truth, p >= 0.5)
    assert sd == pytest.approx(np.sqrt(np.mean((data.group_target - data.group_mean(p)) ** 2)))
    clean = data.group_mean(truth)
    assert 0.3 * sd < np.std(targets - clean) < 1.5 * sd and targets.min() >= 0 and targets.max() <= 1
    save_training_data(data, tmp_path / "d.npz")
    argv = ["crossval", "--data", str(tmp_path / "d.npz"), "--folds", "2", "--max-epochs", "60", "-q", "--simulate"]
    assert main([*argv, "--batch-size", "1024", "--json", str(tmp_path / "cv.json")]) == 0
    sim = json.loads((tmp_path / "cv.json").read_text())["simulated"]
    assert sim["dice"] > 0.7 and sim["mae"] < 0.1, sim
    assert sim["misregistration_mm"] is None  # prepared without measure_offsets, and the output says so
    assert "slices taken as registered; prepare with --measure-offsets" in capsys.readouterr().out


def test_folds_in_worker_processes_give_the_same_figures(data):
    """Two spawned one-thread workers against the folds one after another in this process
    (``deterministic``: one thread everywhere; the figures agree to float rounding)."""
    config, runtime = TrainConfig(max_epochs=4, batch_size=1024), RuntimeConfig(quiet=True, deterministic=True)
    serial = crossval(data, config, runtime, folds=2, mc_samples=3, workers=1)
    parallel = crossval(data, config, runtime, folds=2, mc_samples=3, workers=2)
    assert serial["workers"] == 1 and parallel["workers"] == 2
    for key in ("holdout_mae", "holdout_rmse", "holdout_dice"):
        assert parallel[key] == pytest.approx(serial[key], rel=1e-6), key
    assert [f["mae"] for f in parallel["per_fold"]] == pytest.approx([f["mae"] for f in serial["per_fold"]], rel=1e-6)


def test_validate_shows_held_out_figures_beside_the_fit(small_case, tmp_path, capsys):
    argv = ["run", "--mesh", str(small_case["mesh"]), "--image", str(small_case["image"]), "--slice-thickness", "8"]
    assert main([*argv, "--output", str(tmp_path / "o.vtu"), "--max-epochs", "3", "-q"]) == 0
    capsys.readouterr()
    check = ["validate", "--data", str(tmp_path / "o_data.npz"), "--model", str(tmp_path / "o_model.pt")]
    code = main([*check, "--heldout", "--mc-samples", "3", "--json", str(tmp_path / "v.json")])
    assert code in (0, 1)  # the verdict is the fit's; three epochs need not pass it
    text = capsys.readouterr().out
    assert "groups:" in text and "held-out pixels" in text and "baseline linear" in text
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["heldout"]["folds"] == len(saved["per_slice"])  # leave-one-slice-out
    assert 0 <= saved["heldout"]["holdout_mae"] <= 1
    assert 0 <= saved["heldout"]["simulated"]["dice"] <= 1 and "simulated 3D accuracy" in text
    page = ["report", "--data", str(tmp_path / "o_data.npz"), "--mesh", str(tmp_path / "o.vtu")]
    page += [
        "--model",
        str(tmp_path / "o_model.pt"),
        "--output-dir",
        str(tmp_path / "rep"),
        "--heldout",
        "--mc-samples",
        "3",
    ]
    assert main(page) in (0, 1)
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["heldout"]["folds"] == saved["heldout"]["folds"] and "simulated" in report["heldout"]
    assert "Simulated 3D accuracy" in (tmp_path / "rep" / "report.html").read_text()


def test_views_holdout_leaves_out_each_stack_whole(tmp_path):
    """A short-axis stack and a one-slice long-axis view: two folds, each a whole stack, and no
    neighbour-slice baselines (they belong to slices)."""
    from pycemrg_scar_reconstruction.api import synth
    from pycemrg_scar_reconstruction.config import SynthConfig
    from tests.conftest import SMALL

    case = synth(SynthConfig(seed=4, long_axis_views=1, **SMALL), tmp_path)
    stacks = [StackConfig(path=case["image"], slice_thickness=8.0), StackConfig(path=case["image_la1"], slice_thickness=8.0)]
    two = prepare(PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=stacks))
    result = crossval(
        two, TrainConfig(max_epochs=3, batch_size=1024), RuntimeConfig(quiet=True), holdout="views", mc_samples=2
    )
    assert result["folds"] == 2 and result["pixels"] == two.n_groups
    per_stack = [{s for s, _ in f["slices"]} for f in result["per_fold"]]
    assert per_stack == [{0}, {1}]
    assert "baseline_dice" not in result


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_its_top_level_once(small_case, tmp_path):
    """Spawned fold workers must not re-run the caller's script (which has no __main__ guard)."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from pycemrg_scar_reconstruction import *\n"
        "print('top level ran', flush=True)\n"
        f"stack = StackConfig(path={str(small_case['image'])!r}, slice_thickness=8)\n"
        f"data = prepare(PrepareConfig(mesh=MeshConfig(path={str(small_case['mesh'])!r}), stacks=[stack]))\n"
        "runtime, folds = RuntimeConfig(quiet=True, threads=2), CrossvalConfig(folds=2, workers=2)\n"
        "r = crossval(data, TrainConfig(max_epochs=2), runtime, folds, mc_samples=2)\n"
        "print('workers', r['workers'])\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("top level ran") == 1 and "workers 2" in run.stdout, run.stdout
