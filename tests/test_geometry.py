"""Exact, hand-checkable tests of the prism mapping, and its invariance under rigid motion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycemrg_scar_reconstruction.forward import prism_memberships
from pycemrg_scar_reconstruction.geometry import (
    index_to_world,
    normalisation,
    normalise,
    slice_normal,
    to_world_mm,
    world_to_index,
)
from pycemrg_scar_reconstruction.stack import StackGeometry, main_slice_normal
from tests.conftest import random_rotation

# Voxels 2 x 2 mm in plane, slices 8 mm apart; origin (voxel 0,0,0 centre) at (10, 20, 30).
AFFINE = np.array([[2.0, 0, 0, 10], [0, 2.0, 0, 20], [0, 0, 8.0, 30], [0, 0, 0, 1]])
SHAPE = (4, 5, 3)


def pairs(points, thickness, affine=AFFINE, shape=SHAPE, axis=2):
    node, vox = prism_memberships(np.asarray(points, float), StackGeometry(affine, shape, thickness, axis))
    return sorted((int(n), tuple(int(x) for x in v)) for n, v in zip(node, vox))


def test_voxel_centres_map_to_their_voxel():
    idx = np.array([[0, 0, 0], [3, 4, 2], [1, 2, 1]])
    assert pairs(index_to_world(idx, AFFINE), thickness=8) == [(0, (0, 0, 0)), (1, (3, 4, 2)), (2, (1, 2, 1))]


def test_in_plane_rounding_at_plus_minus_049_voxel():
    # centre of voxel (1, 2, 1) is at (12, 24, 38) mm; 0.49 voxel = 0.98 mm
    pts = [
        [12 + 0.98, 24, 38],
        [12 - 0.98, 24, 38],
        [12, 24 + 0.98, 38],
        [12, 24 - 0.98, 38],
        [12 + 1.02, 24, 38],
        [12, 24 - 1.02, 38],
    ]
    assert pairs(pts, thickness=8) == [
        (0, (1, 2, 1)),
        (1, (1, 2, 1)),
        (2, (1, 2, 1)),
        (3, (1, 2, 1)),
        (4, (2, 2, 1)),
        (5, (1, 1, 1)),
    ]


def test_outside_the_image_is_in_no_group():
    pts = [[10 - 1.02, 20, 30], [10 + 3.49 * 2, 20, 30], [10, 20 + 4.51 * 2, 30], [10, 20, 30 - 4.01]]
    assert pairs(pts, thickness=8) == [(1, (3, 0, 0))]


def test_gaps_leave_nodes_unsupervised():
    # thickness 4 mm, spacing 8 mm: slab of slice 1 is z in [36, 40]; exactly 2 mm away is inside
    pts = [[12, 24, 38 + 2.0], [12, 24, 38 - 2.0], [12, 24, 38 + 2.5], [12, 24, 38 - 3.0], [12, 24, 42.0]]
    assert pairs(pts, thickness=4) == [(0, (1, 2, 1)), (1, (1, 2, 1))]


def test_thick_slices_give_double_membership():
    # thickness 12 mm, spacing 8 mm: slabs of slices 1 and 2 overlap for z in [40, 44]
    pts = [[12, 24, 42], [12, 24, 40], [12, 24, 44], [12, 24, 39.5], [12, 24, 44.5]]
    assert pairs(pts, thickness=12) == [
        (0, (1, 2, 1)),
        (0, (1, 2, 2)),
        (1, (1, 2, 1)),
        (1, (1, 2, 2)),
        (2, (1, 2, 1)),
        (2, (1, 2, 2)),
        (3, (1, 2, 1)),
        (4, (1, 2, 2)),
    ]


def test_very_thick_slices_reach_beyond_the_neighbours():
    # thickness 40 mm over 8 mm spacing: a node at slice 1's centre is in all three slices' prisms
    assert pairs([[12, 24, 38]], thickness=40) == [(0, (1, 2, 0)), (0, (1, 2, 1)), (0, (1, 2, 2))]


def test_other_through_plane_axis():
    affine = np.array([[8.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]])
    # x is through plane now; x = 9 mm is 1 mm off slice 1 (8 mm): inside a 4 mm slab, outside a 1 mm slab
    assert pairs([[9, 2, 4]], thickness=4, affine=affine, shape=(3, 3, 3), axis=0) == [(0, (1, 1, 2))]
    assert pairs([[9, 2, 4]], thickness=1, affine=affine, shape=(3, 3, 3), axis=0) == []


def test_oblique_affine_by_hand():
    rng = np.random.default_rng(0)
    rot = random_rotation(rng)
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.5, 1.5, 10.0])
    affine[:3, 3] = [-40, 12, 77]
    # continuous indices chosen by hand; thickness 8 mm -> |dk| <= 0.4 is inside
    idx = np.array([[2.3, 4.6, 1.39], [2.51, 0.2, 2.0], [0.0, 0.0, 0.41], [1.0, 1.0, 2.65]])
    expected = [(0, (2, 5, 1)), (1, (3, 0, 2)), (3, (1, 1, 3))]
    assert pairs(index_to_world(idx, affine), thickness=8, affine=affine, shape=(5, 6, 4)) == expected


def test_world_to_index_inverts_index_to_world():
    rng = np.random.default_rng(1)
    affine = np.eye(4)
    affine[:3, :3] = random_rotation(rng) @ np.diag([1.2, 0.9, 7.0])
    affine[:3, 3] = rng.normal(size=3) * 50
    idx = rng.uniform(-5, 20, size=(100, 3))
    np.testing.assert_allclose(world_to_index(index_to_world(idx, affine), affine), idx, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), thickness=st.floats(2.0, 20.0))
def test_rigid_motion_of_mesh_and_image_changes_nothing(seed, thickness):
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, :3] = random_rotation(rng) @ np.diag([1.7, 1.7, 9.0])
    affine[:3, 3] = rng.normal(size=3) * 20
    shape = (12, 10, 5)
    points = index_to_world(rng.uniform(-1, [12, 10, 5], size=(400, 3)), affine)
    before = prism_memberships(points, StackGeometry(affine, shape, thickness))

    q, t = random_rotation(rng), rng.normal(size=3) * 100
    moved = np.eye(4)
    moved[:3, :3] = q @ affine[:3, :3]
    moved[:3, 3] = q @ affine[:3, 3] + t
    after = prism_memberships(points @ q.T + t, StackGeometry(moved, shape, thickness))
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_frames_and_units():
    p = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(to_world_mm(p, "lps", "mm"), [[-1.0, -2.0, 3.0]])
    np.testing.assert_allclose(to_world_mm(p * 1000, "ras", "um"), p)
    np.testing.assert_allclose(to_world_mm(p / 1000, "ras", "m"), p)


def test_normalisation_is_isotropic_and_in_unit_box():
    pts = np.array([[0.0, 0, 0], [10, 2, 4], [4, 1, -6]])
    center, scale = normalisation(pts)
    np.testing.assert_allclose(center, [5, 1, -1])
    assert scale == pytest.approx(5.0)
    n = normalise(pts, center, scale)
    assert np.abs(n).max() == pytest.approx(1.0)
    # distances keep their ratios (one scale for all axes)
    d0 = np.linalg.norm(pts[1] - pts[0]) / np.linalg.norm(pts[2] - pts[0])
    d1 = np.linalg.norm(n[1] - n[0]) / np.linalg.norm(n[2] - n[0])
    assert d0 == pytest.approx(d1)


def test_slice_normal_is_perpendicular_to_the_slices_even_when_sheared():
    # in-plane axes along x and y; the through-plane column leans towards x (a sheared stack)
    sheared = np.array([[2.0, 0, 3.0, 0], [0, 2.0, 0, 0], [0, 0, 8.0, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(slice_normal(sheared, 2), [0, 0, 1])
    np.testing.assert_allclose(np.abs(slice_normal(AFFINE, 0)), [1, 0, 0])  # slices across voxel axis 0


def test_main_slice_normal_is_that_of_the_stack_with_most_slices():
    rot = random_rotation(np.random.default_rng(1))
    other = AFFINE.copy()
    other[:3, :3] = rot @ AFFINE[:3, :3]
    # stack 0: 2 slices along axis 2; stack 1: 4 slices along axis 0
    n = main_slice_normal([StackGeometry(other, (9, 9, 2), 8.0, 2), StackGeometry(AFFINE, (4, 5, 3), 2.0, 0)])
    np.testing.assert_allclose(np.abs(n), [1, 0, 0])
    n = main_slice_normal([StackGeometry(other, (9, 9, 5), 8.0, 2), StackGeometry(AFFINE, (4, 5, 3), 2.0, 0)])
    np.testing.assert_allclose(n, rot[:, 2], atol=1e-12)


def test_stack_volume_box_by_hand():
    g = StackGeometry(AFFINE, SHAPE, thickness=4.0)
    # pixel edges 1 mm either side of the centres in plane; slabs 2 mm either side of the end slices
    lo, hi = g.corners().min(axis=0), g.corners().max(axis=0)
    np.testing.assert_allclose(lo, [9, 19, 28])
    np.testing.assert_allclose(hi, [17, 29, 48])
    assert g.contains(np.array([[9.01, 19.01, 28.01], [16.99, 28.99, 47.99]])).all()
    assert not g.contains(np.array([[8.99, 20, 30], [12, 24, 48.01]])).any()


def test_stack_geometry_refuses_what_is_not_a_geometry():
    with pytest.raises(ValueError, match="thickness"):
        StackGeometry(AFFINE, SHAPE, float("inf"))
    with pytest.raises(ValueError, match="axis"):
        StackGeometry(AFFINE, SHAPE, 8.0, axis=5)
    with pytest.raises(ValueError, match="4x4"):
        StackGeometry(np.eye(3), SHAPE, 8.0)
