"""Synthetic cases: an LV wall mesh, a known scar field and LGE stacks made with the forward model.

The LV is a truncated prolate shell in local coordinates (long axis +z, apex at z = -c, base plane
z = 0), parametrised by circumferential angle theta, meridian angle phi (0 at the apex) and
transmural depth t (0 endocardium, 1 epicardium). The scar is an analytic function of
(theta, phi, t): one to three subendocardial infarcts whose transmurality falls towards their edge,
each crossed by a thin band of surviving tissue (an isthmus). Each pixel of the generated stack is
the volume-weighted mean of the truth over the myocardium inside its prism (Monte-Carlo samples,
weighted by the Jacobian of the parametrisation), plus Gaussian noise.

Pure logic: nothing here reads or writes files (see :mod:`.io` and :mod:`.api`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import SynthConfig
from .forward import simulate_pixels
from .stack import SliceStack, StackGeometry

N_LAYERS = 6  # transmural node layers
PHI_APEX = 0.04 * np.pi  # the shell starts just off the apex (a small apical hole)
PHI_BASE = 0.5 * np.pi  # base plane z = 0


@dataclass(frozen=True)
class LVShape:
    """Shell dimensions in mm."""

    a_endo: float  # endocardial short-axis radius (x)
    b_endo: float  # endocardial short-axis radius (y)
    c_endo: float  # endocardial long-axis semi-length
    wall: float  # wall thickness

    def position(self, theta: np.ndarray, phi: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(N, 3) local mm positions of parametric points."""
        a = self.a_endo + t * self.wall
        b = self.b_endo + t * self.wall
        c = self.c_endo + t * self.wall
        s = np.sin(phi)
        return np.stack([a * s * np.cos(theta), b * s * np.sin(theta), -c * np.cos(phi)], axis=1)

    def volume_element(self, theta: np.ndarray, phi: np.ndarray, t: np.ndarray) -> np.ndarray:
        """|det d(x)/d(theta, phi, t)|: mm^3 per unit parameter volume (central differences)."""
        h = 1e-5
        cols = []
        for d in np.eye(3):
            plus = self.position(theta + h * d[0], phi + h * d[1], t + h * d[2])
            minus = self.position(theta - h * d[0], phi - h * d[1], t - h * d[2])
            cols.append((plus - minus) / (2 * h))
        return np.abs(np.linalg.det(np.stack(cols, axis=2)))


@dataclass(frozen=True)
class Infarct:
    """One scar region on the (theta, phi) surface, in mm-scaled surface coordinates."""

    theta: float
    phi: float
    radius: float  # mm
    transmurality: float  # depth fraction reached at the centre (1 = transmural)
    lobes: float  # boundary irregularity amplitude
    lobe_phase: float
    isthmus_angle: float  # direction of the surviving channel
    isthmus_width: float  # mm


@dataclass
class SyntheticCase:
    """A generated case: everything in world RAS mm.

    ``stack`` is the short-axis stack (pixel values in [0, 1], mask = pixels with myocardium);
    ``long_axis`` the one-slice long-axis stacks.
    """

    points: np.ndarray  # (N, 3)
    hexes: np.ndarray  # (C, 8) node indices of hexahedral cells
    scar_truth: np.ndarray  # (N,) 0/1
    stack: SliceStack
    facts: dict[str, Any] = field(default_factory=dict)
    long_axis: list[SliceStack] = field(default_factory=list)


def scar_field(shape: LVShape, infarcts: list[Infarct], theta: np.ndarray, phi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N,) 0/1 truth at parametric points."""
    out = np.zeros(theta.shape, dtype=bool)
    r_mer = np.sqrt((shape.a_endo**2 + shape.c_endo**2) / 2)  # mm per radian along the meridian
    for inf in infarcts:  # a handful of regions, each vectorised over points
        dth = np.angle(np.exp(1j * (theta - inf.theta)))
        u = dth * shape.a_endo * np.sin(0.5 * (phi + inf.phi))  # circumferential mm
        v = (phi - inf.phi) * r_mer  # meridional mm
        d = np.hypot(u, v)
        psi = np.arctan2(v, u)
        radius = inf.radius * (1 + inf.lobes * np.sin(2 * psi + inf.lobe_phase))
        rel = np.clip(d / radius, 0, None)
        depth = inf.transmurality * np.sqrt(np.clip(1 - rel**2, 0, None))
        scar = (rel < 1) & (t <= depth)
        across = np.abs(-u * np.sin(inf.isthmus_angle) + v * np.cos(inf.isthmus_angle))
        along = np.abs(u * np.cos(inf.isthmus_angle) + v * np.sin(inf.isthmus_angle))
        isthmus = (across < inf.isthmus_width / 2) & (along < 0.8 * inf.radius)
        out |= scar & ~isthmus
    return out.astype(np.float64)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation by at most ``max_deg`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * k @ k


def _hex_cells(n_t: int, n_phi: int, n_theta: int) -> np.ndarray:
    """(C, 8) hexahedra of a (t, phi, theta) node grid, periodic in theta."""
    grids = np.meshgrid(np.arange(n_t - 1), np.arange(n_phi - 1), np.arange(n_theta), indexing="ij")
    it, ip, ith = (g.ravel() for g in grids)
    nxt = (ith + 1) % n_theta

    def idx(t: np.ndarray, p: np.ndarray, th: np.ndarray) -> np.ndarray:
        return (t * n_phi + p) * n_theta + th

    return np.stack(
        [
            idx(it, ip, ith),
            idx(it, ip, nxt),
            idx(it, ip + 1, nxt),
            idx(it, ip + 1, ith),
            idx(it + 1, ip, ith),
            idx(it + 1, ip, nxt),
            idx(it + 1, ip + 1, nxt),
            idx(it + 1, ip + 1, ith),
        ],
        axis=1,
    )


def make_case(config: SynthConfig) -> SyntheticCase:
    """Generate a synthetic case from ``config`` (deterministic for a given seed)."""
    rng = np.random.default_rng(config.seed)
    a = rng.uniform(22, 28)
    shape = LVShape(a_endo=a, b_endo=a * rng.uniform(0.85, 1.0), c_endo=rng.uniform(55, 68), wall=rng.uniform(8, 12))

    infarcts = []
    for _ in range(int(rng.integers(1, 4))):
        infarcts.append(
            Infarct(
                theta=rng.uniform(0, 2 * np.pi),
                phi=rng.uniform(0.2 * np.pi, 0.42 * np.pi),
                radius=rng.uniform(14, 24),
                transmurality=rng.uniform(0.5, 1.0),
                lobes=rng.uniform(0.0, 0.25),
                lobe_phase=rng.uniform(0, 2 * np.pi),
                isthmus_angle=rng.uniform(0, np.pi),
                isthmus_width=rng.uniform(2.5, 4.5),
            )
        )

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
    truth = scar_field(shape, infarcts, th_n, p_n, t_n)

    # World placement: the scanner never lines up with the LV (unless --axial).
    rot_world = _rotation(rng, 60.0) if config.oblique else np.eye(3)
    shift = rng.uniform(-30, 30, size=3) if config.oblique else np.zeros(3)
    points = local_nodes @ rot_world.T + shift

    # Short-axis stack: slices perpendicular to the (slightly mis-planned) long axis.
    rot_stack = rot_world @ (_rotation(rng, 10.0) if config.oblique else np.eye(3))
    half_w = max(shape.a_endo, shape.b_endo) + shape.wall + 3 * config.pixel_spacing
    n_inplane = int(np.ceil(2 * half_w / config.pixel_spacing)) + 1
    z_apex = -(shape.c_endo + shape.wall)
    first = z_apex + rng.uniform(0.3, 1.0) * config.slice_spacing
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
    w = shape.volume_element(th_s, p_s, t_s)
    world_s = shape.position(th_s, p_s, t_s) @ rot_world.T + shift
    truth_s = scar_field(shape, infarcts, th_s, p_s, t_s)

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

    facts = {
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
        "n_infarcts": len(infarcts),
        "scar_fraction_nodes": float(truth.mean()),
        "forward_model_samples": config.samples,
        "long_axis_views": config.long_axis_views,
    }
    return SyntheticCase(
        points=points,
        hexes=_hex_cells(N_LAYERS, n_phi, n_theta),
        scar_truth=truth,
        stack=stack,
        facts=facts,
        long_axis=long_axis,
    )


def case_mesh(case: SyntheticCase) -> Any:
    """The case's mesh as a pyvista UnstructuredGrid of hexahedra with point array ``scar_truth``."""
    import pyvista as pv

    cells = np.hstack([np.full((len(case.hexes), 1), 8), case.hexes]).ravel()
    types = np.full(len(case.hexes), pv.CellType.HEXAHEDRON, dtype=np.uint8)
    grid = pv.UnstructuredGrid(cells, types, case.points)
    grid.point_data["scar_truth"] = case.scar_truth.astype(np.float32)
    return grid
