"""The partial-volume LGE model: the mix, its inversion, tissue fractions from a mesh, tissue levels."""

from __future__ import annotations

import numpy as np
import pytest

from pycemrg_scar_reconstruction.stack import StackGeometry
from pycemrg_scar_reconstruction.tissue import (
    MIN_SEPARATION,
    TissueLevels,
    estimate_levels,
    lge_signal,
    scar_fraction,
    short_axis_cavity,
    tissue_fractions,
)

LEVELS = TissueLevels(healthy=100.0, scar=350.0, blood=260.0, outside=50.0)


def test_hand_made_pixels_invert_to_their_scar_fraction():
    # pure healthy, pure scar, half healthy half scar, half healthy myocardium half blood, a third of each tissue
    wall = np.array([1.0, 1.0, 1.0, 0.5, 1 / 3])
    scar = np.array([0.0, 1.0, 0.5, 0.0, 0.0])
    blood = np.array([0.0, 0.0, 0.0, 0.5, 1 / 3])
    signal = lge_signal(wall, scar, blood, LEVELS)
    np.testing.assert_allclose(signal, [100, 350, 225, 180, 100 / 3 + 260 / 3 + 50 / 3])
    np.testing.assert_allclose(scar_fraction(signal, wall, blood, LEVELS, min_wall=0.3), scar, atol=1e-12)
    # the half-blood pixel is as bright as 32% scar would be: a threshold at half the maximum calls it scar
    assert signal[3] >= 0.5 * signal.max()


def test_too_little_myocardium_is_not_a_target():
    out = scar_fraction(np.array([200.0, 200.0]), np.array([0.29, 0.3]), np.array([0.5, 0.5]), LEVELS, min_wall=0.3)
    assert np.isnan(out[0]) and np.isfinite(out[1])


def test_fractions_of_a_ring_and_its_hole_by_hand():
    # 1 mm pixels, one 4 mm slice; myocardium: the ring 5 <= r <= 10 mm about (0, 0), any z
    g = StackGeometry(
        np.diag([1.0, 1.0, 4.0, 1.0]) + np.array([[0, 0, 0, -15], [0, 0, 0, -15], [0] * 4, [0] * 4]), (31, 31, 1), 4.0
    )

    def inside(p: np.ndarray) -> np.ndarray:
        r = np.hypot(p[:, 0], p[:, 1])
        return (r >= 5) & (r <= 10)

    wall, blood = tissue_fractions(inside, g, (np.array([-10.0, -10, -2]), np.array([10.0, 10, 2])), sub=8, levels=2)
    centre = (15, 15, 0)  # world (0, 0): in the hole
    assert wall[centre] == 0 and blood[centre] == 1
    assert wall[15 + 7, 15, 0] == 1 and blood[15 + 7, 15, 0] == 0  # world (7, 0): in the ring
    assert wall[0, 0, 0] == 0 and blood[0, 0, 0] == 0  # a corner, outside
    # areas: ring pi (100 - 25), hole pi 25 (mm^2 = pixels), to the sampling's accuracy
    assert wall.sum() == pytest.approx(np.pi * 75, rel=0.02)
    assert blood.sum() == pytest.approx(np.pi * 25, rel=0.03)


def test_a_long_axis_view_finds_the_blood_pool_in_the_short_axis_planes():
    # myocardium: a tube 5 <= r <= 10 mm about the z axis, open at both ends, 0 <= z <= 40 mm; a
    # long-axis view: the plane y = 0 (1 mm pixels, x and z in plane), one 2 mm slice
    def inside(p: np.ndarray) -> np.ndarray:
        r = np.hypot(p[:, 0], p[:, 1])
        return (r >= 5) & (r <= 10) & (p[:, 2] >= 0) & (p[:, 2] <= 40)

    affine = np.array([[1.0, 0, 0, -15], [0, 0, 2.0, 0], [0, 1.0, 0, -5], [0, 0, 0, 1]])  # i -> x, j -> z, k -> y
    g = StackGeometry(affine, (31, 51, 1), 2.0, axis=2)
    box = (np.array([-10.0, -10, 0]), np.array([10.0, 10, 40]))
    wall, blood = tissue_fractions(inside, g, box, sub=4, levels=2)
    assert wall[15 + 7, 25, 0] == 1 and not blood.any()  # within its own plane the tube encloses nothing
    cavity = short_axis_cavity(inside, box, np.array([0.0, 0.0, 1.0]))
    wall2, blood2 = tissue_fractions(inside, g, box, sub=4, levels=2, cavity=cavity)
    np.testing.assert_array_equal(wall2, wall)
    assert blood2[15, 25, 0] == 1 and blood2[15 + 3, 25, 0] == 1  # x 0 and 3 mm, z 20 mm: in the lumen
    assert blood2[15 + 7, 25, 0] == 0 and blood2[15, 48, 0] == 0  # in the wall; z 43 mm: beyond the tube
    # the lumen's area in the view: 10 mm wide, 40 mm long (to the 1 mm grid's accuracy at its edges)
    assert blood2.sum() == pytest.approx(10 * 40, rel=0.08)


def test_myocardium_without_scar_takes_scar_at_the_blood_level():
    # a view with no scar: the pure myocardium is one noisy class, which a two-class split would
    # cut in two (its upper half read as scar)
    rng = np.random.default_rng(2)
    n = 3000
    kind = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    wall, blood = (kind == 0).astype(float), (kind == 1).astype(float)
    values = lge_signal(wall, np.zeros(n), blood, LEVELS) + rng.normal(0, 12, n)
    shape = (-1, 1, 1)
    levels, info = estimate_levels(values.reshape(shape), wall.reshape(shape), blood.reshape(shape), axis=2)
    assert info["class_separation"] < 2
    assert levels.scar == levels.blood and levels.healthy == pytest.approx(100, abs=4)
    fraction = scar_fraction(values[kind == 0], wall[kind == 0], blood[kind == 0], levels, min_wall=0.3)
    assert np.mean(fraction >= 0.5) < 0.01


def test_a_faint_bright_tail_in_a_view_without_scar_is_not_scar():
    # a view without scar whose study sits a little off the mesh: 12% of the prisms the mesh calls
    # pure wall hold 10% blood, a faint bright tail that a two-class split takes for a scar class
    # (separation 2.3, as measured on a synthetic long-axis view that flipped at the old threshold 2)
    rng = np.random.default_rng(3)
    n = 600
    kind = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    wall, blood = (kind == 0).astype(float), (kind == 1).astype(float)
    bled = (kind == 0) & (rng.uniform(size=n) < 0.12)
    values = lge_signal(wall - 0.1 * bled, np.zeros(n), blood + 0.1 * bled, LEVELS) + rng.normal(0, 12, n)
    shape = (-1, 1, 1)
    levels, info = estimate_levels(values.reshape(shape), wall.reshape(shape), blood.reshape(shape), axis=2)
    assert 2 < info["class_separation"] < MIN_SEPARATION and info["enhanced_class_weight"] > 0.1
    assert levels.scar == levels.blood
    fraction = scar_fraction(values[kind == 0], wall[kind == 0], blood[kind == 0], levels, min_wall=0.3)
    assert np.mean(fraction >= 0.5) < 0.01


def test_levels_are_recovered_from_pure_pixels():
    rng = np.random.default_rng(0)
    n = 4000
    # 70% pure myocardium (a fifth of it scar), 20% pure blood, 10% outside near the heart
    kind = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    scar = (rng.uniform(size=n) < 0.2).astype(float)
    wall, blood = (kind == 0).astype(float), (kind == 1).astype(float)
    values = lge_signal(wall, scar, blood, LEVELS) + rng.normal(0, 8, n)
    levels, info = estimate_levels(values.reshape(-1, 1, 1), wall.reshape(-1, 1, 1), blood.reshape(-1, 1, 1), axis=2)
    assert levels.healthy == pytest.approx(100, abs=3) and levels.scar == pytest.approx(350, abs=5)
    assert levels.blood == pytest.approx(260, abs=3) and levels.outside == pytest.approx(50, abs=5)
    assert info["enhanced_class_weight"] == pytest.approx(0.2, abs=0.03)
    assert info["class_separation"] > MIN_SEPARATION


def test_a_blood_pool_mask_sets_the_blood_level():
    rng = np.random.default_rng(1)
    n = 2000
    kind = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    wall, blood = (kind == 0).astype(float), (kind == 1).astype(float)
    values = lge_signal(wall, (rng.uniform(size=n) < 0.2).astype(float), blood, LEVELS) + rng.normal(0, 8, n)
    pool = np.zeros(n, bool)
    pool[:5] = True  # a user's blood-pool mask: its mean is the level, whatever the fractions say
    shape = (-1, 1, 1)
    levels, _ = estimate_levels(
        values.reshape(shape), wall.reshape(shape), blood.reshape(shape), 2, blood_pool=pool.reshape(shape)
    )
    assert levels.blood == pytest.approx(values[:5].mean())


def test_the_mesh_inside_test_is_pyvistas_point_in_cell(small_case):
    """The probe-filter inside test answers as ``find_containing_cell`` does, point for point: at
    random points, at the nodes and cell centres, in the mesh's frame and units given in metres."""
    import pyvista as pv

    from pycemrg_scar_reconstruction.config import MeshConfig
    from pycemrg_scar_reconstruction.io.meshes import myocardium_test

    mesh = pv.read(str(small_case["mesh"]))
    lo, hi = np.array(mesh.bounds[::2]), np.array(mesh.bounds[1::2])
    points = np.concatenate(
        [
            np.random.default_rng(0).uniform(lo - 3, hi + 3, size=(20000, 3)),
            np.asarray(mesh.points),
            np.asarray(mesh.cell_centers().points),
        ]
    )
    expected = mesh.find_containing_cell(points) >= 0
    assert 0.05 < expected.mean() < 0.95  # both answers are tested
    inside = myocardium_test(mesh, MeshConfig(path=small_case["mesh"]))
    np.testing.assert_array_equal(inside(points), expected)
    assert inside(np.zeros((0, 3))).shape == (0,)
    # a mesh in metres: world mm are taken to its units first
    metres = mesh.copy()
    metres.points = np.asarray(mesh.points) / 1000.0
    in_metres = myocardium_test(metres, MeshConfig(path=small_case["mesh"], units="m"))
    np.testing.assert_array_equal(in_metres(points), expected)
