"""Reference reconstructions on the same inputs, for comparison with the network.

* nearest: the value of the nearest pixel of the nearest slice (what projection tools do);
* linear: nearest pixel in plane, linear interpolation between the two bracketing slices.

Both clamp through plane beyond the first and last slice and read undefined pixels (NaN, outside
the image or the mask) as 0 (no scar).
"""

from __future__ import annotations

import numpy as np

from .geometry import inplane_axes, world_to_index
from .stack import SliceStack


def _defined_values(stack: SliceStack) -> np.ndarray:
    values = np.nan_to_num(stack.values, nan=0.0)
    if stack.mask is not None:
        values = np.where(stack.mask, values, 0.0)
    return values


def _lookup(values: np.ndarray, pix: np.ndarray, axis: int, slice_index: np.ndarray) -> np.ndarray:
    """values at in-plane pixels ``pix`` (N, 2) and slices (N,); 0 outside the image in plane."""
    a, b = inplane_axes(axis)
    shape = values.shape
    ok = (pix[:, 0] >= 0) & (pix[:, 0] < shape[a]) & (pix[:, 1] >= 0) & (pix[:, 1] < shape[b])
    idx = [None, None, None]
    idx[a], idx[b] = np.clip(pix[:, 0], 0, shape[a] - 1), np.clip(pix[:, 1], 0, shape[b] - 1)
    idx[axis] = slice_index
    return np.where(ok, values[tuple(idx)], 0.0)


def nearest_slice(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) value of the nearest pixel of the nearest slice at world-mm ``points``."""
    c = world_to_index(points, stack.affine)
    a, b = inplane_axes(stack.axis)
    pix = np.floor(c[:, [a, b]] + 0.5).astype(np.int64)
    s = np.clip(np.floor(c[:, stack.axis] + 0.5), 0, stack.shape[stack.axis] - 1).astype(np.int64)
    return _lookup(_defined_values(stack), pix, stack.axis, s)


def linear_between_slices(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) linear interpolation through plane between the bracketing slices' nearest pixels."""
    c = world_to_index(points, stack.affine)
    a, b = inplane_axes(stack.axis)
    pix = np.floor(c[:, [a, b]] + 0.5).astype(np.int64)
    nk = stack.shape[stack.axis]
    ck = np.clip(c[:, stack.axis], 0, nk - 1)
    s0 = np.floor(ck).astype(np.int64)
    s1 = np.minimum(s0 + 1, nk - 1)
    w = ck - s0
    values = _defined_values(stack)
    return (1 - w) * _lookup(values, pix, stack.axis, s0) + w * _lookup(values, pix, stack.axis, s1)
