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
value at all is skipped the same way (its signed distance is not defined). Per-slice breath-hold
offsets (``--align-slices``, ``slice_offsets``) are applied as the network's memberships apply them:
a mesh point is looked up in each slice where that slice shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.ndimage import distance_transform_edt

from .geometry import round_half_up
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


def _slice_views(points: np.ndarray, stack: SliceStack, values: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per slice k: ``values`` (the stack's shape; NaN where missing) at the points' pixels in slice
    k (NaN outside the image), and the points' through-plane index coordinate clipped to the slices'
    range [0, K - 1], both (N,), with slice k's breath-hold offset: a mesh point x appears in slice k
    at x + d_k (``StackGeometry.slice_offsets``)."""
    g = stack.geometry
    a, b = g.inplane
    nk, nb = g.n_slices, g.shape[b]
    # each slice's pixels in a row, with one NaN after them for points outside the image
    table = np.full((nk, g.shape[a] * nb + 1), np.nan)
    table[:, :-1] = np.moveaxis(values, g.axis, 0).reshape(nk, -1)

    def pixel(c: np.ndarray) -> np.ndarray:
        i, j = round_half_up(c[:, a]), round_half_up(c[:, b])
        inside = (i >= 0) & (i < g.shape[a]) & (j >= 0) & (j < nb)
        return np.where(inside, i * nb + j, table.shape[1] - 1)

    c = g.to_index(points)
    if g.slice_offsets is None:
        flat, t = pixel(c), np.clip(c[:, g.axis], 0, nk - 1)
        for k in range(nk):  # one pass per slice (about ten), each over every point
            yield k, table[k, flat], t
        return
    shifts = g.index_offsets()
    for k in range(nk):
        ck = c + shifts[k]
        yield k, table[k, pixel(ck)], np.clip(ck[:, g.axis], 0, nk - 1)


def _bracket(
    points: np.ndarray, stack: SliceStack, values: np.ndarray, defined: np.ndarray, nearest: bool
) -> tuple[np.ndarray, ...]:
    """The nearest slices below and above each point with a value at its pixel.

    With the point's through-plane coordinate t clipped to the slices' range, d = t - k is its
    height above slice k (in slices; slice k's own offset included). "Below" is the slice of least
    d >= 0, "above" the one of greatest d < 0; with ``nearest`` the split is at a half slice either
    way (d >= -1/2 and d < 1/2), so that the slice nearest the point is one of the two. Returns (N,)
    arrays: whether there is one below, its value and d; whether there is one above, its value and -d.
    """
    n = len(points)
    least, greatest = np.full(n, np.inf), np.full(n, -np.inf)
    v0, v1 = np.zeros(n), np.zeros(n)
    lo_from, hi_below = (-0.5, 0.5) if nearest else (0.0, 0.0)
    for k, v, t in _slice_views(points, stack, np.where(defined, values, np.nan)):
        d = t - k
        ok = np.isfinite(v)
        take = ok & (d >= lo_from) & (d < least)
        np.copyto(least, d, where=take)
        np.copyto(v0, v, where=take)
        take = ok & (d < hi_below) & (d > greatest)
        np.copyto(greatest, d, where=take)
        np.copyto(v1, v, where=take)
    has_lo, has_hi = np.isfinite(least), np.isfinite(greatest)
    return has_lo, v0, np.where(has_lo, least, 0.0), has_hi, v1, np.where(has_hi, -greatest, 0.0)


def nearest_slice(points: np.ndarray, stack: SliceStack) -> np.ndarray:
    """(N,) value of the nearest pixel of the nearest slice with a value there, at world-mm
    ``points``; 0 where no slice has one."""
    values, defined = _defined(stack)
    has_lo, v0, below, has_hi, v1, above = _bracket(points, stack, values, defined, nearest=True)
    use_hi = has_hi & (~has_lo | (np.abs(above) < np.abs(below)))
    return np.where(use_hi, v1, np.where(has_lo, v0, 0.0))


def _linear_through_plane(
    points: np.ndarray, stack: SliceStack, values: np.ndarray, defined: np.ndarray, outside: float = 0.0
) -> np.ndarray:
    """Nearest pixel in plane, linear between the nearest slices below and above with a value
    there (``values``, ``defined``: the shape of the stack); ``outside`` where no slice has one."""
    has_lo, v0, below, has_hi, v1, above = _bracket(points, stack, values, defined, nearest=False)
    w = np.where(has_lo & has_hi, below / np.maximum(below + above, 1e-9), 0.0).clip(0, 1)
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
