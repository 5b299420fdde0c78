"""Helpers shared by the API's steps: the overlap check, output size hints, a model loaded once,
and the per-element outputs of a reconstruction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import MeshConfig, PredictConfig, PrepareConfig
from ..errors import InputError
from ..forward import frame_search, overlap_share
from ..geometry import UNIT_TO_MM, bounding_box
from ..io.artifacts import load_model
from ..io.meshes import cell_volumes, mesh_cells
from ..regions import cell_mean, classify, element_tags, scar_burden
from ..stack import StackGeometry

if TYPE_CHECKING:  # torch-backed: imported when a model is used, not with the API
    from ..fitted import FittedModel

#: Below this share of mesh nodes inside the stacks' volume, prepare warns of partial overlap.
MIN_OVERLAP_SHARE = 0.5


def no_overlap_message(
    mesh_cfg: MeshConfig, raw_points: np.ndarray, points: np.ndarray, geometries: list[StackGeometry]
) -> str:
    """Explain a mesh/stack mismatch: both bounding boxes, and the frame/units that would fit."""
    lo, hi = bounding_box(points)
    slo, shi = bounding_box(np.concatenate([g.corners() for g in geometries]))
    fmt = lambda v: "[" + ", ".join(f"{x:.1f}" for x in v) + "]"  # noqa: E731
    msg = (
        f"{mesh_cfg.path}: the mesh does not overlap the image stack(s): mesh box {fmt(lo)}..{fmt(hi)} mm, "
        f"stack box {fmt(slo)}..{fmt(shi)} mm"
    )
    best = frame_search(raw_points, geometries, (mesh_cfg.frame, mesh_cfg.resolved_units))
    if best:
        msg += f"; with `mesh_frame` {best[1]} `mesh_units` {best[2]} {100 * best[0]:.0f}% of the mesh overlaps: use those"
    else:
        msg += "; check that mesh and image belong to the same patient and scan session"
    return msg


def require_overlap(mesh_obj: Any, points: np.ndarray, mesh: MeshConfig, geometries: list[StackGeometry]) -> float:
    """The share of mesh nodes inside the stacks' volume; refuse none with the explanation
    (before any work that needs both)."""
    share = overlap_share(points, geometries)
    if share == 0.0:
        raw = np.asarray(mesh_obj.points, dtype=np.float64)  # the mesh's own frame and units
        raise InputError(no_overlap_message(mesh, raw, points, geometries))
    return share


def prepare_inputs(config: PrepareConfig) -> list[tuple[str, Path]]:
    """The files a prepare config reads, as (what, path) pairs for :func:`..io.paths.refuse_overwrite`."""
    out = [("mesh", Path(config.mesh.path))]
    for sc in config.stacks:
        out.append(("image", Path(sc.path)))
        for what in ("mask", "remote_mask", "blood_pool_mask", "labels"):
            if getattr(sc, what) is not None:
                out.append((what.replace("_", " "), Path(getattr(sc, what))))
    return out


def mesh_size_hint(mesh: MeshConfig) -> int:
    """Rough bytes of an output mesh: twice the input mesh file (the copy plus the new arrays)."""
    path = Path(mesh.path)
    return 2 * path.stat().st_size if path.is_file() else 0


def load_fitted(model: FittedModel | Path) -> FittedModel:
    """A fitted model as given, or read from its checkpoint."""
    from ..fitted import FittedModel

    return model if isinstance(model, FittedModel) else load_model(Path(model))


@dataclass(frozen=True)
class Elements:
    """A mesh's cells and a node field's mean over each: VTK ``offsets`` (C + 1,), ``connectivity``,
    ``types`` (C,) and ``mean`` (C,); C = 0 for a mesh without cells."""

    offsets: np.ndarray
    connectivity: np.ndarray
    types: np.ndarray
    mean: np.ndarray


def elements(mesh_obj: Any, node_values: np.ndarray) -> Elements:
    """The mesh's cells with ``node_values`` ((N,)) averaged over each: read once for every per-element output."""
    offsets, conn, types = mesh_cells(mesh_obj)
    return Elements(offsets, conn, types, cell_mean(offsets, conn, node_values))


def element_outputs(mesh_obj: Any, cells: Elements, config: PredictConfig, mesh: MeshConfig) -> dict[str, Any]:
    """Per element, when the mesh has cells: ``cell_arrays`` {``scar_region``: the healthy / border
    zone / core scar tags, by ``cells.mean``, the nodes' mean probability} and the openCARP
    ``element_tags`` (``tag_mode`` applied to the input tags: ``tag_array``, an openCARP mesh's own
    tags, or 0)."""
    if len(cells.types) == 0:
        return {"cell_arrays": {}, "element_tags": None}
    element_class = classify(cells.mean, config.border_threshold, config.core_threshold)
    if mesh.tag_array is not None:
        if mesh.tag_array not in mesh_obj.cell_data:
            names = ", ".join(mesh_obj.cell_data.keys()) or "none"
            raise InputError(
                f"{mesh.path}: no cell array '{mesh.tag_array}' (it has: {names}); name an existing `tag_array`"
            )
        input_tags = np.asarray(mesh_obj.cell_data[mesh.tag_array])
    else:
        input_tags = np.asarray(mesh_obj.cell_data.get("elem_tag", np.zeros(len(cells.types))))
    return {
        "cell_arrays": {"scar_region": np.asarray(config.tags, np.int32)[element_class]},
        "element_tags": element_tags(
            input_tags, element_class, config.tag_mode, (config.tag_offset_border, config.tag_offset_core), config.tags
        ),
    }


def burden(
    mesh_obj: Any, cells: Elements, config: PredictConfig, mesh: MeshConfig, region: np.ndarray | None
) -> dict[str, float] | None:
    """The scar burden (:func:`~..regions.scar_burden`) of the elements whose nodes are all in
    ``region`` ((N,) bool; None: the whole mesh), with ``scar_region``'s classes of ``cells.mean``;
    None when the mesh has no volume cells."""
    if len(cells.types) == 0:
        return None
    in_region = None if region is None else np.logical_and.reduceat(region[cells.connectivity], cells.offsets[:-1])
    mm = UNIT_TO_MM[mesh.resolved_units]
    return scar_burden(
        cell_volumes(mesh_obj) * mm**3 / 1000.0, cells.mean, config.border_threshold, config.core_threshold, in_region
    )
