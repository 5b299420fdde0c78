"""The forward model: which mesh nodes a pixel sees, and what it measures (``shared/design.md``).

* A pixel covers a **prism**: its in-plane footprint extruded by the slice *thickness*, centred on
  the slice plane (:func:`prism_memberships`).
* The nodes inside a prism form a **group**; a node may be in several groups (overlapping thick
  slices, several stacks), so the data are **memberships** (node, group).
* A group is keyed by (stack, voxel) (:func:`group_keys`); grouping and target lookup use the same
  voxel index.
* **pixel value = mean of the scar over the group** (:func:`group_mean`); a synthetic pixel is the
  volume-weighted mean of the truth over the myocardium in its prism (:func:`simulate_pixels`).
* A node is **supervised** when it is a member of at least one group (:func:`supervised`).
* A mesh in the wrong frame or units does not overlap the stacks (:func:`overlap_share`,
  :func:`frame_search`).

Pure and vectorised over nodes: no Python loop over nodes, pixels or groups.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .geometry import FRAME_TO_RAS, UNIT_TO_MM, round_half_up, world_to_index
from .stack import StackGeometry


def prism_memberships(points: np.ndarray, geometry: StackGeometry) -> tuple[np.ndarray, np.ndarray]:
    """All (node, voxel) pairs such that the node lies inside the voxel's prism.

    A node x has continuous index c = A^-1 x. In plane its pixel is round(c) (half-up); through
    plane it lies in slice s's prism iff |c_k - s| * spacing_k <= thickness / 2. With thickness <
    spacing some nodes are in no prism (gaps); with thickness > spacing a node can be in the prisms
    of two (or more) slices. With per-slice offsets (``geometry.slice_offsets``) a node x is
    tested against slice k at x + d_k, one slice at a time.

    Parameters
    ----------
    points : (N, 3) world mm, in the same frame as the affine.
    geometry : the stack's geometry.

    Returns
    -------
    node : (M,) int64 node indices, ascending.
    voxel : (M, 3) int64 voxel indices (i, j, k) of each membership.
    """
    if geometry.slice_offsets is not None:
        return _memberships_per_slice(points, geometry)
    shape_arr = np.asarray(geometry.shape, dtype=np.int64)
    axis = geometry.axis
    c = geometry.to_index(points)
    a, b = geometry.inplane
    pix = round_half_up(c[:, [a, b]])
    inside = (pix >= 0).all(axis=1) & (pix < shape_arr[[a, b]]).all(axis=1)

    spacing_k = float(geometry.spacing[axis])
    half = geometry.half_thickness_index
    ck = c[:, axis]
    # Candidate slices bracket [c_k - half, c_k + half]; the exact test below decides.
    lo = np.maximum(np.floor(ck - half), 0)
    hi = np.minimum(np.ceil(ck + half), shape_arr[axis] - 1)
    count = np.where(inside & np.isfinite(ck), hi - lo + 1, 0).clip(min=0).astype(np.int64)
    node = np.repeat(np.arange(len(c), dtype=np.int64), count)
    starts = np.cumsum(count) - count
    offset = np.arange(len(node), dtype=np.int64) - np.repeat(starts, count)
    s = lo.astype(np.int64)[node] + offset
    keep = np.abs(ck[node] - s) * spacing_k <= 0.5 * geometry.thickness
    node, s = node[keep], s[keep]

    voxel = np.empty((len(node), 3), dtype=np.int64)
    voxel[:, a] = pix[node, 0]
    voxel[:, b] = pix[node, 1]
    voxel[:, axis] = s
    return node, voxel


def slice_memberships(
    points: np.ndarray, geometry: StackGeometry, k: int, offset_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(node, in-plane pixel (M, 2)) pairs of slice ``k`` alone, the heart displaced by ``offset_world`` (mm).

    The prism test of :func:`prism_memberships` for one slice: a node x is tested at x + offset.
    """
    c = world_to_index(np.asarray(points, np.float64) + offset_world, geometry.affine)
    a, b = geometry.inplane
    shape = np.asarray(geometry.shape)
    pix = round_half_up(c[:, [a, b]])
    keep = (pix >= 0).all(axis=1) & (pix < shape[[a, b]]).all(axis=1)
    keep &= np.abs(c[:, geometry.axis] - k) * float(geometry.spacing[geometry.axis]) <= 0.5 * geometry.thickness
    node = np.flatnonzero(keep)
    return node, pix[node]


def _memberships_per_slice(points: np.ndarray, geometry: StackGeometry) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prism_memberships` with each slice's own offset (a loop over the slices, a handful)."""
    a, b = geometry.inplane
    nodes, voxels = [], []
    for k, d in enumerate(geometry.world_offsets()):
        node, pix = slice_memberships(points, geometry, k, d)
        vox = np.empty((len(node), 3), dtype=np.int64)
        vox[:, a], vox[:, b], vox[:, geometry.axis] = pix[:, 0], pix[:, 1], k
        nodes.append(node)
        voxels.append(vox)
    node = np.concatenate(nodes)
    voxel = np.concatenate(voxels)
    order = np.lexsort((voxel[:, geometry.axis], node))  # ascending nodes, like the fast path
    return node[order].astype(np.int64), voxel[order]


def _slice_major(geometry: StackGeometry) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Axis order (through-plane first) and dims of a voxel's flat key, so keys sort by slice."""
    order = (geometry.axis, *geometry.inplane)
    return order, tuple(geometry.shape[ax] for ax in order)


def voxel_key(voxel: np.ndarray, geometry: StackGeometry) -> np.ndarray:
    """(M,) int64 flat key of (M, 3) voxel indices within one stack, slice-major."""
    order, dims = _slice_major(geometry)
    return np.ravel_multi_index(tuple(np.asarray(voxel)[:, ax] for ax in order), dims).astype(np.int64)


def key_voxel(key: np.ndarray, geometry: StackGeometry) -> np.ndarray:
    """(M, 3) voxel indices of flat keys from :func:`voxel_key`."""
    order, dims = _slice_major(geometry)
    unr = np.unravel_index(np.asarray(key, dtype=np.int64), dims)
    voxel = np.empty((len(key), 3), dtype=np.int64)
    for pos, ax in enumerate(order):
        voxel[:, ax] = unr[pos]
    return voxel


def group_keys(group_stack: np.ndarray, group_voxel: np.ndarray) -> np.ndarray:
    """(G, 4) int64 key of every group: its stack index and voxel (i, j, k)."""
    return np.column_stack([group_stack, group_voxel]).astype(np.int64)


def group_memberships(
    points: np.ndarray, stacks: Sequence[StackGeometry], keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Memberships of (any) points in existing groups, given by their (G, 4) ``keys``.

    Returns
    -------
    node, group : (M,) int64, sorted by group then node.
    """
    nodes, groups = [], []
    for s, geometry in enumerate(stacks):  # a handful of stacks
        mine = np.flatnonzero(keys[:, 0] == s)
        if len(mine) == 0:
            continue
        node, vox = prism_memberships(points, geometry)
        key = voxel_key(vox, geometry)
        mine_key = voxel_key(keys[mine, 1:], geometry)
        order = np.argsort(mine_key)
        pos = np.clip(np.searchsorted(mine_key[order], key), 0, len(mine) - 1)
        hit = mine_key[order][pos] == key
        nodes.append(node[hit])
        groups.append(mine[order][pos[hit]])
    node = np.concatenate(nodes) if nodes else np.zeros(0, np.int64)
    group = np.concatenate(groups) if groups else np.zeros(0, np.int64)
    order = np.lexsort((node, group))
    return node[order], group[order]


def group_mean(node_values: np.ndarray, member_node: np.ndarray, member_group: np.ndarray, n_groups: int) -> np.ndarray:
    """(G,) mean of a per-node quantity over each group's member nodes (NaN for an empty group)."""
    sums = np.bincount(member_group, weights=np.asarray(node_values, np.float64)[member_node], minlength=n_groups)
    counts = np.bincount(member_group, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def supervised(n_nodes: int, member_node: np.ndarray) -> np.ndarray:
    """(N,) bool: True where the node belongs to at least one group."""
    out = np.zeros(n_nodes, dtype=bool)
    out[member_node] = True
    return out


def prism_volumes(samples: np.ndarray, weights: np.ndarray, geometry: StackGeometry) -> np.ndarray:
    """(I, J, K) sum of the samples' ``weights`` (e.g. mm^3 each) inside each pixel's prism."""
    node, vox = prism_memberships(samples, geometry)
    flat = np.ravel_multi_index(tuple(vox.T), geometry.shape)
    return np.bincount(flat, weights=weights[node], minlength=int(np.prod(geometry.shape))).reshape(geometry.shape)


def simulate_pixels(
    samples: np.ndarray, weights: np.ndarray, truth: np.ndarray, geometry: StackGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free pixels of a stack: the volume-weighted mean of the truth over the myocardium in each prism.

    Parameters
    ----------
    samples : (S, 3) world-mm points sampling the myocardium.
    weights : (S,) the volume each sample stands for (any common unit).
    truth : (S,) scar at each sample, in [0, 1].
    geometry : the stack.

    Returns
    -------
    values : (I, J, K) float64 pixel values (0 where no myocardium).
    covered : (I, J, K) bool, pixels whose prism holds myocardium.
    """
    weight = prism_volumes(samples, weights, geometry)
    scar = prism_volumes(samples, weights * truth, geometry)
    covered = weight > 0
    values = np.zeros(geometry.shape)
    values[covered] = scar[covered] / weight[covered]
    return values, covered


def overlap_share(points: np.ndarray, stacks: Sequence[StackGeometry]) -> float:
    """Share of points inside the volume of at least one stack."""
    inside = np.zeros(len(points), dtype=bool)
    for geometry in stacks:
        inside |= geometry.contains(points)
    return float(inside.mean()) if len(points) else 0.0


def frame_search(
    raw_points: np.ndarray, stacks: Sequence[StackGeometry], current: tuple[str, str], min_share: float = 0.5
) -> tuple[float, str, str] | None:
    """The mesh frame and units (other than ``current``) under which most of the mesh overlaps the stacks.

    Parameters
    ----------
    raw_points : (N, 3) mesh points in the mesh's own frame and units.
    current : the (frame, units) already tried.

    Returns
    -------
    (share, frame, units) of the best alternative overlapping more than ``min_share``, or None.
    """
    best = None
    for frame, units in itertools.product(FRAME_TO_RAS, UNIT_TO_MM):
        if (frame, units) == current:
            continue
        share = overlap_share(raw_points * (FRAME_TO_RAS[frame] * UNIT_TO_MM[units]), stacks)
        if share > min_share and (best is None or share > best[0]):
            best = (share, frame, units)
    return best
