"""Synthetic cases: a ventricular mesh, a known scar field and LGE stacks made with the forward model.

The anatomy (an LV shell, optionally an RV free wall, infarcts with an isthmus) is in
:mod:`.anatomy`. Each pixel of the probability stack is the volume-weighted mean of the truth over
the LV myocardium inside its prism (Monte-Carlo samples weighted by the Jacobian of the
parametrisation), plus Gaussian noise. With ``intensity`` the stack is LGE-like signal instead:
every prism's volumes of LV and RV myocardium, LV scar and blood pool (LV and RV cavities) give
the partial-volume mix of :func:`.tissue.lge_signal` with random tissue levels, plus Rician noise,
and the mask is what a segmentation would draw (pixels at least :data:`MASK_WALL` LV myocardium,
border pixels that are part blood included).

Pure logic: nothing here reads or writes files (see :mod:`.io` and :mod:`.api`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from .anatomy import (
    N_LAYERS,
    PHI_APEX,
    PHI_BASE,
    RV_HALF_ANGLE,
    Infarct,
    LVShape,
    RVShape,
    draw_infarct,
    hex_cells,
    irregular_shape,
    lv_parameters,
    real_like_anatomy,
    rotation,
    scar_field,
)
from .config import SynthConfig
from .forward import simulate_pixels
from .geometry import apply_affine
from .registration_cost import rigid_matrix
from .stack import SliceStack, StackGeometry
from .synthetic_signal import near, prism_tissue
from .tissue import TissueLevels, lge_signal, rician

#: The segmentation-like mask of an intensity case: pixels whose prism is at least this much LV myocardium.
MASK_WALL = 0.25
#: Transmural node layers of the RV free wall.
RV_LAYERS = 3


@dataclass
class SyntheticCase:
    """A generated case: everything in world RAS mm.

    ``stack`` is the short-axis stack (pixel values in [0, 1], mask = pixels with LV myocardium;
    with ``intensity``: LGE-like signal and a segmentation-like mask); ``long_axis`` the one-slice
    long-axis stacks. With ``intensity``, ``probability`` holds the same stacks as probabilities
    (short axis first), ``blood_pool`` and ``remote`` reference masks per stack (pixels that are
    blood pool; LV myocardium far from any scar), and ``facts`` the tissue levels. ``truth_at``
    gives the imaged LV's scar field at any point of the stacks' world ((M, 3) mm -> (M,) 0/1,
    the wall's parameters continued beyond it): on the plain case's mesh nodes it is
    ``scar_truth`` (after ``study_offset``, at the nodes moved back by ``facts["study_to_mesh"]``).
    """

    points: np.ndarray  # (N, 3)
    hexes: np.ndarray  # (C, 8) node indices of hexahedral cells
    scar_truth: np.ndarray  # (N,) 0/1
    stack: SliceStack
    facts: dict[str, Any] = field(default_factory=dict)
    long_axis: list[SliceStack] = field(default_factory=list)
    is_lv: np.ndarray | None = None  # (N,) bool, biventricular cases
    probability: list[SliceStack] = field(default_factory=list)
    blood_pool: list[np.ndarray] = field(default_factory=list)
    remote: list[np.ndarray] = field(default_factory=list)
    true_offsets: np.ndarray | None = None  # (K, 3) mm [di, dj, dn] of the short-axis slices (``shift``)
    truth_at: Callable[[np.ndarray], np.ndarray] | None = None


def make_case(config: SynthConfig) -> SyntheticCase:
    """Generate a synthetic case from ``config`` (deterministic for a given seed)."""
    rng = np.random.default_rng(config.seed)
    a = rng.uniform(22, 28)
    k = config.heart_scale  # scales the drawn sizes only: every heart_scale draws the same case
    shape = LVShape(
        a_endo=k * a, b_endo=k * a * rng.uniform(0.85, 1.0), c_endo=k * rng.uniform(55, 68), wall=rng.uniform(8, 12)
    )
    if config.lv_irregularity > 0:
        shape = irregular_shape(shape, config.lv_irregularity, np.random.default_rng([config.seed, IRREGULAR_STREAM]))

    infarcts = [
        draw_infarct(
            rng,
            theta=rng.uniform(0, 2 * np.pi),
            phi=rng.uniform(0.2 * np.pi, 0.42 * np.pi),
            radius=rng.uniform(14, 24) * config.scar_scale,
            transmurality=rng.uniform(0.5, 1.0),
        )
        for _ in range(int(rng.integers(1, 4)))
    ]

    image_shape = shape  # the heart the images see; the mesh is ``shape`` (a model of it when real_like)
    if config.real_like:
        shape, infarcts = real_like_anatomy(image_shape, np.random.default_rng([config.seed, REAL_LIKE_STREAM]))

    # Node grid: circumferential : meridional node counts ~ 2.5 : 1 gives near-square surface cells.
    per_layer = max(config.n_nodes // N_LAYERS, 40)
    n_phi = max(int(round(np.sqrt(per_layer / 2.5))), 4)
    n_theta = max(int(round(per_layer / n_phi)), 8)
    grids = np.meshgrid(
        np.linspace(0, 1, N_LAYERS),
        np.linspace(PHI_APEX, PHI_BASE, n_phi),
        np.linspace(0, 2 * np.pi, n_theta, endpoint=False),
        indexing="ij",
    )
    t_n, p_n, th_n = (g.ravel() for g in grids)
    local_nodes = shape.position(th_n, p_n, t_n)
    truth = scar_field(image_shape, infarcts, th_n, p_n, t_n)  # the scar moves with the wall's parameters

    # World placement: the scanner never lines up with the LV (unless --axial).
    rot_world = rotation(rng, 60.0) if config.oblique else np.eye(3)
    shift = rng.uniform(-30, 30, size=3) if config.oblique else np.zeros(3)
    points = local_nodes @ rot_world.T + shift

    # Short-axis stack: slices perpendicular to the (slightly mis-planned) long axis.
    rot_stack = rot_world @ (rotation(rng, 10.0) if config.oblique else np.eye(3))
    radius = (max(shape.a_endo, shape.b_endo) + shape.wall_max) * shape.section_bounds[1]
    half_w = radius + 3 * config.pixel_spacing
    if config.biventricular:  # the RV reaches about twice the LV's radius from its axis
        half_w = 2.05 * radius + 6 + 3 * config.pixel_spacing
    n_inplane = int(np.ceil(2 * half_w / config.pixel_spacing)) + 1
    z_apex = -(shape.c_endo + shape.wall)
    first = z_apex + (rng.uniform(0.3, 1.0) + config.real_like) * config.slice_spacing
    n_slices = int(np.floor((0.0 - first) / config.slice_spacing)) + 1
    origin_local = np.array([-half_w, -half_w, first])
    affine = np.eye(4)
    affine[:3, :3] = rot_stack @ np.diag([config.pixel_spacing, config.pixel_spacing, config.slice_spacing])
    affine[:3, 3] = rot_stack @ origin_local + shift
    dims = (n_inplane, n_inplane, n_slices)

    # Forward model: each pixel = volume-weighted mean of the truth over the myocardium in its prism.
    th_s = rng.uniform(0, 2 * np.pi, config.samples)
    p_s = rng.uniform(PHI_APEX, PHI_BASE, config.samples)
    t_s = rng.uniform(0, 1, config.samples)
    w = image_shape.volume_element(th_s, p_s, t_s)
    world_s = image_shape.position(th_s, p_s, t_s) @ rot_world.T + shift
    truth_s = scar_field(image_shape, infarcts, th_s, p_s, t_s)

    def acquire(geometry: StackGeometry, name: str) -> SliceStack:
        vals, covered = simulate_pixels(world_s, w, truth_s, geometry)
        vals[covered] = np.clip(vals[covered] + rng.normal(0, config.noise, int(covered.sum())), 0, 1)
        return SliceStack(values=vals, geometry=geometry, mask=covered, name=name)

    stack = acquire(StackGeometry(affine, dims, config.slice_thickness), "short axis")

    # Long-axis views (4-, 2- and 3-chamber-like): one slice each, in a plane through the long axis.
    long_axis = []
    psi0 = rng.uniform(0, np.pi) if config.long_axis_views else 0.0
    margin = 3 * config.pixel_spacing
    n_long = int(np.ceil((-z_apex + 2 * margin) / config.pixel_spacing)) + 1
    for v, dpsi in enumerate(np.deg2rad([0.0, 90.0, 135.0])[: config.long_axis_views]):
        d = np.array([np.cos(psi0 + dpsi), np.sin(psi0 + dpsi), 0.0])
        frame = np.column_stack([d, [0.0, 0.0, 1.0], np.cross(d, [0.0, 0.0, 1.0])])  # in plane, long axis, normal
        la = np.eye(4)
        la[:3, :3] = rot_stack @ frame @ np.diag([config.pixel_spacing, config.pixel_spacing, config.slice_thickness])
        la[:3, 3] = rot_stack @ (-half_w * d + np.array([0.0, 0.0, z_apex - margin])) + shift
        long_axis.append(
            acquire(StackGeometry(la, (n_inplane, n_long, 1), config.slice_thickness), f"long-axis view {v + 1}")
        )

    facts: dict[str, Any] = {
        "seed": config.seed,
        "n_nodes": int(len(points)),
        "grid_nodes": [N_LAYERS, n_phi, n_theta],
        "slice_spacing_mm": config.slice_spacing,
        "slice_thickness_mm": config.slice_thickness,
        "pixel_spacing_mm": config.pixel_spacing,
        "image_shape": list(dims),
        "oblique": config.oblique,
        "noise_sd": config.noise,
        "lv_mm": {"a_endo": shape.a_endo, "b_endo": shape.b_endo, "c_endo": shape.c_endo, "wall": shape.wall},
        **({"heart_scale": config.heart_scale} if config.heart_scale != 1.0 else {}),
        **(
            {"lv_irregularity": config.lv_irregularity, "lv_harmonics": shape.harmonics_facts()}
            if config.lv_irregularity > 0
            else {}
        ),
        "n_infarcts": len(infarcts),
        "scar_fraction_nodes": float(truth.mean()),
        "forward_model_samples": config.samples,
        "long_axis_views": config.long_axis_views,
    }
    case = SyntheticCase(
        points=points,
        hexes=hex_cells(N_LAYERS, n_phi, n_theta),
        scar_truth=truth,
        stack=stack,
        facts=facts,
        long_axis=long_axis,
        truth_at=partial(_scar_at, image_shape, infarcts, rot_world, shift),
    )
    # Everything below draws from the generator after the plain case, which stays the same.
    rv = None
    if config.biventricular:
        case, rv = _add_rv(case, shape, rng, config, rot_world, shift, n_phi, n_theta)
        rv = RVShape(lv=image_shape, wall=rv.wall)  # the imaged RV sits on the imaged LV
    if config.shift > 0:  # re-acquire the short axis with the heart displaced slice by slice
        g = case.stack.geometry
        offsets = rng.normal(0, 1, (g.n_slices, 3)) * np.array([config.shift, config.shift, config.shift / 2])
        moved = acquire(g.with_offsets(offsets), case.stack.name)
        case.stack = SliceStack(values=moved.values, geometry=g, mask=moved.mask, name=moved.name)
        case.true_offsets = offsets
        case.facts["slice_offsets_mm"] = {"lge": offsets.round(4).tolist()}
        case.facts["shift_sd_mm"] = config.shift
    if config.intensity:
        case = _intensity(case, image_shape, rv, infarcts, rng, config, rot_world, shift)
    if config.study_offset > 0 or config.study_rotation > 0:
        case = _moved_study(case, config)
    return case


def _scar_at(
    shape: LVShape, infarcts: list[Infarct], rot_world: np.ndarray, shift: np.ndarray, points: np.ndarray
) -> np.ndarray:
    """The scar field of ``shape`` at world points (M, 3) mm placed by ``rot_world`` and ``shift``."""
    theta, phi, t, _ = lv_parameters(shape, (points - shift) @ rot_world)
    return scar_field(shape, infarcts, theta, phi, t)


#: Seeds the LV's irregularity (``[seed, IRREGULAR_STREAM]``): the plain case's draws stay as they were.
IRREGULAR_STREAM = 1203


#: Seeds the real-like changes (``[seed, REAL_LIKE_STREAM]``), so the plain case's draws stay as they were.
REAL_LIKE_STREAM = 290


def _moved_study(case: SyntheticCase, config: SynthConfig) -> SyntheticCase:
    """The mesh moved rigidly relative to every stack, as a mesh made from another scan: by
    ``study_offset`` mm in a random direction and ``study_rotation`` degrees about a random axis
    through its centre (its own generator: the stacks stay those of the unmoved case)."""
    rng = np.random.default_rng([config.seed, 20261202])
    direction, axis = rng.normal(size=3), rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    axis /= np.linalg.norm(axis)
    params = np.r_[config.study_offset * direction, config.study_rotation * axis]
    matrix = rigid_matrix(params, case.points.mean(axis=0))
    case.points = apply_affine(matrix, case.points)
    case.facts["study_to_mesh"] = matrix.round(9).tolist()
    case.facts["study_offset_mm"], case.facts["study_rotation_deg"] = config.study_offset, config.study_rotation
    return case


def _add_rv(
    case: SyntheticCase,
    lv: LVShape,
    rng: np.random.Generator,
    config: SynthConfig,
    rot: np.ndarray,
    shift: np.ndarray,
    n_phi: int,
    n_theta: int,
) -> tuple[SyntheticCase, RVShape]:
    """The case with an RV free wall (nodes, hexes; no scar) appended to the mesh, and ``is_lv``; and the RV shape."""
    rv = RVShape(lv=lv, wall=float(rng.uniform(3.0, 4.5)))
    n_z = n_phi
    n_th = max(int(round(n_theta * RV_HALF_ANGLE / np.pi * 0.9)), 8)
    t, z, th = (
        g.ravel()
        for g in np.meshgrid(
            np.linspace(0, 1, RV_LAYERS),
            np.linspace(rv.z_min, 0, n_z),
            np.linspace(-RV_HALF_ANGLE, RV_HALF_ANGLE, n_th),
            indexing="ij",
        )
    )
    rv_points = rv.position(z, th, t) @ rot.T + shift
    n_lv = len(case.points)
    case.facts.update(
        {
            "biventricular": True,
            "rv_wall_mm": rv.wall,
            "rv_nodes": int(len(rv_points)),
            "n_nodes": int(n_lv + len(rv_points)),
        }
    )
    return SyntheticCase(
        points=np.concatenate([case.points, rv_points]),
        hexes=np.concatenate([case.hexes, n_lv + hex_cells(RV_LAYERS, n_z, n_th, periodic=False)]),
        scar_truth=np.concatenate([case.scar_truth, np.zeros(len(rv_points))]),
        stack=case.stack,
        facts=case.facts,
        long_axis=case.long_axis,
        is_lv=np.concatenate([np.ones(n_lv, bool), np.zeros(len(rv_points), bool)]),
        truth_at=case.truth_at,
    ), rv


def _intensity(
    case: SyntheticCase,
    lv: LVShape,
    rv: RVShape | None,
    infarcts: list[Infarct],
    rng: np.random.Generator,
    config: SynthConfig,
    rot: np.ndarray,
    shift: np.ndarray,
) -> SyntheticCase:
    """The case with its stacks as LGE-like signal (see the module docstring); probabilities kept aside."""
    draws = rng.uniform(size=4)
    if config.real_like:  # PSIR, as the real case's medians: blood 32, scar 17, outside 14, myocardium 7 of 241
        blood = 260 + 60 * draws[2]
        levels = TissueLevels(
            healthy=float(5 + 15 * draws[0]),
            scar=float(blood * (0.45 + 0.2 * draws[1])),
            blood=float(blood),
            outside=float(blood * (0.3 + 0.2 * draws[3])),
        )
    else:
        levels = TissueLevels(
            healthy=float(80 + 40 * draws[0]),
            scar=float(320 + 60 * draws[1]),
            blood=float(230 + 60 * draws[2]),
            outside=float(40 + 40 * draws[3]),
        )

    def signal(stack: SliceStack, offsets: np.ndarray | None) -> tuple[SliceStack, np.ndarray, np.ndarray]:
        g = stack.geometry
        wall_lv, scar, wall_rv, blood = prism_tissue(g.with_offsets(offsets), lv, rv, infarcts, rot, shift, rng)
        wall = wall_lv + wall_rv
        with np.errstate(invalid="ignore", divide="ignore"):
            s_wall = np.where(wall > 0, scar / wall, 0.0)  # the RV myocardium is healthy
        values = rician(lge_signal(wall, s_wall, blood, levels), config.rician_sigma, rng)
        mask = wall_lv >= MASK_WALL
        far = ~near(scar > 0.0, g, 10.0)
        return (
            SliceStack(values=values, geometry=g, mask=mask, name=stack.name),
            blood >= 0.95,
            mask & (wall_lv >= 0.95) & far,
        )

    made = [signal(case.stack, case.true_offsets)] + [signal(st, None) for st in case.long_axis]
    case.facts.update(
        {
            "target": "intensity",
            "tissue_levels": levels.as_dict(),
            "rician_sigma": config.rician_sigma,
            "mask_min_wall_fraction": MASK_WALL,
        }
    )
    return SyntheticCase(
        points=case.points,
        hexes=case.hexes,
        scar_truth=case.scar_truth,
        stack=made[0][0],
        facts=case.facts,
        long_axis=[m[0] for m in made[1:]],
        is_lv=case.is_lv,
        probability=[case.stack, *case.long_axis],
        blood_pool=[m[1] for m in made],
        remote=[m[2] for m in made],
        true_offsets=case.true_offsets,
        truth_at=case.truth_at,
    )


def case_mesh(case: SyntheticCase) -> Any:
    """The case's mesh as a pyvista UnstructuredGrid of hexahedra with point array ``scar_truth``
    (and, biventricular, point and cell arrays ``is_LV``: 1 on the LV, 0 on the RV)."""
    import pyvista as pv

    cells = np.hstack([np.full((len(case.hexes), 1), 8), case.hexes]).ravel()
    types = np.full(len(case.hexes), pv.CellType.HEXAHEDRON, dtype=np.uint8)
    grid = pv.UnstructuredGrid(cells, types, case.points)
    grid.point_data["scar_truth"] = case.scar_truth.astype(np.float32)
    if case.is_lv is not None:
        grid.point_data["is_LV"] = case.is_lv.astype(np.uint8)
        grid.cell_data["is_LV"] = case.is_lv[case.hexes].all(axis=1).astype(np.uint8)
    return grid
