"""``prepare``: the mesh nodes mapped into the prisms of every stack's pixels, as named stages.

Each stage reads what the ones before it left in a :class:`PrepareRun` and adds its own part,
once and in this order (:data:`STAGES`):

=============  ==========================================================================
read           the mesh (frame, units, region) and every stack's image and masks as on disk
overlap        refuse a mesh that no stack covers (naming the frame/units that would fit);
               warn on partial overlap
register       one rigid transform for the whole study (every stack) onto the mesh, from the
               myocardium masks (:mod:`..registration`): measured (by default, with a warning
               when it is large) and applied when asked (``study_registration`` rigid)
align          per-slice breath-hold offsets from each stack's mask against the mesh
               (``align_slices`` applies them, ``measure_offsets`` only keeps them)
tissue         the (wall, blood) fractions of each ``mixture`` stack's prisms from the mesh
targets        each stack's values converted to scar targets on its final geometry
memberships    the training data: groups and (node, group) memberships
=============  ==========================================================================

The breath-hold offsets (``align``) are residuals on top of the study's registration. The mesh's
myocardium test (a point-in-cell search) is built at most once per run for each region it is
asked with.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..alignment import Alignment, estimate_offsets
from ..config import PrepareConfig, StackConfig
from ..data import MISREGISTRATION_WARN_MM, TrainingData, build_training_data
from ..data_layout import stack_arrays
from ..errors import InputError
from ..geometry import bounding_box
from ..io.artifacts import check_data_output, save_training_data
from ..io.images import load_stack
from ..io.meshes import myocardium_test, read_mesh, region_nodes
from ..io.paths import check_output, refuse_overwrite, stem
from ..progress import Ticker
from ..registration import TURN_DEG, estimate_study_transform, inside_share, mask_centres, moved_geometry, slice_walls
from ..stack import RawStack, SliceStack, StackGeometry, main_slice_normal
from ..targets import INTENSITY_CAVEAT, stack_targets
from ..tissue import short_axis_cavity, tissue_fractions
from ._common import MIN_OVERLAP_SHARE, prepare_inputs, require_overlap

logger = logging.getLogger(__name__)

Inside = Callable[[np.ndarray], np.ndarray]


@dataclass
class PrepareRun:
    """What the stages of one ``prepare`` have computed so far (filled in stage order)."""

    config: PrepareConfig
    mesh_obj: Any = None
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    region: np.ndarray | None = None
    raw: list[RawStack] = field(default_factory=list)
    geometries: list[StackGeometry] = field(default_factory=list)
    alignments: dict[str, Alignment] = field(default_factory=dict)
    tissue: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    stacks: list[SliceStack] = field(default_factory=list)
    data: TrainingData | None = None
    registration: dict[str, Any] | None = None
    _inside: dict[bool, Inside] = field(default_factory=dict)

    def inside(self, with_region: bool, why: str = "`normalise` mixture", instead: str = "use fwhm / nsd") -> Inside:
        """The mesh's myocardium test (in the region when ``with_region``), built once."""
        key = with_region and self.region is not None
        if key not in self._inside:
            region = self.region if key else None
            self._inside[key] = myocardium_test(self.mesh_obj, self.config.mesh, region, why=why, instead=instead)
        return self._inside[key]


def read(run: PrepareRun) -> None:
    """The mesh (frame, units, region; unless the run was given it as read) and every stack as read."""
    if run.mesh_obj is None:
        run.mesh_obj, run.points = read_mesh(run.config.mesh)
    run.region = region_nodes(run.mesh_obj, run.config.mesh)
    run.raw = [load_stack(sc) for sc in run.config.stacks]
    run.geometries = [raw.geometry for raw in run.raw]


def overlap(run: PrepareRun) -> None:
    """Refuse a mesh outside every stack; warn when most of it is outside."""
    share = require_overlap(run.mesh_obj, run.points, run.config.mesh, run.geometries)
    if share < MIN_OVERLAP_SHARE:
        logger.warning(
            "%s: only %.0f%% of the mesh lies within the image stack(s); check `mesh_frame`/`mesh_units`",
            run.config.mesh.path,
            100 * share,
        )


def register(run: PrepareRun) -> None:
    """The study-to-mesh transform from every stack's myocardium mask; every stack's geometry moved
    by it when it is applied (``study_registration`` rigid); by default a warning above ``register_min_mm``."""
    config, mode = run.config, run.config.study_registration
    masked = [s for s, raw in enumerate(run.raw) if raw.mask is not None and raw.mask.any()]
    if mode == "off" or (mode is None and not masked):
        return
    if not masked:
        raise InputError(
            f"{', '.join(str(sc.path) for sc in config.stacks)}: `study_registration` {mode} needs a myocardium mask "
            "(`mask` or `myocardium_labels`) of at least one stack"
        )
    try:
        inside = run.inside(True, why="`study_registration`", instead="set `study_registration` off")
    except InputError:
        if mode is not None:
            raise
        logger.info("study registration skipped: the mesh has no volume cells")
        return
    found = estimate_study_transform(
        inside,
        bounding_box(run.points),
        [run.geometries[s] for s in masked],
        [run.raw[s].mask for s in masked],  # type: ignore[misc]
        [run.raw[s].name for s in masked],
    )
    centres = np.concatenate([mask_centres(run.geometries[s], run.raw[s].mask) for s in masked])  # type: ignore[arg-type]
    moved = found.moved_mm(centres)
    # applied only when asked: applied by default above a threshold, it cost up to 0.045 Dice on
    # registered synthetic cases with breath-hold shifts (docs/decisions.md)
    applied = mode == "rigid"
    warned = not applied and moved > config.register_min_mm
    run.registration = found.record(mode or "default", applied, warned, moved)
    if applied:
        run.geometries = [moved_geometry(g, found.matrix) for g in run.geometries]
        if found.turn_weakly_fixed:
            logger.warning(
                "%s: the masks barely fix the study's turn about the slice normal (a %g deg turn changes their Dice "
                "with the mesh by %.4f): the registration's rotation about the long axis is a guess; check the "
                "registration picture beside the training data for a twist",
                ", ".join(str(sc.path) for sc in config.stacks),
                TURN_DEG,
                found.turn_dice_drop,
            )
    elif warned:
        logger.warning(
            "%s: the study sits %.1f mm (RMS) off the mesh, or the mesh's shape differs from the imaged heart's; "
            "`study_registration` rigid moves the study onto the mesh (check it first, on the registration picture "
            "beside the training data: on a mesh of another shape it can make the result worse)",
            ", ".join(str(sc.path) for sc in config.stacks),
            moved,
        )
    if not (config.align_slices or config.measure_offsets):  # else ``align`` measures them
        residuals = {}
        for s in masked:
            mask = run.raw[s].mask
            assert mask is not None
            geometry = moved_geometry(run.raw[s].geometry, found.matrix)
            # the search's field stands in for the inside test: the same offsets within 0.05 mm RMS, 7x faster
            found_offsets = estimate_offsets(found.field.fraction, geometry, mask, config.align_max_inplane_mm, 0.0).offsets
            residuals[run.raw[s].name] = found_offsets.round(3).tolist()
        run.registration["slice_residuals_mm"] = residuals


def align(run: PrepareRun) -> None:
    """Per-slice breath-hold offsets of each stack with a mask, measured against the mesh's
    myocardium (in the region); applied with ``align_slices``, kept in ``alignments`` either way."""
    config = run.config
    if not (config.align_slices or config.measure_offsets):
        return
    option = "`align_slices`" if config.align_slices else "`measure_offsets`"
    inside = run.inside(True, why=option, instead=f"leave out {option}")
    for s, raw in enumerate(run.raw):
        if raw.mask is None:
            logger.warning(
                "%s: no myocardium mask, so its slices' offsets are not estimated (%s needs `mask` or `myocardium_labels`)",
                raw.name,
                option,
            )
            continue
        geometry = run.geometries[s]
        require_overlap(run.mesh_obj, run.points, config.mesh, [geometry])
        result = estimate_offsets(inside, geometry, raw.mask, config.align_max_inplane_mm, config.align_max_normal_mm)
        run.alignments[raw.name] = result
        if run.registration is not None:
            run.registration.setdefault("slice_residuals_mm", {})[raw.name] = result.offsets.round(3).tolist()
        if not config.align_slices:
            continue
        if result.at_bound.any():
            logger.warning(
                "%s: slice(s) %s reached the edge of the alignment search; the true offset may be larger "
                "(raise `align_max_inplane_mm` / `align_max_normal_mm` and compare the alignment picture)",
                raw.name,
                ", ".join(str(int(k)) for k in np.flatnonzero(result.at_bound)),
            )
        run.geometries[s] = geometry.with_offsets(result.offsets)


def tissue_needed(stack: StackConfig) -> bool:
    """The stack's conversion (``mixture``) needs the tissue fractions of its prisms."""
    return stack.target.kind == "intensity" and stack.target.normalise == "mixture"


#: A stack whose slice normal is further than this (degrees) from the short axis's is a long-axis
#: view: its blood pool is found in the short-axis planes (``tissue.short_axis_cavity``).
LONG_AXIS_DEG = 45.0


def tissue(run: PrepareRun) -> None:
    """The (wall, blood) fractions of every ``mixture`` stack's prisms, from the whole mesh."""
    short_axis = main_slice_normal(run.geometries) if max(g.n_slices for g in run.geometries) > 1 else None
    box = bounding_box(run.points)
    cavity = None  # built once, for every long-axis view
    for s, sc in enumerate(run.config.stacks):
        if tissue_needed(sc):
            inside = run.inside(False)
            require_overlap(run.mesh_obj, run.points, run.config.mesh, [run.geometries[s]])
            view = short_axis is not None and abs(run.geometries[s].normal @ short_axis) < np.cos(np.radians(LONG_AXIS_DEG))
            if view and cavity is None and short_axis is not None:
                cavity = short_axis_cavity(inside, box, short_axis)
            run.tissue[s] = tissue_fractions(inside, run.geometries[s], box, cavity=cavity if view else None)


def targets(run: PrepareRun) -> None:
    """Each stack's values as scar targets on its final geometry (raw intensities with a caveat)."""
    run.stacks = [
        stack_targets(raw, sc.target, run.geometries[s], run.tissue.get(s))
        for s, (raw, sc) in enumerate(zip(run.raw, run.config.stacks))
    ]
    for sc in run.config.stacks:
        if sc.target.kind == "intensity":
            # in the format, not an argument: the CLI turns its `field` names into flags
            logger.warning("%s (`normalise` %s): " + INTENSITY_CAVEAT, sc.path, sc.target.normalise)


def memberships(run: PrepareRun) -> None:
    """The training data; the measured offsets beside it; refuse zero groups."""
    data = build_training_data(run.points, run.stacks, run.region)
    if run.alignments:
        measured = [
            st.geometry.with_offsets(run.alignments[st.name].offsets) if st.name in run.alignments else st.geometry
            for st in run.stacks
        ]
        data = replace(data, measured_offsets=stack_arrays(measured)["stack_slice_offsets"])
        rms = data.misregistration_mm()
        if rms is not None and rms > MISREGISTRATION_WARN_MM:
            logger.warning(
                "%s: the slices' masks sit %.1f mm (RMS) off the mesh's myocardium, a breath-hold misregistration "
                "left in the memberships; `align_slices` corrects it",
                ", ".join(str(sc.path) for sc in run.config.stacks),
                rms,
            )
    if run.registration is not None:
        run.registration.update(registration_shares(run))
        data = replace(data, registration=json.dumps(run.registration))
    if data.n_groups == 0:
        names = ", ".join(str(sc.path) for sc in run.config.stacks)
        raise InputError(
            f"{names}: no pixel prism holds a mesh node with a valid target; check `mask` and `slice_thickness`"
        )
    run.data = data


def registration_shares(run: PrepareRun) -> dict[str, float]:
    """The shares of labelled myocardium and scar pixels (targets >= 0.5 in the mask) whose centres
    lie in the mesh's myocardium (and in its region, when one is given), before and after the
    registration is applied (the same when it is not)."""
    tests = {"mesh": run.inside(False)}
    if run.region is not None:
        tests["region"] = run.inside(True)
    matrix = np.asarray(run.registration["study_to_mesh"]) if run.registration else np.eye(4)
    out: dict[str, float] = {}
    for kind in ("myocardium", "scar"):
        pixels = [
            (raw, st, raw.mask if kind == "myocardium" else raw.mask & (np.nan_to_num(st.values) >= 0.5))
            for raw, st in zip(run.raw, run.stacks)
            if raw.mask is not None
        ]
        for where, inside in tests.items():
            for when, m in (("before", None), ("after", matrix)):
                counts = [(inside_share(inside, raw.geometry, p, m), int(p.sum())) for raw, st, p in pixels]
                total = sum(n for _, n in counts)
                out[f"{kind}_in_{where}_{when}"] = (
                    float(sum(share * n for share, n in counts if n) / total) if total else float("nan")
                )
    return out


#: The stages of ``prepare``, in order.
STAGES: tuple[tuple[str, Callable[[PrepareRun], None]], ...] = (
    ("read", read),
    ("overlap", overlap),
    ("register", register),
    ("align", align),
    ("tissue", tissue),
    ("targets", targets),
    ("memberships", memberships),
)


def run_stages(
    config: PrepareConfig, until: str = "memberships", mesh_read: tuple[Any, np.ndarray] | None = None
) -> PrepareRun:
    """Run the stages of :data:`STAGES` in order up to and including ``until``; ``mesh_read``:
    ``read_mesh(config.mesh)`` when the caller has it already."""
    names = [name for name, _ in STAGES]
    if until not in names:
        raise ValueError(f"unknown stage {until!r}; one of {', '.join(names)}")
    run = PrepareRun(config) if mesh_read is None else PrepareRun(config, mesh_obj=mesh_read[0], points=mesh_read[1])
    ticker = Ticker()
    for name, stage in STAGES[: names.index(until) + 1]:
        start = time.perf_counter()
        stage(run)
        logger.info("prepare: %s in %.2f s", name, time.perf_counter() - start)
        ticker.tick("prepare: %s done at %.1f s", name, ticker.elapsed)
    return run


def registration_drawn(registration: dict[str, Any] | None) -> bool:
    """Whether ``prepare`` draws the registration picture: when the registration was applied, or
    measured and warned about (the warning asks the user to check it)."""
    return registration is not None and bool(registration.get("applied") or registration.get("warned"))


def registration_picture_path(output: Path) -> Path:
    """Where ``prepare`` puts the picture of an applied study registration: ``<stem>_registration.png``."""
    return Path(output).with_name(f"{stem(Path(output))}_registration.png")


def alignment_picture_path(output: Path) -> Path:
    """Where ``prepare`` puts the alignment picture beside its training data: ``<stem>_alignment.png``."""
    return Path(output).with_name(f"{stem(Path(output))}_alignment.png")


def prepare(
    config: PrepareConfig, output: Path | None = None, mesh_read: tuple[Any, np.ndarray] | None = None
) -> TrainingData:
    """Map the mesh nodes into the prisms of every stack's pixels and group them (:data:`STAGES`).

    Parameters
    ----------
    config : the mesh and stacks.
    mesh_read : ``read_mesh(config.mesh)`` when the caller has it already (``run`` reads the mesh once).
    output : where to write the training data (``.npz``); nothing is written when None. When
        offsets are measured (``align_slices``, ``measure_offsets``) the alignment picture goes
        beside it (:func:`alignment_picture_path`), and when the study registration is applied or
        warned about, the registration picture (:func:`registration_picture_path`).

    Raises
    ------
    InputError
        On unreadable inputs, no overlap between mesh and stacks (with the fix), or zero groups.
    """
    if output is not None:
        pictures = [("alignment picture", alignment_picture_path(Path(output)))]
        pictures.append(("registration picture", registration_picture_path(Path(output))))
        refuse_overwrite([("training data", Path(output)), *pictures], prepare_inputs(config))
        check_data_output(Path(output))
        if config.align_slices or config.measure_offsets:
            check_output(alignment_picture_path(Path(output)), "alignment picture")
        if config.study_registration != "off":  # drawn when applied or warned about
            check_output(registration_picture_path(Path(output)), "registration picture")
    run = run_stages(config, mesh_read=mesh_read)
    assert run.data is not None
    if output is not None:
        save_training_data(run.data, Path(output))
        if run.alignments:
            from ..figures import plot_alignment

            stacks_by_name = {st.name: st for st in run.stacks}
            found = {n: (stacks_by_name[n], a) for n, a in run.alignments.items()}
            plot_alignment(found, alignment_picture_path(Path(output)))
        if run.registration is not None and registration_drawn(run.registration):
            from ..figures import plot_registration
            from ..metrics import registration_line

            matrix = np.asarray(run.registration["study_to_mesh"])
            inside = run.inside(True)
            rows = [
                (raw.name, *walls)
                for raw in run.raw
                if raw.mask is not None and raw.mask.any()
                for walls in slice_walls(inside, raw.geometry, raw.mask, matrix)
            ]
            plot_registration(rows, registration_line(run.registration), registration_picture_path(Path(output)))
    return run.data
