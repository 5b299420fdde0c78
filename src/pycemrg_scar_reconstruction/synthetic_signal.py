"""What the images of a synthetic anatomy see: the tissue fractions of every image prism, sampled.

Pure logic on arrays: the anatomy (:mod:`.anatomy`) and a stack's geometry in, fractions out.
"""

from __future__ import annotations

import numpy as np

from .anatomy import Infarct, LVShape, RVShape, in_lv_cavity, in_rv_wall, lv_parameters, scar_field
from .stack import StackGeometry
from .tissue import inplane_structure

#: Samples per prism for the intensity stacks: in-plane grid and heights (stratified, jittered).
PRISM_SUB, PRISM_LEVELS = 4, 8


def prism_tissue(
    g: StackGeometry,
    lv: LVShape,
    rv: RVShape | None,
    infarcts: list[Infarct],
    rot: np.ndarray,
    shift: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, ...]:
    """(I, J, K) fractions of each prism that are LV myocardium, LV scar, RV myocardium and blood pool."""
    out = [np.zeros(g.shape) for _ in range(4)]
    a, b = g.inplane
    n_a, n_b = g.shape[a], g.shape[b]
    per = PRISM_SUB * PRISM_SUB * PRISM_LEVELS
    for k in range(g.n_slices):  # a handful of slices, each vectorised over its samples
        base = np.zeros((n_a, n_b, per, 3))
        ia, ib = np.meshgrid(np.arange(n_a), np.arange(n_b), indexing="ij")
        base[..., a] = ia[..., None]
        base[..., b] = ib[..., None]
        base[..., g.axis] = k
        u = (np.arange(PRISM_SUB)[:, None, None] + rng.uniform(0, 1, (PRISM_SUB, PRISM_SUB, PRISM_LEVELS))) / PRISM_SUB
        v = (np.arange(PRISM_SUB)[None, :, None] + rng.uniform(0, 1, (PRISM_SUB, PRISM_SUB, PRISM_LEVELS))) / PRISM_SUB
        h = (np.arange(PRISM_LEVELS)[None, None, :] + rng.uniform(0, 1, (PRISM_SUB, PRISM_SUB, PRISM_LEVELS))) / PRISM_LEVELS
        base[..., a] += u.ravel() - 0.5
        base[..., b] += v.ravel() - 0.5
        base[..., g.axis] += (h.ravel() - 0.5) * 2 * g.half_thickness_index
        world = base.reshape(-1, 3) @ g.affine[:3, :3].T + g.affine[:3, 3]
        # the heart was displaced by d_k while slice k was acquired: the image sees heart point y - d_k at y
        local = (world - g.world_offsets()[k] - shift) @ rot  # rot is orthonormal: its transpose inverts it
        theta, phi, t, in_lv = lv_parameters(lv, local)
        scar = np.zeros(len(local))
        scar[in_lv] = scar_field(lv, infarcts, theta[in_lv], phi[in_lv], t[in_lv])
        in_rv = in_rv_wall(rv, local) & ~in_lv if rv is not None else np.zeros(len(local), bool)
        blood = (in_lv_cavity(lv, local) | (rv.in_cavity(local) if rv is not None else False)) & ~in_lv & ~in_rv
        sl: list[slice | int] = [slice(None)] * 3
        sl[g.axis] = k
        for arr, val in zip(out, (in_lv, scar, in_rv, blood)):
            arr[tuple(sl)] = val.reshape(n_a, n_b, per).mean(axis=2)
    return tuple(out)


def near(region: np.ndarray, geometry: StackGeometry, mm: float) -> np.ndarray:
    """(I, J, K) bool: within ``mm`` in plane of ``region`` (slice by slice)."""
    from scipy import ndimage

    px = float(np.min(geometry.spacing[list(geometry.inplane)]))
    steps = max(int(np.ceil(mm / px)), 1)
    return ndimage.binary_dilation(region, structure=inplane_structure(geometry.axis), iterations=steps)
