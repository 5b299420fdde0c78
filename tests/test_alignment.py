"""Breath-hold misregistration: per-slice offsets in the forward model, and their estimation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from pycemrg_scar_reconstruction.alignment import correlate_full, estimate_offsets
from pycemrg_scar_reconstruction.api import prepare, slice_offsets_mm, synth
from pycemrg_scar_reconstruction.config import MeshConfig, PrepareConfig, StackConfig, SynthConfig
from pycemrg_scar_reconstruction.data import FORMAT_VERSION, build_training_data
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.forward import prism_memberships
from pycemrg_scar_reconstruction.geometry import index_to_world
from pycemrg_scar_reconstruction.io.artifacts import load_training_data, save_training_data
from pycemrg_scar_reconstruction.io.meshes import myocardium_test, read_mesh
from pycemrg_scar_reconstruction.stack import StackGeometry
from pycemrg_scar_reconstruction.synthetic import case_mesh, make_case
from tests.conftest import SMALL, random_rotation


def _oblique(rng):
    affine = np.eye(4)
    affine[:3, :3] = random_rotation(rng) @ np.diag([1.5, 1.5, 10.0])
    affine[:3, 3] = rng.normal(size=3) * 20
    return StackGeometry(affine, (20, 18, 4), 8.0)


@pytest.mark.parametrize("shapes", [((37, 52), (30, 41)), ((64, 64), (64, 64)), ((5, 90), (9, 13))])
def test_correlate_full_is_scipy_signals_fft_correlation_bit_for_bit(shapes):
    from scipy.signal import correlate

    rng = np.random.default_rng(0)
    m, w = rng.random(shapes[0]), rng.random(shapes[1])
    np.testing.assert_array_equal(correlate_full(m, w), correlate(m, w, mode="full", method="fft"))
    # and what it means: corr[s] = sum_q m(q + s) w(q), the zero shift at index (C - 1, D - 1)
    c = np.array(w.shape) - 1
    assert correlate_full(m, w)[c[0], c[1]] == pytest.approx(
        float(np.sum(m[: w.shape[0], : w.shape[1]] * w[: m.shape[0], : m.shape[1]]))
    )


def test_an_offset_on_one_slice_equals_moving_that_slice():
    rng = np.random.default_rng(0)
    g = _oblique(rng)
    points = index_to_world(rng.uniform(-1, [20, 18, 4], size=(5000, 3)), g.affine)
    offsets = np.zeros((4, 3))
    offsets[2] = [1.7, -2.2, 0.9]  # mm along i, j and the normal
    node, vox = prism_memberships(points, g.with_offsets(offsets))
    plain_node, plain_vox = prism_memberships(points, g)
    # slices other than 2: unchanged
    keep = plain_vox[:, 2] != 2
    np.testing.assert_array_equal(node[vox[:, 2] != 2], plain_node[keep])
    # slice 2: the same as a stack whose affine was moved by -d (a point x appears at x + d)
    moved = g.affine.copy()
    moved[:3, 3] -= offsets[2] @ g.offset_frame.T
    mnode, mvox = prism_memberships(points, StackGeometry(moved, g.shape, g.thickness))
    on2 = mvox[:, 2] == 2
    np.testing.assert_array_equal(node[vox[:, 2] == 2], mnode[on2])
    np.testing.assert_array_equal(vox[vox[:, 2] == 2], mvox[on2])
    assert not np.array_equal(node[vox[:, 2] == 2], plain_node[plain_vox[:, 2] == 2])


def test_offsets_round_trip_the_file_and_old_versions_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    g = _oblique(rng).with_offsets(rng.normal(size=(4, 3)))
    from pycemrg_scar_reconstruction.stack import SliceStack

    stack = SliceStack(values=rng.uniform(size=g.shape), geometry=g)
    data = build_training_data(index_to_world(rng.uniform(0, [20, 18, 4], size=(2000, 3)), g.affine), [stack])
    save_training_data(data, tmp_path / "d.npz")
    back = load_training_data(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.stacks[0].slice_offsets, g.slice_offsets)
    old = {**data.to_arrays(), "format_version": np.asarray(2)}
    np.savez(tmp_path / "old.npz", **old)
    with pytest.raises(InputError, match=f"format 2, this version reads {FORMAT_VERSION}; re-create"):
        load_training_data(tmp_path / "old.npz")


@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_estimator_recovers_known_offsets(shift):
    case = make_case(SynthConfig(seed=4, shift=shift, **{**SMALL, "pixel_spacing": 1.5}))
    mesh = case_mesh(case)
    inside = myocardium_test(mesh, MeshConfig(path="synthetic.vtu"))
    found = estimate_offsets(inside, case.stack.geometry, case.stack.mask)
    true = case.true_offsets if case.true_offsets is not None else np.zeros_like(found.offsets)
    rms = float(np.sqrt(np.mean((found.offsets[:, :2] - true[:, :2]) ** 2)))
    assert rms < (0.5 if shift == 0 else 1.0), (found.offsets, true)
    assert np.all(found.dice_after >= found.dice_before - 1e-9)
    assert not found.at_bound.any()


def test_an_offset_beyond_the_search_is_flagged():
    case = make_case(SynthConfig(seed=4, shift=3.0, **{**SMALL, "pixel_spacing": 1.5}))
    inside = myocardium_test(case_mesh(case), MeshConfig(path="synthetic.vtu"))
    assert case.true_offsets is not None
    found = estimate_offsets(inside, case.stack.geometry, case.stack.mask, max_inplane_mm=1.0)
    beyond = np.abs(case.true_offsets[:, :2]).max(axis=1) > 2.0  # clearly past the 1 mm bound
    assert beyond.any()
    np.testing.assert_array_equal(found.at_bound[beyond], True)


def test_prepare_aligns_and_reports_the_offsets(tmp_path):
    case = synth(SynthConfig(seed=5, shift=3.0, **SMALL), tmp_path)
    cfg = PrepareConfig(
        mesh=MeshConfig(path=case["mesh"]),
        align_slices=True,
        stacks=[StackConfig(path=case["image"], mask=case["mask"], slice_thickness=8)],
        study_registration="off",  # the offsets against the truth, not as residuals of a study transform
    )
    data = prepare(cfg, output=tmp_path / "d.npz")
    true = np.asarray(json.loads(case["facts"].read_text())["slice_offsets_mm"]["lge"])
    reported = slice_offsets_mm(data)
    assert list(reported) == ["lge"]
    est = np.asarray(reported["lge"])
    assert est.shape == true.shape
    assert np.sqrt(np.mean((est[:, :2] - true[:, :2]) ** 2)) < 1.0
    assert (tmp_path / "d_alignment.png").stat().st_size > 10_000
    # the corrected memberships explain the pixels better than the plain ones
    plain = prepare(cfg.model_copy(update={"align_slices": False}))
    truth = np.asarray(read_mesh(MeshConfig(path=case["mesh"]))[0].point_data["scar_truth"], float)
    err = lambda d: float(np.mean(np.abs(d.group_mean(truth) - d.group_target)))  # noqa: E731
    assert err(data) < err(plain)


def test_measured_offsets_are_kept_but_not_applied(tmp_path, caplog):
    """``measure_offsets`` stores what ``align_slices`` would apply, leaves the memberships alone,
    and the pixels as acquired (``acquired_mean``) are those of the aligned memberships."""
    case = synth(SynthConfig(seed=5, shift=3.0, **SMALL), tmp_path)
    stack = StackConfig(path=case["image"], mask=case["mask"], slice_thickness=8)
    base = PrepareConfig(mesh=MeshConfig(path=case["mesh"]), stacks=[stack], align_max_normal_mm=0.0)
    plain = prepare(base)
    with caplog.at_level("WARNING"):
        measured = prepare(base.model_copy(update={"measure_offsets": True}), output=tmp_path / "m.npz")
    aligned = prepare(base.model_copy(update={"align_slices": True}))
    assert plain.measured_offsets is None and plain.misregistration_mm() is None
    for key in ("member_node", "member_group", "group_target", "group_voxel"):
        np.testing.assert_array_equal(getattr(measured, key), getattr(plain, key))
    np.testing.assert_array_equal(measured.measured_offsets, aligned.stacks[0].slice_offsets)
    assert measured.stacks[0].slice_offsets is None
    assert aligned.misregistration_mm() == 0.0
    assert measured.misregistration_mm() > 1.5 and "`align_slices` corrects it" in caplog.text
    assert (tmp_path / "m_alignment.png").stat().st_size > 10_000  # measured offsets are drawn too, to be checked
    reread = load_training_data(tmp_path / "m.npz")
    np.testing.assert_array_equal(reread.measured_offsets, measured.measured_offsets)

    truth = np.asarray(read_mesh(MeshConfig(path=case["mesh"]))[0].point_data["scar_truth"], float)
    np.testing.assert_array_equal(plain.acquired_mean(truth), plain.group_mean(truth))
    shown = measured.acquired_mean(truth)
    keys = {tuple(k): g for g, k in enumerate(aligned.group_keys)}
    both = np.array([tuple(k) in keys for k in measured.group_keys])
    at = np.array([keys[tuple(k)] for k in measured.group_keys[both]])
    np.testing.assert_allclose(shown[both], aligned.group_mean(truth)[at], rtol=0, atol=1e-12)
    assert np.all(shown[~both] == 0.0)  # pixels whose acquired prism holds no node
    through = measured.measured_offsets + [0.0, 0.0, 3.0]  # the through-plane part is left out
    np.testing.assert_array_equal(replace(measured, measured_offsets=through).acquired_mean(truth), shown)
    # the acquired pixels explain the real ones better than the memberships' own
    err = lambda m: float(np.mean(np.abs(m - measured.group_target)))  # noqa: E731
    assert err(shown) < err(measured.group_mean(truth))
    # the simulated accuracy says which misregistration it included
    from pycemrg_scar_reconstruction.config import RuntimeConfig, TrainConfig
    from pycemrg_scar_reconstruction.metrics import misregistration_note
    from pycemrg_scar_reconstruction.simulated import simulated_accuracy
    from pycemrg_scar_reconstruction.training import fit

    quick, quiet = TrainConfig(max_epochs=3, batch_size=1024), RuntimeConfig(quiet=True)
    fitted = fit(measured, quick, quiet, progress=False)
    sim = simulated_accuracy(measured, fitted, quick, quiet, mc_samples=2)
    assert sim["misregistration_mm"] == measured.misregistration_mm()
    assert misregistration_note(sim) == f"with the measured misregistration, {sim['misregistration_mm']:.1f} mm RMS"
    # and the fit's verdict says what it cannot see
    from pycemrg_scar_reconstruction.api import validate
    from pycemrg_scar_reconstruction.config import ValidateConfig
    from pycemrg_scar_reconstruction.metrics import format_report

    checked = validate(measured, ValidateConfig(mc_samples=2), model=fitted)
    assert checked["misregistration_mm"] == measured.misregistration_mm()
    assert "mm (RMS) off the mesh" in format_report(checked).splitlines()[-1]
    assert "off the mesh" not in format_report(validate(plain, ValidateConfig(mc_samples=2), model=fitted))


def test_measuring_offsets_needs_a_volume_mesh(tmp_path):
    case = synth(SynthConfig(seed=1, **SMALL), tmp_path)
    surface = tmp_path / "surface.vtp"
    read_mesh(MeshConfig(path=case["mesh"]))[0].extract_surface(algorithm="dataset_surface").save(surface)
    cfg = PrepareConfig(
        mesh=MeshConfig(path=surface),
        measure_offsets=True,
        stacks=[StackConfig(path=case["image"], mask=case["mask"], slice_thickness=8)],
    )
    with pytest.raises(InputError, match="`measure_offsets` needs a volumetric mesh.*leave out `measure_offsets`"):
        prepare(cfg)
