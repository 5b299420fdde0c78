"""Parsed options -> config models (one place, used by the commands and by cohort manifests)."""

from __future__ import annotations

import argparse

from ..config import (
    CrossvalConfig,
    MeshConfig,
    ModelConfig,
    PredictConfig,
    PrepareConfig,
    RuntimeConfig,
    StackConfig,
    TargetConfig,
    TrainConfig,
)
from .options import per_stack, values
from .parser import D_CROSSVAL, D_MESH, D_MODEL, D_PREDICT, D_PREPARE, D_RUNTIME, D_STACK, D_TARGET, D_TRAIN


def mesh_config(args: argparse.Namespace) -> MeshConfig | None:
    if args.mesh is None:
        return None
    return MeshConfig(path=args.mesh, **values(args, MeshConfig, D_MESH))


def prepare_config(args: argparse.Namespace) -> PrepareConfig:
    n = len(args.image)
    stacks = per_stack(args, StackConfig, D_STACK, n)
    targets = per_stack(args, TargetConfig, D_TARGET, n)
    return PrepareConfig(
        **values(args, PrepareConfig, D_PREPARE),
        mesh=mesh_config(args),
        stacks=[StackConfig(path=path, target=TargetConfig(**targets[i]), **stacks[i]) for i, path in enumerate(args.image)],
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.from_preset(
        args.preset, **values(args, TrainConfig, D_TRAIN), model=values(args, ModelConfig, D_MODEL)
    )


def runtime_config(args: argparse.Namespace) -> RuntimeConfig:
    given = values(args, RuntimeConfig, D_RUNTIME)
    if getattr(args, "silent", False):  # -q: no progress bar either
        given["quiet"] = True
    return RuntimeConfig(**given)


def predict_config(args: argparse.Namespace) -> PredictConfig:
    return PredictConfig(**values(args, PredictConfig, D_PREDICT))


def crossval_config(args: argparse.Namespace) -> CrossvalConfig:
    return CrossvalConfig(**values(args, CrossvalConfig, D_CROSSVAL))
