"""Synthetic anatomy: an LV shell, an optional RV free wall, infarcts with an isthmus, hex cells.

The LV is a truncated prolate shell in local coordinates (long axis +z, apex at z = -c, base plane
z = 0), parametrised by circumferential angle theta, meridian angle phi (0 at the apex) and
transmural depth t (0 endocardium, 1 epicardium); optionally irregular, as a real one is (its wall
thickness and outline vary about the long axis: :func:`irregular_shape`). The RV free wall is a crescent attached to the
LV epicardium along two junction lines (the septum is the LV wall). The scar is an analytic
function of (theta, phi, t): one to three subendocardial infarcts whose transmurality falls
towards their edge, each crossed by a thin band of surviving tissue (an isthmus).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

N_LAYERS = 6  # transmural node layers
PHI_APEX = 0.04 * np.pi  # the shell starts just off the apex (a small apical hole)
PHI_BASE = 0.5 * np.pi  # base plane z = 0


@dataclass(frozen=True)
class LVShape:
    """Shell dimensions in mm."""

    a_endo: float  # endocardial short-axis radius (x)
    b_endo: float  # endocardial short-axis radius (y)
    c_endo: float  # endocardial long-axis semi-length
    wall: float  # mean wall thickness
    #: (k, relative amplitude, phase) of harmonics about the long axis of the wall's thickness (faded
    #: towards the apex by sin(phi)) and of the cross-section's outline (a factor on x and y, endo-
    #: and epicardium alike); empty: the smooth shell.
    wall_harmonics: tuple[tuple[int, float, float], ...] = ()
    section_harmonics: tuple[tuple[int, float, float], ...] = ()

    @property
    def wall_min(self) -> float:
        """A lower bound of the wall thickness, mm."""
        return self.wall * (1 - sum(abs(amp) for _, amp, _ in self.wall_harmonics))

    @property
    def wall_max(self) -> float:
        """An upper bound of the wall thickness, mm."""
        return self.wall * (1 + sum(abs(amp) for _, amp, _ in self.wall_harmonics))

    @property
    def section_bounds(self) -> tuple[float, float]:
        """Bounds of :meth:`section_scale`."""
        total = sum(abs(amp) for _, amp, _ in self.section_harmonics)
        return 1 - total, 1 + total

    def harmonics_facts(self) -> dict[str, list[list[float]]]:
        """The harmonics for case.json: [k, relative amplitude, phase rad] each."""
        return {
            "wall": [[k, round(a, 5), round(p, 5)] for k, a, p in self.wall_harmonics],
            "outline": [[k, round(a, 5), round(p, 5)] for k, a, p in self.section_harmonics],
        }

    def wall_at(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """(N,) wall thickness in mm at parametric angles ``theta``, ``phi``."""
        return self.wall * (1 + np.sin(phi) * _series(self.wall_harmonics, theta))

    def section_scale(self, theta: np.ndarray) -> np.ndarray:
        """(N,) factor on the in-plane coordinates at parametric angle ``theta``."""
        return 1 + _series(self.section_harmonics, theta)

    def position(self, theta: np.ndarray, phi: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(N, 3) local mm positions of parametric points."""
        w = t * self.wall_at(theta, phi)
        a = self.a_endo + w
        b = self.b_endo + w
        c = self.c_endo + w
        s = np.sin(phi) * self.section_scale(theta)
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


def _series(harmonics: tuple[tuple[int, float, float], ...], theta: np.ndarray) -> np.ndarray:
    """(N,) sum of amplitude x cos(k theta - phase) over ``harmonics`` (0 without any)."""
    out = np.zeros(np.shape(theta))
    for k, amp, phase in harmonics:
        out = out + amp * np.cos(k * theta - phase)
    return out


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


def rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A random rotation by at most ``max_deg`` about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    ang = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * k @ k


def hex_cells(n_t: int, n_phi: int, n_theta: int, periodic: bool = True) -> np.ndarray:
    """(C, 8) hexahedra of a (t, phi, theta) node grid (node index (t * n_phi + phi) * n_theta + theta),
    periodic in theta unless ``periodic`` is False."""
    grids = np.meshgrid(
        np.arange(n_t - 1), np.arange(n_phi - 1), np.arange(n_theta if periodic else n_theta - 1), indexing="ij"
    )
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


#: The RV crescent: its centre lies RV_OFFSET x R from the LV axis and its endocardium has radius R,
#: where R is the LV epicardial radius at that height; it meets the LV epicardium where the angle
#: about its centre is +-RV_HALF_ANGLE.
RV_OFFSET = 0.9
RV_HALF_ANGLE = float(np.arccos((0.5 * RV_OFFSET**2 - RV_OFFSET**2) / RV_OFFSET))  # cos = -RV_OFFSET / 2
#: The RV reaches this fraction of the LV's length from the base.
RV_LENGTH = 0.7


@dataclass(frozen=True)
class RVShape:
    """The RV free wall, attached to an LV shell: parameters (z, theta, t) -> local mm."""

    lv: LVShape
    wall: float  # RV wall thickness, mm

    @property
    def z_min(self) -> float:
        return -RV_LENGTH * (self.lv.c_endo + self.lv.wall)

    def lv_epi_radius(self, z: np.ndarray) -> np.ndarray:
        """The LV epicardial radius at height z, by its smaller semi-axis, thinnest wall and narrowest outline: the free
        wall's ends then reach into the LV wall, so the RV cavity is closed (no gap at the junctions)."""
        c = self.lv.c_endo + self.lv.wall
        r0 = (min(self.lv.a_endo, self.lv.b_endo) + self.lv.wall_min) * self.lv.section_bounds[0]
        return r0 * np.sqrt(np.clip(1 - (z / c) ** 2, 0, None))

    def position(self, z: np.ndarray, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(N, 3) points of the free wall: z in [z_min, 0], theta in [-RV_HALF_ANGLE, RV_HALF_ANGLE], t in [0, 1]."""
        r = self.lv_epi_radius(z)
        rad = r + t * self.wall
        return np.stack([RV_OFFSET * r + rad * np.cos(theta), rad * np.sin(theta), z], axis=1)

    def volume_element(self, z: np.ndarray, theta: np.ndarray, t: np.ndarray) -> np.ndarray:
        """|det d(x)/d(z, theta, t)| (central differences)."""
        h = 1e-5
        cols = [
            (
                self.position(z + h * d[0], theta + h * d[1], t + h * d[2])
                - self.position(z - h * d[0], theta - h * d[1], t - h * d[2])
            )
            / (2 * h)
            for d in np.eye(3)
        ]
        return np.abs(np.linalg.det(np.stack(cols, axis=2)))

    def in_cavity(self, p: np.ndarray) -> np.ndarray:
        """(N,) bool: local points inside the RV cavity (between the septum and the free wall)."""
        z = p[:, 2]
        r = self.lv_epi_radius(z)
        rho_lv = np.hypot(p[:, 0], p[:, 1])
        rho_rv = np.hypot(p[:, 0] - RV_OFFSET * r, p[:, 1])
        return (z >= self.z_min) & (z <= 0) & (rho_rv < r) & (rho_lv > r)


#: Passes of :func:`lv_parameters` over an irregular shell (each: depth, then the angles).
SHAPE_PASSES = 8


def lv_parameters(
    shape: LVShape, p: np.ndarray, iterations: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Invert :meth:`LVShape.position` for local points ``p`` (N, 3).

    Returns
    -------
    theta, phi, t : (N,) parameters (t by bisection on the confocal-like family of surfaces; with
        harmonics, alternating with the angles, whose wall and outline the bisection takes as fixed);
    inside : (N,) bool, the point lies in the LV wall (t in [0, 1], phi in [PHI_APEX, PHI_BASE]).
    """
    x0, y0, z = p.T
    x, y, wall = x0, y0, np.full(len(p), shape.wall)

    def level(t: np.ndarray, wall: np.ndarray) -> np.ndarray:
        w = t * wall
        return (x / (shape.a_endo + w)) ** 2 + (y / (shape.b_endo + w)) ** 2 + (z / (shape.c_endo + w)) ** 2 - 1

    for _ in range(SHAPE_PASSES if shape.wall_harmonics or shape.section_harmonics else 1):
        lo, hi = np.full(len(p), -0.5), np.full(len(p), 1.5)  # level() falls with t
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            above = level(mid, wall) > 0
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        t = 0.5 * (lo + hi)
        w = t * wall
        phi = np.arccos(np.clip(-z / (shape.c_endo + w), -1, 1))
        theta = np.arctan2(y / (shape.b_endo + w), x / (shape.a_endo + w)) % (2 * np.pi)
        wall, scale = shape.wall_at(theta, phi), shape.section_scale(theta)
        x, y = x0 / scale, y0 / scale
    inside = (t >= 0) & (t <= 1) & (phi >= PHI_APEX) & (phi <= PHI_BASE)
    return theta, phi, t, inside


def in_rv_wall(rv: RVShape, p: np.ndarray) -> np.ndarray:
    """(N,) bool: local points in the RV free wall."""
    z = p[:, 2]
    r = rv.lv_epi_radius(z)
    dx = p[:, 0] - RV_OFFSET * r
    rho = np.hypot(dx, p[:, 1])
    angle = np.abs(np.arctan2(p[:, 1], dx))
    return (z >= rv.z_min) & (z <= 0) & (rho >= r) & (rho <= r + rv.wall) & (angle <= RV_HALF_ANGLE)


def in_lv_cavity(shape: LVShape, p: np.ndarray) -> np.ndarray:
    """(N,) bool: local points inside the LV endocardium, below the base plane."""
    scale = shape.section_scale(np.arctan2(p[:, 1] / shape.b_endo, p[:, 0] / shape.a_endo))  # as position at t = 0
    q = (p[:, 0] / (scale * shape.a_endo)) ** 2 + (p[:, 1] / (scale * shape.b_endo)) ** 2 + (p[:, 2] / shape.c_endo) ** 2
    return (q < 1) & (p[:, 2] <= 0)


#: The real human case's LV, measured on its short-axis labels (rays from the cavity's centre every
#: 10 deg, median over its slices; ``benchmarks/lv_shape.py``): relative amplitudes of the wall
#: thickness's harmonics 1-3 (0.21, 0.14, 0.13) and of the endocardial outline's harmonics 2-3
#: (0.07, 0.04; of harmonic 2 the part that the ellipse, b/a 0.85-1, does not give already). Part
#: of each is the 2.125 mm pixels.
REAL_WALL_HARMONICS = ((1, 0.21), (2, 0.14), (3, 0.13))
REAL_SECTION_HARMONICS = ((2, 0.05), (3, 0.04))


def irregular_shape(shape: LVShape, irregularity: float, rng: np.random.Generator) -> LVShape:
    """``shape`` with harmonics of its wall and outline: amplitudes 0.5-1 times ``irregularity``
    times the real case's over their mean (0.75), random phases (``SynthConfig.lv_irregularity``)."""

    def draw(real: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float, float], ...]:
        amps = irregularity * np.array([amp for _, amp in real]) * rng.uniform(0.5, 1.0, len(real)) / 0.75
        return tuple((k, float(a), float(rng.uniform(0, 2 * np.pi))) for (k, _), a in zip(real, amps))

    return replace(shape, wall_harmonics=draw(REAL_WALL_HARMONICS), section_harmonics=draw(REAL_SECTION_HARMONICS))


def real_like_anatomy(image: LVShape, rng: np.random.Generator) -> tuple[LVShape, list[Infarct]]:
    """The mesh's shape (the imaged heart's radii, length and wall each off by up to 6%, as a model
    made from another scan or a smoothed segmentation) and the infarcts of a real-like case: a small
    one at an RV insertion (mid-ventricle, 2.5-5% of the wall) and one reaching the apex."""
    f = rng.uniform(0.94, 1.06, 4)
    mesh = replace(
        image, a_endo=image.a_endo * f[0], b_endo=image.b_endo * f[1], c_endo=image.c_endo * f[2], wall=image.wall * f[3]
    )
    insertion = float(np.arccos(RV_OFFSET / 2)) * rng.choice([-1.0, 1.0])  # where the RV meets the LV
    small = draw_infarct(
        rng,
        theta=insertion + rng.normal(0, 0.1),
        phi=rng.uniform(0.3, 0.4) * np.pi,
        radius=rng.uniform(13.5, 16.5),
        transmurality=rng.uniform(0.5, 0.9),
        lobes_max=0.2,
        isthmus=False,
    )
    apical = draw_infarct(
        rng,
        theta=rng.uniform(0, 2 * np.pi),
        phi=rng.uniform(0.1, 0.16) * np.pi,
        radius=rng.uniform(16, 22),
        transmurality=rng.uniform(0.5, 1.0),
    )
    return mesh, [small, apical]


def draw_infarct(
    rng: np.random.Generator,
    theta: float,
    phi: float,
    radius: float,
    transmurality: float,
    lobes_max: float = 0.25,
    isthmus: bool = True,
) -> Infarct:
    """An infarct at (theta, phi) of ``radius`` mm with a random boundary and, with ``isthmus``, a
    surviving channel 2.5-4.5 mm wide (drawn after the caller's arguments, in this order)."""
    return Infarct(
        theta=theta,
        phi=phi,
        radius=radius,
        transmurality=transmurality,
        lobes=rng.uniform(0.0, lobes_max),
        lobe_phase=rng.uniform(0, 2 * np.pi),
        isthmus_angle=rng.uniform(0, np.pi),
        isthmus_width=rng.uniform(2.5, 4.5) if isthmus else 0.0,
    )
