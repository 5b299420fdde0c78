"""Reference reconstructions on the same inputs, for comparison with the network.

* nearest: the value of the nearest pixel of the nearest slice (what projection tools do);
* linear: nearest pixel in plane, linear interpolation between the two bracketing slices;
* logodds: shape interpolation (Ukwatta et al. 2015): each slice thresholded at 0.5, turned into a
  signed distance map (mm, positive inside scar), interpolated linearly through plane, and mapped
  to a probability with a logistic of width :data:`LOGODDS_WIDTH_MM`.

A pixel without a value (NaN: an untraced or blanked slice; outside the myocardium mask) is
missing, as it is to the network: at each in-plane pixel the interpolation runs between the
nearest slices below and above that have a value there (the nearest one alone beyond the last),
and a node whose pixel has a value in no slice gets 0 (no scar). For ``logodds`` a slice with no
value at all is skipped the same way (its signed distance is not defined).
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


def _defined(stack: SliceStack) -> tuple[np.ndarray, np.ndarray]:
    """(values with 0 where missing, (I, J, K) bool: the pixel has a value)."""
    defined = np.isfinite(stack.values)
    if stack.mask is not None:
        defined &= stack.mask
    return np.where(defined, stack.values, 0.0), defined


def _bracketing(defined: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel and slice, the nearest slice at or below and at or above it with a value there
    ((I, J, K) int each, the through-plane axis; -1 / K where there is none)."""
    k = np.moveaxis(defined, axis, -1)
    n = k.shape[-1]
    index = np.arange(n)
    below = np.maximum.accumulate(np.where(k, index, -1), axis=-1)
    above = np.flip(np.minimum.accumulate(np.flip(np.where(k, index, n), axis=-1), axis=-1), axis=-1)
    return np.moveaxis(below, -1, axis), np.moveaxis(above, -1, axis)


def _lookup(values: np.ndarray, pix: np.ndarray, axis: int, slice_index: np.ndarray, outside: float = 0.0) -> np.ndarray:
    """values at in-plane pixels ``pix`` (N, 2) and slices (N,); ``outside`` beyond the image."""
    a, b = inplane_axes(axis)
    shape = values.shape
    ok = (pix[:, 0] >= 0) & (pix[:, 0] < shape[a]) & (pix[:, 1] >= 0) & (pix[:, 1] < shape[b])
    ok &= (slice_index >= 0) & (slice_index < shape[axis])
    idx: list[np.ndarray] = [np.zeros(0, np.int64)] * 3
    idx[a], idx[b] = np.clip(pix[:, 0], 0, shape[a] - 1), np.clip(pix[:, 1], 0, shape[b] - 1)
    idx[axis] = np.clip(slice_index, 0, shape[axis] - 1)
    return np.where(ok, values[tuple(idx)], outside)


def nearest_slice(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) value of the nearest pixel of the nearest slice with a value there, at world-mm ``points``."""
    g = stack.geometry
    values, defined = _defined(stack)
    below, above = _bracketing(defined, g.axis)
    c = g.to_index(points)
    pix = round_half_up(c[:, list(g.inplane)])
    ck = c[:, g.axis]
    s = np.clip(round_half_up(ck), 0, g.n_slices - 1)
    lo, hi = _lookup(below, pix, g.axis, s, -1), _lookup(above, pix, g.axis, s, g.n_slices)
    has_lo, has_hi = lo >= 0, hi < g.n_slices
    use_hi = has_hi & (~has_lo | (np.abs(hi - ck) < np.abs(ck - lo)))
    chosen = np.where(use_hi, hi, lo).astype(np.int64)
    return np.where(has_lo | has_hi, _lookup(values, pix, g.axis, chosen), 0.0)


def _linear_through_plane(
    points: np.ndarray, stack: SliceStack, values: np.ndarray, defined: np.ndarray, outside: float = 0.0
) -> np.ndarray:
    """Nearest pixel in plane, linear between the nearest slices below and above with a value
    there (``values``, ``defined``: the shape of the stack); ``outside`` where no slice has one."""
    g = stack.geometry
    below, above = _bracketing(defined, g.axis)
    c = g.to_index(points)
    pix = round_half_up(c[:, list(g.inplane)])
    nk = g.n_slices
    ck = np.clip(c[:, g.axis], 0, nk - 1)
    s0 = np.floor(ck).astype(np.int64)
    s1 = np.minimum(s0 + 1, nk - 1)
    lo, hi = _lookup(below, pix, g.axis, s0, -1), _lookup(above, pix, g.axis, s1, nk)
    has_lo, has_hi = lo >= 0, hi < nk
    v0 = _lookup(values, pix, g.axis, np.where(has_lo, lo, 0).astype(np.int64), outside)
    v1 = _lookup(values, pix, g.axis, np.where(has_hi, hi, 0).astype(np.int64), outside)
    w = np.where(has_lo & has_hi, (ck - lo) / np.maximum(hi - lo, 1e-9), 0.0).clip(0, 1)
    both = (1 - w) * v0 + w * v1
    return np.where(has_lo & has_hi, both, np.where(has_lo, v0, np.where(has_hi, v1, outside)))


def linear_between_slices(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) linear interpolation through plane between the nearest slices with a value at the node's pixel."""
    values, defined = _defined(stack)
    return _linear_through_plane(points, stack, values, defined)


def signed_distance_slices(stack: SliceStack, threshold: float = 0.5) -> np.ndarray:
    """(I, J, K) signed distance in mm to the scar boundary of each slice, positive inside scar."""
    values, _ = _defined(stack)
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
    """(N,) log-odds shape interpolation: logistic(interpolated signed distance / width); slices
    with no value at all are skipped."""
    _, defined = _defined(stack)
    axes = tuple(a for a in range(3) if a != stack.geometry.axis)
    has_slice = np.broadcast_to(defined.any(axis=axes, keepdims=True), defined.shape)
    sdf = _linear_through_plane(points, stack, signed_distance_slices(stack), has_slice, outside=-FAR_MM)
    return 1.0 / (1.0 + np.exp(-np.clip(sdf / width_mm, -50, 50)))


METHODS = {"nearest": nearest_slice, "linear": linear_between_slices, "logodds": logodds_shape}
