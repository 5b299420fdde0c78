"""The synthetic case of a benchmark, prepared as a user would: shared by the benchmarks."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvista as pv

from pycemrg_scar_reconstruction import MeshConfig, PrepareConfig, StackConfig, SynthConfig, prepare, synth
from pycemrg_scar_reconstruction.data import TrainingData


def add_case_options(parser: argparse.ArgumentParser, seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> None:
    """The options every synthetic-case benchmark shares: ``--seeds``, ``--nodes`` (20,000) and
    ``--lv-irregularity`` (``synth --lv-irregularity``, 0: the smooth shell)."""
    parser.add_argument("--seeds", type=int, nargs="*", default=list(seeds))
    parser.add_argument("--nodes", type=int, default=20000)
    parser.add_argument(
        "--lv-irregularity",
        type=float,
        default=0.0,
        help="synth --lv-irregularity: an LV whose wall and outline vary about the long axis (1: as the real case's)",
    )


def case_config(
    config: SynthConfig,
    case: dict[str, Path],
    measure_offsets: bool = False,
    study_registration: str | None = None,
    long_axis: bool = True,
    align_slices: bool = False,
) -> PrepareConfig:
    """How a user prepares a written case: its short-axis stack with its mask (and, with
    ``long_axis``, each long-axis view the case has, with its mask). The target kind follows
    ``config.intensity`` and the region (``is_LV``) ``config.biventricular``; the slice thickness is
    the case's; ``measure_offsets``, ``study_registration`` and ``align_slices`` as in ``PrepareConfig``."""
    target = "intensity" if config.intensity else "probability"
    keys = [""] + ([f"_la{v + 1}" for v in range(config.long_axis_views)] if long_axis else [])
    stacks = [
        StackConfig(path=case[f"image{k}"], mask=case[f"mask{k}"], slice_thickness=config.slice_thickness, target=target)
        for k in keys
    ]
    region = {"region_array": "is_LV"} if config.biventricular else {}
    mesh = MeshConfig(path=case["mesh"], **region)
    return PrepareConfig(
        mesh=mesh,
        stacks=stacks,
        measure_offsets=measure_offsets,
        study_registration=study_registration,
        align_slices=align_slices,
    )


@dataclass(frozen=True)
class WrittenCase:
    """One synthetic case written to a temporary folder: its seed and kind, how it was made, its
    files (``synth``'s), the folder (removed when the loop moves on) and how a user prepares it."""

    seed: int
    kind: str
    config: SynthConfig
    files: dict[str, Path]
    folder: Path
    prepare: PrepareConfig

    def truth(self) -> tuple[pv.UnstructuredGrid, np.ndarray, np.ndarray]:
        """The mesh, its (N,) 3D truth and its (N,) bool nodes to score (the ``is_LV`` region, or all)."""
        mesh = pv.read(str(self.files["mesh"]))
        truth = np.asarray(mesh.point_data["scar_truth"], np.float64)
        region = mesh.point_data["is_LV"] if "is_LV" in mesh.point_data else np.ones(len(truth))
        return mesh, truth, np.asarray(region, bool)


def written_cases(
    seeds: list[int], kinds: list[str], table: Mapping[str, dict[str, Any]], nodes: int
) -> Iterator[WrittenCase]:
    """Every seed, then every kind (``table[kind]``: ``SynthConfig`` fields), written and prepared
    as :func:`case_config` does, one at a time in a temporary folder."""
    for seed in seeds:
        for kind in kinds:
            with tempfile.TemporaryDirectory() as tmp:
                config = SynthConfig(seed=seed, n_nodes=nodes, **table[kind])
                files = synth(config, Path(tmp) / "case")
                yield WrittenCase(seed, kind, config, files, Path(tmp), case_config(config, files))


def synthetic_data(
    config: SynthConfig,
    folder: Path,
    measure_offsets: bool = False,
    study_registration: str | None = None,
    align_slices: bool = False,
) -> tuple[TrainingData, np.ndarray, float]:
    """Write the case to ``folder`` and prepare it (:func:`case_config`). Returns
    (training data, (N,) 3D truth, seconds of prepare).
    """
    case = synth(config, folder)
    start = time.perf_counter()
    config_ = case_config(config, case, measure_offsets, study_registration, align_slices=align_slices)
    data = prepare(config_)
    seconds = time.perf_counter() - start
    return data, np.asarray(pv.read(case["mesh"]).point_data["scar_truth"], np.float64), seconds


def varied_case(
    seed: int,
    spacing: float,
    noise: float,
    shift: float,
    intensity: bool,
    scale: float,
    nodes: int,
    biventricular: bool = False,
) -> SynthConfig:
    """One row of the estimator benchmarks' varied cases: spacing, noise sd, shift sd (mm), raw
    intensities, scar scale; slices 0.8 of the spacing thick."""
    return SynthConfig(
        seed=seed,
        n_nodes=nodes,
        slice_spacing=spacing,
        slice_thickness=0.8 * spacing,
        noise=noise,
        shift=shift,
        intensity=intensity,
        scar_scale=scale,
        biventricular=biventricular,
    )


def score_line(name: str, estimate: np.ndarray, truth: np.ndarray) -> str:
    """An estimator of the true Dice against it over the cases: rank correlation and mean |difference|,
    with issue 17's targets."""
    from scipy.stats import spearmanr

    rho = spearmanr(estimate, truth).statistic
    mad = float(np.mean(np.abs(np.asarray(estimate) - np.asarray(truth))))
    return f"{name}: Spearman with the true Dice {rho:.2f} (target >= 0.9); mean |difference| {mad:.3f} (target <= 0.1)"


def study_moves(seeds: list[int]) -> dict[int, tuple[float, float]]:
    """Each seed's study motion (offset mm in 2-6, rotation degrees in 2-8), drawn in the order of
    the seeds 0, 1, 2, ... so that a seed is moved alike whichever seeds a run is given."""
    rng = np.random.default_rng(2026)
    draws = [(float(rng.uniform(2, 6)), float(rng.uniform(2, 8))) for _ in range(max(seeds, default=-1) + 1)]
    return {seed: draws[seed] for seed in seeds}
