"""Per-patient training: complete-group batches, scatter-mean group loss, MC dropout, AMP, early stopping.

Early-stopping criterion: the epoch loss, i.e. the mean over *all* groups of the squared group
error as seen during the epoch (each group is in exactly one batch per epoch). An epoch improves
when this falls below ``best * (1 - min_delta)``; after ``patience`` epochs without improvement,
training stops and the best epoch's weights are restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import __version__
from .batching import plan_epoch, shuffle_within_groups
from .config import TrainConfig
from .data import TrainingData
from .geometry import main_slice_normal, normalise
from .loss import group_loss
from .model import FourierFeatures, ScarMLP, n_parameters

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "pycemrg_scar_reconstruction.model"
CHECKPOINT_VERSION = 1
#: Largest pre-encoded training set kept on the device (bytes); above it the encoding runs per step.
PRE_ENCODE_BYTES = 1 << 30


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from .errors import InputError

        raise InputError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on a device (None: full float32)."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def data_fingerprint(data: TrainingData) -> str:
    """A short hash of the training data's memberships, targets and points."""
    h = hashlib.sha256()
    for arr in (data.points, data.member_node, data.member_group, data.group_target):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


@dataclass
class FittedModel:
    """A trained network with everything needed to predict, validate and reproduce it."""

    net: ScarMLP
    config: TrainConfig
    norm_center: np.ndarray
    norm_scale: float
    stacks: dict[str, np.ndarray]  # affines (S,4,4), shapes (S,3), thickness (S,), axis (S,)
    group_keys: np.ndarray  # (G, 4) int: stack, i, j, k of every group
    data_hash: str
    data_summary: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    stop_reason: str = ""
    seconds: float = 0.0

    def normalised(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) normalised coordinates of world-mm points."""
        return normalise(points, self.norm_center, self.norm_scale)

    def to_checkpoint(self) -> dict[str, Any]:
        """A dict of tensors and plain values (readable with ``torch.load(weights_only=True)``)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "config": self.config.model_dump_json(),
            "norm_center": [float(x) for x in self.norm_center],
            "norm_scale": float(self.norm_scale),
            "stacks": {k: torch.as_tensor(np.asarray(v)) for k, v in self.stacks.items()},
            "group_keys": torch.as_tensor(self.group_keys.astype(np.int32)),
            "data_hash": self.data_hash,
            "data_summary": self.data_summary,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "seconds": self.seconds,
            "package_version": __version__,
            "torch_version": str(torch.__version__),
        }

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "FittedModel":
        """Rebuild from :meth:`to_checkpoint` output (raises KeyError/ValueError when malformed)."""
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a pycemrg_scar_reconstruction model")
        if ckpt.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"model format version {ckpt.get('version')}, this version reads {CHECKPOINT_VERSION}")
        config = TrainConfig.model_validate_json(ckpt["config"])
        net = ScarMLP(config.model, seed=config.seed)  # B is a buffer: the state dict restores its stretch
        net.load_state_dict(ckpt["state_dict"])
        return cls(
            net=net, config=config, norm_center=np.asarray(ckpt["norm_center"], dtype=np.float64),
            norm_scale=float(ckpt["norm_scale"]), stacks={k: v.numpy() for k, v in ckpt["stacks"].items()},
            group_keys=ckpt["group_keys"].numpy().astype(np.int64), data_hash=ckpt["data_hash"],
            data_summary=dict(ckpt["data_summary"]), history=list(ckpt["history"]),
            best_epoch=int(ckpt["best_epoch"]), stop_reason=str(ckpt["stop_reason"]), seconds=float(ckpt["seconds"]),
        )


def _schedulers(opt: torch.optim.Optimizer, config: TrainConfig):
    """(per-step scheduler or None, per-epoch plateau scheduler or None)."""
    if config.schedule == "cyclic":
        step = torch.optim.lr_scheduler.CyclicLR(
            opt, base_lr=config.lr, max_lr=config.lr_max, step_size_up=config.step_size,
            mode="triangular", cycle_momentum=False,
        )
        return step, None
    if config.schedule == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=max(config.patience // 3, 1), threshold=config.min_delta
        )
        return None, plateau
    return None, None


def cpu_cores() -> int:
    """Cores this process may run on (affinity), for the CPU thread count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fit(data: TrainingData, config: TrainConfig, progress: bool | None = None,
        callback: Callable[[int, ScarMLP], bool | None] | None = None) -> FittedModel:
    """Train the network so each group's mean prediction matches its target.

    Parameters
    ----------
    data : grouped training data.
    config : training configuration (see :class:`~.config.TrainConfig`).
    progress : show a progress bar (default: not ``config.quiet``).
    callback : called after every epoch with (epoch, network); returning True stops training
        (benchmarks use it to track quality over time).

    Returns
    -------
    FittedModel with the best epoch's weights and the loss history.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    device = resolve_device(config.device)
    if device.type == "cpu" and config.deterministic:
        torch.set_num_threads(1)  # threaded float reductions can differ between processes
    elif device.type == "cpu" and torch.get_num_threads() > cpu_cores():
        torch.set_num_threads(cpu_cores())  # more threads than cores only adds contention
    torch.manual_seed(config.seed)
    # In-plane detail (pixels) is finer than the slice spacing: with ModelConfig.fourier_anisotropy
    # above 1 the Fourier frequencies are stretched within the slices' plane and shrunk along their normal.
    normal = main_slice_normal(data.stack_affines, data.stack_shapes, data.stack_axis)
    net = ScarMLP(config.model, seed=config.seed, normal=normal).to(device)
    if config.init_output_bias:
        net.set_output_bias(float(np.mean(data.group_target)))
    forward = torch.compile(net) if config.compile else net
    logger.info("model: %d parameters on %s", n_parameters(net), device)

    # The whole training set lives on the device: no host-to-device copy per step.
    coords = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32, device=device)
    member_node = torch.as_tensor(data.member_node, device=device)
    gen = torch.Generator().manual_seed(config.seed)
    count = torch.as_tensor(data.group_count, device=device)
    # Subsample large groups only on fine meshes, where the typical group is larger than the sample:
    # there an epoch shrinks by about median/group_sample (measured: faster and no Dice loss); where
    # most groups are smaller, it would only thin the few largest (measured: no gain).
    median = int(count.median()) if count.numel() else 0
    sample = config.group_sample if 0 < config.group_sample < median else None
    if sample is not None:
        logger.info("groups hold %d nodes on median: each epoch uses %d random nodes of every larger group "
                    "(--group-sample)", median, sample)
        member_node = member_node[shuffle_within_groups(count, gen)]  # epochs take windows of this order
    member_x = coords[member_node]
    # The encoding is fixed (no trainable parameters): encode every membership once when it fits.
    n_in = net.encode.out_features if isinstance(net.encode, FourierFeatures) else 3
    pre_encoded = data.n_members * n_in * 4 <= PRE_ENCODE_BYTES
    if pre_encoded:
        with torch.no_grad():
            member_x = net.encode(member_x)
    target = torch.as_tensor(data.group_target, dtype=torch.float32, device=device)
    offset = torch.as_tensor(data.group_offset[:-1], device=device)

    # Fast start: the first epochs take twice the steps at twice the learning rate (the coarse shape
    # is learnt in fewer seconds); then the configured batch size and rate.
    opt = torch.optim.Adam(net.parameters(), lr=2 * config.lr if config.fast_start_epochs else config.lr)
    step_sched, plateau = _schedulers(opt, config)
    amp_dtype = autocast_dtype(config.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")
    n_groups = data.n_groups
    step_masks = config.dropout_masks == "step"
    mask_gen = torch.Generator(device=device).manual_seed(config.seed)

    best_loss, best_epoch, bad = float("inf"), 0, 0
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    history: list[dict[str, float]] = []
    stop_reason = "max_epochs"
    show = (not config.quiet) if progress is None else progress
    # disable=None: no bar when stderr is not a terminal (logs, CI)
    bar = tqdm(total=config.max_epochs, unit="epoch", disable=True if not show else None, leave=False,
               dynamic_ncols=True, mininterval=0.5)
    for epoch in range(1, config.max_epochs + 1):
        fast = epoch <= config.fast_start_epochs
        if config.fast_start_epochs and epoch == config.fast_start_epochs + 1:
            for group in opt.param_groups:
                group["lr"] = config.lr
        plan = plan_epoch(count, offset, max(config.batch_size // 2, 1) if fast else config.batch_size, gen, sample)
        xs = member_x[plan.member_order]  # one gather per epoch; batches are views
        gt, gc = target[plan.group_order], plan.group_size.float()
        loss_sum = torch.zeros((), device=device)
        for b in range(plan.n_batches):
            m0, m1 = plan.member_bounds[b], plan.member_bounds[b + 1]
            g0, g1 = plan.group_bounds[b], plan.group_bounds[b + 1]
            ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
            with ctx:
                masks = net.sample_masks(config.mc_samples, mask_gen) if step_masks else None
                pred = forward(xs[m0:m1], samples=config.mc_samples, masks=masks, encoded=pre_encoded).mean(0)
            loss = group_loss(pred.float(), plan.local_group[m0:m1], gt[g0:g1], gc[g0:g1])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if step_sched is not None:
                step_sched.step()
            loss_sum += loss.detach() * (g1 - g0)
        epoch_loss = float(loss_sum) / n_groups  # one host synchronisation per epoch
        if plateau is not None:
            plateau.step(epoch_loss)
        elapsed = time.perf_counter() - t_start
        history.append({"epoch": epoch, "loss": epoch_loss, "lr": opt.param_groups[0]["lr"], "seconds": elapsed})
        if epoch_loss < best_loss * (1 - config.min_delta):
            best_loss, best_epoch, bad = epoch_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad += 1
        bar.update(1)
        bar.set_postfix(loss=f"{epoch_loss:.5f}", best=f"{best_loss:.5f}", refresh=False)
        if not np.isfinite(epoch_loss):
            stop_reason = "non-finite loss"
            break
        if callback is not None and callback(epoch, net):
            stop_reason = "callback"
            break
        if bad >= config.patience:
            stop_reason = "patience"
            break
        if config.max_time is not None and elapsed >= config.max_time:
            stop_reason = "max_time"
            break
    bar.close()
    net.load_state_dict(best_state)
    seconds = time.perf_counter() - t_start
    logger.info("stopped after %d epochs (%s); best epoch %d, loss %.5f, %.1f s",
                len(history), stop_reason, best_epoch, best_loss, seconds)
    return FittedModel(
        net=net.cpu(), config=config, norm_center=np.asarray(data.norm_center, dtype=np.float64),
        norm_scale=float(data.norm_scale),
        stacks={"affines": data.stack_affines, "shapes": data.stack_shapes,
                "thickness": data.stack_thickness, "axis": data.stack_axis},
        group_keys=np.column_stack([data.group_stack, data.group_voxel]),
        data_hash=data_fingerprint(data),
        data_summary={"nodes": data.n_nodes, "groups": data.n_groups, "memberships": data.n_members,
                      "supervised_nodes": int(data.supervised().sum()), "stacks": [str(s) for s in data.stack_names],
                      "median_group": median, "group_sample_applied": sample or 0},
        history=history, best_epoch=best_epoch, stop_reason=stop_reason, seconds=seconds,
    )
