"""Reference reconstructions on the same inputs, for comparison with the network.

* nearest: the value of the nearest pixel of the nearest slice (what projection tools do);
* linear: nearest pixel in plane, linear interpolation between the two bracketing slices;
* logodds: shape interpolation (Ukwatta et al. 2015): each slice thresholded at 0.5, turned into a
  signed distance map (mm, positive inside scar), interpolated linearly through plane, and mapped
  to a probability with a logistic of width :data:`LOGODDS_WIDTH_MM`.

Both clamp through plane beyond the first and last slice and read undefined pixels (NaN, outside
the image or the mask) as 0 (no scar).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from .geometry import inplane_axes, round_half_up
from .stack import SliceStack

#: Logistic width (mm) that maps the interpolated signed distance to a probability.
LOGODDS_WIDTH_MM = 1.0
#: Signed distance given to every pixel of a slice with no scar (or all scar), mm.
FAR_MM = 100.0


def _defined_values(stack: SliceStack) -> np.ndarray:
    values = np.nan_to_num(stack.values, nan=0.0)
    if stack.mask is not None:
        values = np.where(stack.mask, values, 0.0)
    return values


def _lookup(values: np.ndarray, pix: np.ndarray, axis: int, slice_index: np.ndarray, outside: float = 0.0) -> np.ndarray:
    """values at in-plane pixels ``pix`` (N, 2) and slices (N,); ``outside`` beyond the image in plane."""
    a, b = inplane_axes(axis)
    shape = values.shape
    ok = (pix[:, 0] >= 0) & (pix[:, 0] < shape[a]) & (pix[:, 1] >= 0) & (pix[:, 1] < shape[b])
    idx: list[np.ndarray] = [np.zeros(0, np.int64)] * 3
    idx[a], idx[b] = np.clip(pix[:, 0], 0, shape[a] - 1), np.clip(pix[:, 1], 0, shape[b] - 1)
    idx[axis] = slice_index
    return np.where(ok, values[tuple(idx)], outside)


def nearest_slice(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) value of the nearest pixel of the nearest slice at world-mm ``points``."""
    g = stack.geometry
    c = g.to_index(points)
    pix = round_half_up(c[:, list(g.inplane)])
    s = np.clip(round_half_up(c[:, g.axis]), 0, g.n_slices - 1)
    return _lookup(_defined_values(stack), pix, g.axis, s)


def _linear_through_plane(points: np.ndarray, stack: SliceStack, values: np.ndarray, outside: float = 0.0) -> np.ndarray:
    """Nearest pixel in plane, linear between the bracketing slices of ``values`` (shape of the stack)."""
    g = stack.geometry
    c = g.to_index(points)
    pix = round_half_up(c[:, list(g.inplane)])
    nk = g.n_slices
    ck = np.clip(c[:, g.axis], 0, nk - 1)
    s0 = np.floor(ck).astype(np.int64)
    s1 = np.minimum(s0 + 1, nk - 1)
    w = ck - s0
    v0 = _lookup(values, pix, g.axis, s0, outside)
    v1 = _lookup(values, pix, g.axis, s1, outside)
    return (1 - w) * v0 + w * v1


def linear_between_slices(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) linear interpolation through plane between the bracketing slices' nearest pixels."""
    return _linear_through_plane(points, stack, _defined_values(stack))


def signed_distance_slices(stack: SliceStack, threshold: float = 0.5) -> np.ndarray:
    """(I, J, K) signed distance in mm to the scar boundary of each slice, positive inside scar."""
    values = _defined_values(stack)
    g = stack.geometry
    sampling = g.spacing[list(g.inplane)]
    moved = np.moveaxis(values >= threshold, g.axis, 0)
    out = np.empty(moved.shape)
    for k, scar in enumerate(moved):  # one 2D transform per slice (about ten)
        if not scar.any():
            out[k] = -FAR_MM
        elif scar.all():
            out[k] = FAR_MM
        else:
            out[k] = distance_transform_edt(scar, sampling=sampling) - distance_transform_edt(~scar, sampling=sampling)
    return np.moveaxis(out, 0, g.axis)


def logodds_shape(points: np.ndarray, stack: SliceStack, width_mm: float = LOGODDS_WIDTH_MM) -> np.ndarray:
    """(N,) log-odds shape interpolation: logistic(interpolated signed distance / width)."""
    sdf = _linear_through_plane(points, stack, signed_distance_slices(stack), outside=-FAR_MM)
    return 1.0 / (1.0 + np.exp(-np.clip(sdf / width_mm, -50, 50)))


METHODS = {"nearest": nearest_slice, "linear": linear_between_slices, "logodds": logodds_shape}
