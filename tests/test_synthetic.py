"""Synthetic cases: deterministic, varied, and made with the forward model."""

from __future__ import annotations

import numpy as np
import pytest

from pycemrg_scar_reconstruction.config import SynthConfig
from pycemrg_scar_reconstruction.data import build_training_data
from pycemrg_scar_reconstruction.synthetic import make_case
from tests.conftest import SMALL


def test_same_seed_same_case_other_seed_other_case():
    a, b, c = (make_case(SynthConfig(seed=s, **SMALL)) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.stack.values, b.stack.values)
    assert a.points.shape != c.points.shape or not np.allclose(a.points, c.points)
    assert not np.array_equal(a.scar_truth, c.scar_truth)


def test_axial_stack_is_scanner_aligned_and_oblique_is_not():
    ax = make_case(SynthConfig(seed=1, oblique=False, **SMALL))
    ob = make_case(SynthConfig(seed=1, **SMALL))
    off = lambda a: np.abs(a[:3, :3] - np.diag(np.diag(a[:3, :3]))).max()  # noqa: E731
    assert off(ax.stack.geometry.affine) == 0.0
    assert off(ob.stack.geometry.affine) > 0.1
    np.testing.assert_allclose(np.linalg.norm(ob.stack.geometry.affine[:3, :3], axis=0), [2.0, 2.0, 10.0])


def test_targets_match_the_truth_averaged_over_each_group():
    for seed in (0, 1, 2):
        case = make_case(SynthConfig(seed=seed, **SMALL))
        assert 0.01 < case.scar_truth.mean() < 0.5
        data = build_training_data(case.points, [case.stack])
        truth_mean = data.group_mean(case.scar_truth)
        r = np.corrcoef(truth_mean, data.group_target)[0, 1]
        assert r > 0.9, (seed, r)


def test_spacing_and_thickness_options_are_honoured():
    case = make_case(SynthConfig(seed=2, slice_spacing=8.0, slice_thickness=6.0, **SMALL))
    assert np.linalg.norm(case.stack.geometry.affine[:3, 2]) == 8.0
    assert case.stack.geometry.thickness == 6.0
    # with 6 mm slabs every 8 mm, a quarter of the myocardium falls in the gaps
    share = build_training_data(case.points, [case.stack]).supervised().mean()
    assert 0.6 < share < 0.85


def test_long_axis_views_are_planes_through_the_long_axis():
    case = make_case(SynthConfig(seed=1, long_axis_views=3, **SMALL))
    plain = make_case(SynthConfig(seed=1, **SMALL))
    np.testing.assert_array_equal(case.stack.values, plain.stack.values)  # the short-axis stack is unchanged
    assert len(case.long_axis) == 3
    sa_normal = case.stack.geometry.affine[:3, 2] / np.linalg.norm(case.stack.geometry.affine[:3, 2])
    for la in case.long_axis:
        assert la.geometry.shape[2] == 1
        normal = la.geometry.affine[:3, 2] / np.linalg.norm(la.geometry.affine[:3, 2])
        assert abs(normal @ sa_normal) < 1e-9  # long-axis planes contain the short-axis normal
        data = build_training_data(case.points, [la])
        # pixels are the prism means of the truth plus 3% noise (a view may hold no scar at all)
        assert data.n_groups > 50
        assert np.mean(np.abs(data.group_mean(case.scar_truth) - data.group_target)) < 0.06


def test_real_like_case_is_harder_in_the_ways_real_ones_are():
    plain = make_case(SynthConfig(seed=4, intensity=True, **SMALL))
    real = make_case(SynthConfig(seed=4, intensity=True, real_like=True, **SMALL))
    # the same heart and stack planes; the mesh is a model of the imaged heart, not its segmentation
    assert plain.stack.geometry.spacing[2] == real.stack.geometry.spacing[2]
    assert 0.5 < np.abs(real.points - plain.points).max() < 12.0
    # the stack stops short of the apex: the mesh reaches past the first slice by more than a spacing
    g = real.stack.geometry
    k = g.to_index(real.points)[:, g.axis]
    assert k.min() < -1.0 - g.half_thickness_index
    # scar past the stack (at the apex), and only a few % in the imaged part
    assert real.scar_truth[k < -0.5 - g.half_thickness_index].any()
    # PSIR-like: blood brightest, then scar, remote myocardium near zero
    levels = real.facts["tissue_levels"]
    assert levels["blood"] > levels["scar"] > levels["outside"] > levels["healthy"] and levels["healthy"] < 25
    assert plain.facts["tissue_levels"]["scar"] > plain.facts["tissue_levels"]["blood"]


def test_real_like_small_scar_sits_at_an_rv_insertion():
    from pycemrg_scar_reconstruction.anatomy import PHI_APEX, PHI_BASE, RV_OFFSET, LVShape, real_like_anatomy, scar_field
    from pycemrg_scar_reconstruction.synthetic import REAL_LIKE_STREAM

    rng = np.random.default_rng(0)
    theta, phi, t = rng.uniform(0, 2 * np.pi, 200_000), rng.uniform(PHI_APEX, PHI_BASE, 200_000), rng.uniform(0, 1, 200_000)
    shape = LVShape(25.0, 23.0, 60.0, 10.0)
    w = shape.volume_element(theta, phi, t)
    for seed in range(4):
        _, (small, _) = real_like_anatomy(shape, np.random.default_rng([seed, REAL_LIKE_STREAM]))
        share = float((scar_field(shape, [small], theta, phi, t) * w).sum() / w.sum())
        assert 0.02 < share < 0.06, share
        assert abs(abs(small.theta) - np.arccos(RV_OFFSET / 2)) < 0.4  # where the RV meets the LV


def test_an_irregular_lv_is_inverted_exactly_and_keeps_its_cavity():
    """lv_parameters inverts position on a shell whose wall and outline vary (harmonics), and the
    cavity test agrees with the endocardium: the hand-checkable geometry the signal depends on."""
    from pycemrg_scar_reconstruction.anatomy import (
        PHI_APEX,
        PHI_BASE,
        LVShape,
        in_lv_cavity,
        irregular_shape,
        lv_parameters,
    )

    shape = irregular_shape(LVShape(25.0, 22.0, 60.0, 10.0), 1.5, np.random.default_rng(3))
    assert shape.wall_max - shape.wall_min > 5.0 and shape.section_bounds[1] - shape.section_bounds[0] > 0.1
    rng = np.random.default_rng(0)
    theta, phi, t = rng.uniform(0, 2 * np.pi, 20_000), rng.uniform(PHI_APEX, PHI_BASE, 20_000), rng.uniform(0, 1, 20_000)
    back = lv_parameters(shape, shape.position(theta, phi, t))
    np.testing.assert_allclose(np.angle(np.exp(1j * (back[0] - theta))), 0, atol=1e-9)
    np.testing.assert_allclose(back[1], phi, atol=1e-9)
    np.testing.assert_allclose(back[2], t, atol=1e-9)
    assert back[3].all()
    assert in_lv_cavity(shape, shape.position(theta, phi, np.full_like(t, -0.02))).all()
    assert not in_lv_cavity(shape, shape.position(theta, phi, np.full_like(t, 0.02))).any()


def test_lv_irregularity_varies_the_wall_as_a_real_one_and_leaves_the_smooth_case_alone():
    plain = make_case(SynthConfig(seed=2, **SMALL))
    again = make_case(SynthConfig(seed=2, lv_irregularity=0.0, **SMALL))
    np.testing.assert_array_equal(plain.points, again.points)
    irregular = make_case(SynthConfig(seed=2, lv_irregularity=1.0, **SMALL))
    np.testing.assert_array_equal(plain.scar_truth, irregular.scar_truth)  # the scar follows the wall's parameters
    assert set(irregular.facts["lv_harmonics"]) == {"wall", "outline"}

    def wall_spread(case) -> float:
        """Relative spread of the wall thickness around the mid-ventricular ring of nodes."""
        n_t, n_phi, n_theta = case.facts["grid_nodes"]
        grid = case.points.reshape(n_t, n_phi, n_theta, 3)
        thickness = np.linalg.norm(grid[-1, (2 * n_phi) // 3] - grid[0, (2 * n_phi) // 3], axis=1)
        return float(thickness.std() / thickness.mean())

    # measured: smooth shell 0.0000 (a constant wall), irregular 0.18
    assert wall_spread(plain) < 0.06 < 0.12 < wall_spread(irregular), (wall_spread(plain), wall_spread(irregular))


def test_heart_scale_enlarges_the_cavity_and_leaves_the_default_size_alone():
    plain = make_case(SynthConfig(seed=2, **SMALL))
    same = make_case(SynthConfig(seed=2, heart_scale=1.0, **SMALL))
    np.testing.assert_array_equal(plain.points, same.points)
    big = make_case(SynthConfig(seed=2, heart_scale=1.35, **SMALL))
    small_lv, big_lv = plain.facts["lv_mm"], big.facts["lv_mm"]
    for key in ("a_endo", "b_endo", "c_endo"):
        assert big_lv[key] == pytest.approx(1.35 * small_lv[key], rel=1e-12)
    assert big_lv["wall"] == small_lv["wall"]  # the wall stays in mm
    assert big.facts["heart_scale"] == 1.35 and "heart_scale" not in plain.facts
    # the same scars (in mm) cover less of a larger wall
    assert 0 < big.scar_truth.mean() < plain.scar_truth.mean()


def test_truth_at_gives_the_node_truth_back_and_follows_the_study_motion():
    from pycemrg_scar_reconstruction.geometry import apply_affine

    for config in (
        SynthConfig(seed=4, **SMALL),
        SynthConfig(seed=4, lv_irregularity=1.0, intensity=True, biventricular=True, **SMALL),
        SynthConfig(seed=4, study_offset=4.0, study_rotation=5.0, **SMALL),
    ):
        case = make_case(config)
        assert case.truth_at is not None
        lv = np.ones(len(case.points), bool) if case.is_lv is None else case.is_lv
        back = apply_affine(np.linalg.inv(np.asarray(case.facts.get("study_to_mesh", np.eye(4)))), case.points)
        np.testing.assert_array_equal(case.truth_at(back[lv]), case.scar_truth[lv])
        # 3 mm along the scanner's x: some scar nodes move out of the scar, so the field differs
        assert 0 < np.mean(case.truth_at(back[lv] + [3.0, 0.0, 0.0]) != case.scar_truth[lv]) < 0.2
