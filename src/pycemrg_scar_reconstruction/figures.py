"""Pictures a person looks at: input vs reconstruction per slice, the mesh, the loss curve, the
calibration of the uncertainty.

(The module is not called ``report``: that is the API function that writes these pictures.)

All rendering is off-screen (matplotlib Agg, pyvista off-screen), so it works with no display.
Each function writes one PNG atomically.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .data import TrainingData
from .io.paths import atomic_output

logger = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_slices(data: TrainingData, node_values: np.ndarray, path: Path, max_slices: int = 16) -> None:
    """Per slice: input pixels (group targets), the reconstruction's group means, and their difference.

    Parameters
    ----------
    data : training data (groups carry their voxel, stack and slice).
    node_values : (N,) reconstruction at the nodes (e.g. ``scar_probability``).
    path : PNG to write.
    max_slices : at most this many slices (evenly chosen) are drawn.
    """
    plt = _pyplot()
    means = data.group_mean(np.asarray(node_values, np.float64))
    slices = np.unique(np.column_stack([data.group_stack, data.group_slice]), axis=0)
    if len(slices) > max_slices:
        slices = slices[np.linspace(0, len(slices) - 1, max_slices).astype(int)]
    height = 2.6 * len(slices) + 0.8
    fig, axes = plt.subplots(len(slices), 3, figsize=(9, height), squeeze=False)
    # fixed margins and one colour bar per column: tight_layout and a bar per panel were half the
    # report's time on a 75,000-node run
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.3 / height, bottom=0.45 / height, wspace=0.08, hspace=0.25)
    shown = []
    for row, (s, k) in zip(axes, slices):  # one row per slice drawn
        sel = (data.group_stack == s) & (data.group_slice == k)
        a, b = data.stacks[s].inplane
        va, vb = data.group_voxel[sel, a], data.group_voxel[sel, b]
        lo_a, lo_b = va.min(), vb.min()
        shape = (va.max() - lo_a + 1, vb.max() - lo_b + 1)
        images = []
        for vals in (data.group_target[sel], means[sel], means[sel] - data.group_target[sel]):
            img = np.full(shape, np.nan)
            img[va - lo_a, vb - lo_b] = vals
            images.append(img.T)
        for ax, img, title, cmap, lim in zip(
            row,
            images,
            ("input pixels", "reconstruction (group mean)", "error"),
            ("magma", "magma", "coolwarm"),
            ((0, 1), (0, 1), (-0.3, 0.3)),
        ):
            shown.append(ax.imshow(img, cmap=cmap, vmin=lim[0], vmax=lim[1], origin="lower", interpolation="nearest"))
            ax.set_title(f"stack {s} slice {k}: {title}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    for column, ticks in enumerate(((0, 0.5, 1), (0, 0.5, 1), (-0.3, 0, 0.3))):
        fig.colorbar(
            shown[column],
            ax=axes[:, column],
            orientation="horizontal",
            fraction=0.4 / height,
            pad=0.01,
            shrink=0.8,
            aspect=25,
            ticks=ticks,
        )
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def plot_training(history: Sequence[dict[str, float]], path: Path, best_epoch: int | None = None) -> None:
    """The epoch loss (log scale) and learning rate against the epoch."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(epochs, [h["loss"] for h in history], color="C0", label="epoch loss (mean squared group error)")
    if best_epoch:
        ax.axvline(best_epoch, color="C2", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["lr"] for h in history], color="C1", lw=0.8, alpha=0.7)
    ax2.set_ylabel("learning rate", color="C1")
    ax.legend(loc="upper right", fontsize=8)
    fig.subplots_adjust(left=0.17, right=0.84, bottom=0.15, top=0.95)  # fixed: tight_layout costs a draw
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def plot_calibration(cal: dict[str, Any], path: Path) -> None:
    """Reliability diagram of a :func:`.calibration.calibration` result: the share of held-out errors
    inside each central interval against its level, for the MC spread as a Gaussian sd and for
    the recalibrated uncertainty (checked on the other half of the slices), overall and per band
    of probability (curves: the two directions' mean coverage; ECEs: per direction, averaged)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.6))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    ax.plot(cal["levels"], cal["coverage_before"], "o-", color="C3", label=f"MC spread (ECE {cal['ece_before']:.3f})")
    ax.plot(
        cal["levels"],
        cal["coverage_after"],
        "s-",
        color="C0",
        label=f"recalibrated, on the other half (ECE {cal['ece_after']:.3f})",
    )
    ax.set_xlabel("interval level")
    ax.set_ylabel("share of held-out errors inside")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for (name, coverage), color in zip(cal.get("coverage_by_band", {}).items(), ("C2", "C1", "C4")):
        if np.all(np.isfinite(coverage)):  # a band with too few pixels is not drawn
            ece = cal["ece_by_band"][name]
            ax.plot(cal["levels"], coverage, ":", color=color, lw=1.2, label=f"  {name} pixels (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def _principal_views(points: np.ndarray, axis: np.ndarray | None = None) -> list[tuple]:
    """Two camera positions looking along the ventricle's long axis, from either end.

    ``axis``: the long axis's world direction (e.g. a short-axis stack's slice normal); without
    it, the points' longest principal axis, which is the long axis of a lone LV but not of every
    biventricular mesh. The first view looks into the cavity from the base (the wider end: the
    endocardium, where subendocardial scar is), the second at the apex. The picture's up is the
    longest principal direction across the axis.
    """
    center = points.mean(axis=0)
    spread = np.cov(points - center, rowvar=False)  # (3, 3)
    if axis is None:
        axis = np.linalg.eigh(spread)[1][:, -1]
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    across = np.eye(3) - np.outer(axis, axis)
    # the base is the wide end, the apex the narrow one: the first view is from the base
    along = (points - center) @ axis
    width = np.linalg.norm((points - center) @ across, axis=1)
    low, high = np.quantile(along, [0.2, 0.8])
    if width[along <= low].mean() > width[along >= high].mean():
        axis = -axis
    up = np.linalg.eigh(across @ spread @ across)[1][:, -1]  # the longest direction across the axis
    # far enough for the whole mesh in VTK's 30 degree view, a biventricular mesh wider than long too
    radius = float(np.sqrt(np.max(np.sum(((points - center) @ across) ** 2, axis=1))))
    length = float(np.ptp(points @ axis))
    distance = max(3.0 * length, 4.2 * radius + 0.5 * length)  # the near end is half a length closer
    return [(tuple(center + sign * distance * axis), tuple(center), tuple(up)) for sign in (1.0, -1.0)]


def boundary_surface(mesh: Any) -> Any:
    """The boundary faces of an unstructured mesh (a pyvista PolyData with the point arrays and
    ``vtkOriginalCellIds``, the cell each face bounds); a surface mesh as it is; of a structured
    one, pyvista's surface."""
    import pyvista as pv
    from vtkmodules.vtkFiltersGeometry import vtkGeometryFilter

    if isinstance(mesh, pv.PolyData):
        return mesh
    if not hasattr(mesh, "celltypes"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pyvista warns of a default that will change
            return mesh.extract_surface()
    # VTK's geometry filter, not pyvista's default (vtkDataSetSurfaceFilter): the same faces and
    # values in 0.26 s instead of 0.41 s at 1.4 million nodes, on every pyvista version
    geometry = vtkGeometryFilter()
    geometry.SetInputData(mesh)
    geometry.PassThroughCellIdsOn()
    geometry.PassThroughPointIdsOff()
    geometry.Update()
    return pv.wrap(geometry.GetOutput())


def faces_outward(mesh: Any, surface: Any) -> bool:
    """Whether every face of ``surface`` (``mesh``'s boundary, with the ``vtkOriginalCellIds`` of the
    cells it bounds) faces away from its cell's centre.

    Then a camera outside the mesh sees front faces only, and culling the back faces changes no
    pixel. A mesh with other cells than :data:`.io.meshes.SOLID_CELLS` (2D, voxels, quadratic: their
    faces are subdivided and lose the ids), with an inverted cell, or without cells gives False.
    """
    from .io.meshes import SOLID_CELLS

    if (
        not hasattr(mesh, "celltypes")
        or "vtkOriginalCellIds" not in surface.cell_data
        or surface.n_cells == 0
        or not np.isin(np.asarray(mesh.celltypes), SOLID_CELLS).all()
    ):
        return False
    cells = np.asarray(surface.cell_data["vtkOriginalCellIds"])
    centres = np.asarray(mesh.cell_centers().points, dtype=np.float64)[cells]
    # each face's own normal: pyvista's ``cell_normals`` makes neighbours consistent first, which
    # turned 23,251 of the real human mesh's 57,148 boundary faces inward
    normals = surface.compute_normals(
        cell_normals=True, point_normals=False, split_vertices=False, consistent_normals=False, auto_orient_normals=False
    ).cell_data["Normals"]
    outward = np.einsum(
        "ij,ij->i",
        np.asarray(normals, dtype=np.float64),
        np.asarray(surface.cell_centers().points, dtype=np.float64) - centres,
    )
    return bool((outward > 0).all())


def plot_mesh(
    mesh: Any,
    path: Path,
    fields: Sequence[str] = ("scar_probability", "scar_uncertainty", "scar_truth"),
    axis: np.ndarray | None = None,
    threshold: float = 0.5,
) -> None:
    """The mesh surface coloured by each present field (columns), seen from both ends of its long
    axis (rows); with ``scar_probability``, a last column with the nodes at or above ``threshold``
    inside a see-through surface, so that scar within the wall shows too.

    ``axis``: the long axis's world direction (see :func:`_principal_views`).
    """
    import pyvista as pv

    present = [f for f in fields if f in mesh.point_data]
    if not present:
        raise ValueError("the mesh has none of the fields " + ", ".join(fields))
    surface = boundary_surface(mesh)
    # software rendering's time goes into rasterising faces; the back ones are hidden behind the
    # front ones when every face faces out (1.9 -> 1.1 s at 1.4 million nodes, the same pixels)
    culling: Literal["back"] | None = "back" if faces_outward(mesh, surface) else None
    views = _principal_views(np.asarray(surface.points, dtype=np.float64), axis)
    called = None
    if "scar_probability" in present:
        probability = np.asarray(mesh.point_data["scar_probability"], dtype=np.float64)
        keep = probability >= threshold
        called = pv.PolyData(np.asarray(mesh.points, dtype=np.float64)[keep])
        called.point_data["scar_probability"] = probability[keep]
    columns = len(present) + (called is not None)
    with pv.vtk_verbosity("off"):
        plotter = pv.Plotter(off_screen=True, shape=(len(views), columns), window_size=[360 * columns, 340 * len(views)])
        for row, camera in enumerate(views):
            for col, field in enumerate(present):
                plotter.subplot(row, col)
                values = np.asarray(surface.point_data[field], dtype=np.float64)
                unc = field == "scar_uncertainty"
                clim = (0.0, max(float(values.max()), 1e-6)) if unc else (0.0, 1.0)
                plotter.add_mesh(
                    surface.copy(deep=False),  # its own active scalars, the arrays shared
                    scalars=field,
                    cmap="viridis" if unc else "magma",
                    clim=clim,
                    show_scalar_bar=row == len(views) - 1,
                    scalar_bar_args={"title": field, "n_labels": 3},
                    culling=culling,
                )
                plotter.camera_position = camera
            if called is not None:
                plotter.subplot(row, columns - 1)
                # every face drawn faintly (none culled: the far wall shows through the near one)
                plotter.add_mesh(surface.copy(deep=False), color="lightgrey", opacity=0.15, show_scalar_bar=False)
                if called.n_points:
                    plotter.add_mesh(
                        called,
                        scalars="scar_probability",
                        cmap="magma",
                        clim=(0.0, 1.0),
                        point_size=3,
                        show_scalar_bar=False,
                    )
                if row == 0:
                    plotter.add_text(f"nodes >= {threshold:g}: {called.n_points}, through the wall", font_size=8)
                plotter.camera_position = camera
        with atomic_output(Path(path)) as tmp:
            plotter.screenshot(str(tmp))
        plotter.close()


def plot_alignment(found: dict[str, tuple[Any, Any]], path: Path) -> None:
    """Per stack and slice, the mask's contour over the mesh's cross-section before and after alignment.

    ``found`` maps a stack name to (its :class:`~.stack.SliceStack`, its :class:`~.alignment.Alignment`).
    """
    plt = _pyplot()
    rows = [
        (name, stack, al, k)
        for name, (stack, al) in found.items()
        for k in range(len(al.offsets))
        if np.isfinite(al.dice_before[k])
    ]
    if not rows:
        return
    fig, axes = plt.subplots(len(rows), 2, figsize=(6.4, 3.0 * len(rows)), squeeze=False)
    for row, (name, stack, al, k) in zip(axes, rows):
        g = stack.geometry
        sl: list[slice | int] = [slice(None)] * 3
        sl[g.axis] = k
        mask = np.asarray(stack.mask)[tuple(sl)].astype(float)
        for ax, wall, title in ((row[0], al.wall_before[k], "before"), (row[1], al.wall_after[k], "after")):
            ax.imshow(wall.T, cmap="gray", vmin=0, vmax=1, origin="lower", interpolation="nearest")
            ax.contour(mask.T, levels=[0.5], colors="tab:orange", linewidths=1.0, origin="lower")
            dice = al.dice_before[k] if title == "before" else al.dice_after[k]
            extra = "" if title == "before" else " offset [{:+.1f}, {:+.1f}, {:+.1f}] mm".format(*al.offsets[k])
            ax.set_title(f"{Path(name).name} slice {k} {title}: Dice {dice:.2f}{extra}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("mask (orange) over the mesh's myocardium (grey)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.25 / len(rows)))
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def plot_registration(rows: Sequence[tuple[str, int, np.ndarray, np.ndarray, np.ndarray]], note: str, path: Path) -> None:
    """Per masked slice, the mask's contour over the mesh's wall before and after the study
    registration; ``rows`` are (stack name, slice, mask, wall before, wall after), 2D crops."""
    plt = _pyplot()
    if not rows:
        return
    fig, axes = plt.subplots(len(rows), 2, figsize=(5.2, 2.5 * len(rows)), squeeze=False)
    for row, (name, k, mask, before, after) in zip(axes, rows):
        for ax, wall, title in ((row[0], before, "before"), (row[1], after, "after")):
            ax.imshow(wall.T, cmap="gray", vmin=0, vmax=1, origin="lower", interpolation="nearest")
            ax.contour(mask.T.astype(float), levels=[0.5], colors="tab:orange", linewidths=1.0, origin="lower")
            ax.set_title(f"{Path(name).name} slice {k}, {title} registration", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    import textwrap

    fig.suptitle("mask (orange) over the mesh's myocardium (grey)\n" + textwrap.fill(note, 100), fontsize=6)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.8 / (2.5 * len(rows))))  # room for the two-line title
    with atomic_output(Path(path)) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def plot_cohort(rows: Sequence[dict[str, Any]], target: Any) -> None:
    """A cohort at a glance: Dice (or group RMSE without truths) and seconds per patient, and
    the distribution of scar burden. ``target``: a PNG path (written atomically) or a binary file."""
    plt = _pyplot()
    ok = [r for r in rows if r["status"] in ("done", "skipped")]
    ids = [str(r["id"]) for r in ok]
    with_dice = [r for r in ok if r.get("dice") not in ("", None)]
    score = "dice" if with_dice else "group_rmse"
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = np.arange(len(ok))
    axes[0].bar(x, [float(r[score]) if r.get(score) not in ("", None) else np.nan for r in ok], color="tab:blue")
    axes[0].set_title("Dice against the truth" if score == "dice" else "group RMSE (fit to the pixels)")
    axes[1].bar(
        x,
        [float(r["seconds"] or 0) for r in ok],
        color=["tab:gray" if r["status"] == "skipped" else "tab:green" for r in ok],
    )
    axes[1].set_title("seconds per patient\n(grey: skipped, time of the earlier run)")
    # by element volume when every patient has it (volume meshes), else the share of nodes >= 0.5;
    # a bar per patient as beside it (a histogram of one patient, or of equal burdens, reads wrong)
    by_volume = bool(ok) and all(r.get("core_share") not in ("", None) for r in ok)
    share = "core_share" if by_volume else "scar_share"
    axes[2].bar(x, [100 * float(r[share]) if r.get(share) not in ("", None) else np.nan for r in ok], color="tab:red")
    axes[2].set_title(
        "scar burden: core scar\n(% of the myocardium's volume)" if by_volume else "scar burden\n(% of nodes >= 0.5)"
    )
    for ax in axes:
        ax.set_xticks(x, ids, rotation=90, fontsize=7)
    failed = len(rows) - len(ok)
    fig.suptitle(f"{len(ok)} patients reconstructed" + (f", {failed} not" if failed else ""))
    fig.tight_layout()
    if isinstance(target, (str, Path)):
        with atomic_output(Path(target)) as tmp:
            fig.savefig(tmp, dpi=110)
    else:
        fig.savefig(target, format="png", dpi=110)
    plt.close(fig)
