"""Training data: grouping, target lookup, masks, several stacks, and the file format."""

from __future__ import annotations

import numpy as np
import pytest

from pycemrg_scar_reconstruction.data import FORMAT_VERSION, TrainingData, build_training_data
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.geometry import index_to_world, world_to_index
from pycemrg_scar_reconstruction.io.artifacts import load_training_data, save_training_data
from pycemrg_scar_reconstruction.stack import SliceStack, StackGeometry
from tests.conftest import random_rotation


def oblique_stack(rng, shape=(6, 7, 4), thickness=8.0, name="s"):
    affine = np.eye(4)
    affine[:3, :3] = random_rotation(rng) @ np.diag([1.5, 1.5, 10.0])
    affine[:3, 3] = rng.normal(size=3) * 10
    values = rng.uniform(0, 1, size=shape)  # every voxel a distinct value
    return SliceStack(values=values, geometry=StackGeometry(affine, values.shape, thickness), name=name)


def test_targets_are_read_at_the_grouping_voxel():
    rng = np.random.default_rng(0)
    stack = oblique_stack(rng)
    pts = index_to_world(rng.uniform(-0.5, [5.5, 6.5, 3.5], size=(3000, 3)), stack.geometry.affine)
    data = build_training_data(pts, [stack])
    # independent recomputation for every membership: round() in plane, nearest slice through plane
    c = world_to_index(pts[data.member_node], stack.geometry.affine)
    vox = np.floor(c + 0.5).astype(int)
    np.testing.assert_array_equal(data.group_voxel[data.member_group], vox)
    np.testing.assert_allclose(
        data.group_target[data.member_group], stack.values[vox[:, 0], vox[:, 1], vox[:, 2]].astype(np.float32)
    )
    np.testing.assert_array_equal(data.group_slice, data.group_voxel[:, 2])


def test_memberships_sorted_by_group_and_groups_by_slice():
    rng = np.random.default_rng(1)
    stack = oblique_stack(rng)
    pts = index_to_world(rng.uniform(-0.5, [5.5, 6.5, 3.5], size=(2000, 3)), stack.geometry.affine)
    data = build_training_data(pts, [stack])
    assert np.all(np.diff(data.member_group) >= 0)
    assert np.all(np.diff(data.group_slice) >= 0)
    np.testing.assert_array_equal(np.bincount(data.member_group), data.group_count)
    assert data.group_count.min() >= 1
    off = data.group_offset
    assert off[-1] == data.n_members
    assert np.all(data.member_group[off[:-1]] == np.arange(data.n_groups))


def test_nan_and_masked_voxels_are_not_groups():
    affine = np.diag([1.0, 1.0, 4.0, 1.0])
    values = np.full((2, 2, 1), 0.5)
    values[0, 0, 0] = np.nan
    mask = np.ones((2, 2, 1), bool)
    mask[1, 1, 0] = False
    stack = SliceStack(values=values, geometry=StackGeometry(affine, values.shape, 4.0), mask=mask)
    pts = index_to_world(np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0]], float), affine)
    data = build_training_data(pts, [stack])
    assert data.n_groups == 2
    assert sorted(data.member_node.tolist()) == [1, 2]
    np.testing.assert_array_equal(data.supervised(), [False, True, True, False])


def test_two_stacks_give_a_node_two_memberships():
    affine_a = np.diag([1.0, 1.0, 4.0, 1.0])
    # second stack: a long-axis view, through-plane along x
    affine_b = np.array([[0, 0, 4.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    a = SliceStack(values=np.full((3, 3, 1), 0.2), geometry=StackGeometry(affine_a, (3, 3, 1), 4.0), name="sax")
    b = SliceStack(values=np.full((3, 3, 1), 0.9), geometry=StackGeometry(affine_b, (3, 3, 1), 4.0), name="lax")
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 1.0], [2.4, 1.0, 1.0]])
    data = build_training_data(pts, [a, b])
    got = sorted(zip(data.member_node.tolist(), data.group_stack[data.member_group].tolist()))
    assert got == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    np.testing.assert_allclose(np.sort(data.group_target), [0.2, 0.2, 0.2, 0.9, 0.9])


def test_round_trip_and_format_checks(tmp_path):
    rng = np.random.default_rng(2)
    stack = oblique_stack(rng)
    pts = index_to_world(rng.uniform(-0.5, [5.5, 6.5, 3.5], size=(500, 3)), stack.geometry.affine)
    data = build_training_data(pts, [stack])
    path = tmp_path / "d.npz"
    save_training_data(data, path)
    back = load_training_data(path)
    arrays, back_arrays = data.to_arrays(), back.to_arrays()
    assert set(back_arrays) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back_arrays[key], value, err_msg=key)
    assert all(a.same_as(b) for a, b in zip(back.stacks, data.stacks))
    assert int(np.load(path)["format_version"]) == FORMAT_VERSION

    def broken(**changes):
        arrays = {**data.to_arrays(), **changes}
        np.savez(tmp_path / "bad.npz", **{k: v for k, v in arrays.items() if v is not None})
        with pytest.raises(InputError, match="bad.npz"):
            load_training_data(tmp_path / "bad.npz")

    broken(format_version=np.asarray(99))
    broken(member_group=None)
    broken(member_group=data.member_group[::-1].copy())
    broken(group_target=data.group_target + 2)
    broken(points=data.points[:, :2])
    broken(member_node=data.member_node + data.n_nodes)
    with pytest.raises(InputError, match="not found"):
        load_training_data(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="junk.npz"):
        load_training_data(tmp_path / "junk.npz")


def test_from_arrays_is_the_only_door():
    with pytest.raises(InputError, match="format_version"):
        TrainingData.from_arrays({})


def test_stack_disagreement_where_prisms_intersect():
    from pycemrg_scar_reconstruction.data_summary import stack_disagreement, summary

    affine_a = np.diag([1.0, 1.0, 4.0, 1.0])
    affine_b = np.array([[0, 0, 4.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    a = SliceStack(values=np.full((3, 3, 1), 0.2), geometry=StackGeometry(affine_a, (3, 3, 1), 4.0), name="sax")
    b = SliceStack(values=np.full((3, 3, 1), 0.9), geometry=StackGeometry(affine_b, (3, 3, 1), 4.0), name="lax")
    pts = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 1.0], [2.4, 1.0, 1.0]])  # nodes 0, 1 in both stacks
    data = build_training_data(pts, [a, b])
    rows = stack_disagreement(data)
    assert [r["shared_nodes"] for r in rows] == [2, 2]
    np.testing.assert_allclose([r["mean_abs_difference"] for r in rows], [0.7, 0.7])
    assert "mean |target difference| 0.700 over 2 node pairs" in summary(data)
    assert stack_disagreement(build_training_data(pts, [a])) == []
