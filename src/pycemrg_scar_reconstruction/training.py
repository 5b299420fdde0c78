"""Per-patient training: complete-group batches, scatter-mean group loss, MC dropout, AMP, early stopping.

Early-stopping criterion: the epoch loss, i.e. the mean over *all* groups of the squared group
error as seen during the epoch (each group is in exactly one batch per epoch). An epoch improves
when this falls below ``best * (1 - min_delta)``; after ``patience`` epochs without improvement,
training stops and the best epoch's weights are restored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from .batching import EpochPlan, plan_epoch, shuffle_within_groups
from .config import RuntimeConfig, TrainConfig
from .data import TrainingData
from .device import autocast_dtype, resolve_device
from .errors import InputError, Interrupted
from .fitted import FittedModel, data_fingerprint
from .geometry import normalise
from .loss import group_loss
from .metrics import dice
from .model import FourierFeatures, ScarMLP, n_parameters
from .optimiser import Adam
from .progress import Ticker
from .stack import main_slice_normal

logger = logging.getLogger(__name__)
#: Nodes whose called scar (probability >= 0.5) is compared between checks (``stop_on_field``).
FIELD_PROBE_NODES = 32_768

#: Largest pre-encoded training set kept on the device (bytes); above it the encoding runs per step.
PRE_ENCODE_BYTES = 1 << 30


def _schedulers(opt: torch.optim.Optimizer, config: TrainConfig):
    """(per-step scheduler or None, per-epoch plateau scheduler or None, per-epoch cycle or None)."""
    if config.schedule == "cyclic":
        step = torch.optim.lr_scheduler.CyclicLR(
            opt,
            base_lr=config.lr,
            max_lr=config.lr_max,
            step_size_up=config.step_size,
            mode="triangular",
            cycle_momentum=False,
        )
        return step, None, None
    if config.schedule == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=max(config.patience // 3, 1), threshold=config.min_delta
        )
        return None, plateau, None
    if config.schedule == "onecycle":  # stepped per epoch: its length is known in epochs, not steps
        cycle = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=config.lr_max, total_steps=config.cycle_epochs + 1, pct_start=0.25, cycle_momentum=False
        )
        return None, None, cycle
    return None, None, None


def finish_lbfgs(
    net: ScarMLP,
    forward: Callable[..., torch.Tensor],
    plan_all: Callable[[], EpochPlan],
    member_x: torch.Tensor,
    target: torch.Tensor,
    config: TrainConfig,
    mask_gen: torch.Generator,
    encoded: bool,
    history: list[dict[str, float]],
    t_start: float,
) -> float:
    """Full-batch L-BFGS on the MC mean of ``config.mc_samples`` passes (``finish="lbfgs"``).

    Each of ``finish_steps`` steps draws new dropout masks (and, with group sampling, new node
    windows) and runs ``finish_iterations`` L-BFGS iterations with a strong-Wolfe line search on
    that fixed objective; the curvature pairs carry over between steps. Appends one history row per
    step (its ``lr`` is L-BFGS's step length, 1) and returns the last step's loss. The network is
    left at the last step's weights; a step whose loss is not finite restores the weights before it.
    """
    opt = torch.optim.LBFGS(
        net.parameters(), lr=1.0, max_iter=config.finish_iterations, history_size=20, line_search_fn="strong_wolfe"
    )

    def objective(xs: torch.Tensor, masks: list[torch.Tensor], local: torch.Tensor, gt: torch.Tensor, gc: torch.Tensor):
        pred = forward(xs, samples=config.mc_samples, masks=masks, encoded=encoded, clip=False).mean(0)
        return group_loss(pred.float(), local, gt, gc)

    loss_value = float("nan")
    first = len(history)
    for step in range(config.finish_steps):
        plan = plan_all()
        args = (
            member_x.index_select(0, plan.member_order),
            net.sample_masks(config.mc_samples, mask_gen),
            plan.local_group,
            target[plan.group_order],
            plan.group_size.float(),
        )
        before = {k: v.detach().clone() for k, v in net.state_dict().items()}

        def closure(args: tuple = args) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = objective(*args)
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():  # the step's objective at its end (L-BFGS returns the one at its start)
            loss_value = float(objective(*args))
        if not np.isfinite(loss_value):
            net.load_state_dict(before)
            break
        history.append({"epoch": first + step + 1, "loss": loss_value, "lr": 1.0, "seconds": time.perf_counter() - t_start})
    return loss_value


def fit(
    data: TrainingData,
    config: TrainConfig,
    runtime: RuntimeConfig = RuntimeConfig(),
    progress: bool | None = None,
    callback: Callable[[int, ScarMLP], bool | None] | None = None,
) -> FittedModel:
    """Train the network so each group's mean prediction matches its target.

    Parameters
    ----------
    data : grouped training data.
    config : training configuration (see :class:`~.config.TrainConfig`).
    runtime : device, mixed precision and compilation (the CPU thread count is the caller's:
        :func:`.device.torch_threads`).
    progress : show a progress bar (default: not ``runtime.quiet``).
    callback : called after every epoch with (epoch, network); returning True stops training
        (benchmarks use it to track quality over time).

    Returns
    -------
    FittedModel with the best epoch's weights and the loss history.
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    device = resolve_device(runtime.device)
    torch.manual_seed(config.seed)
    # In-plane detail (pixels) is finer than the slice spacing: with ModelConfig.fourier_anisotropy
    # above 1 the Fourier frequencies are stretched within the slices' plane and shrunk along their normal.
    normal = main_slice_normal(data.stacks)
    net = ScarMLP(config.model, seed=config.seed, normal=normal, norm_scale_mm=float(data.norm_scale)).to(device)
    if config.init_output_bias:
        net.set_output_bias(float(np.mean(data.group_target)))
    forward = torch.compile(net) if runtime.compile else net
    logger.info("model: %d parameters on %s", n_parameters(net), device)
    if net.capped_unit_mm is not None:
        logger.info(
            "Fourier frequencies per %.0f mm: the mesh's normalised unit is %.0f mm (`fourier_max_unit_mm`)",
            net.capped_unit_mm,
            data.norm_scale,
        )

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
        logger.info(
            "groups hold %d nodes on median: each epoch uses %d random nodes of every larger group (`group_sample`)",
            median,
            sample,
        )
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
    cycling = config.schedule == "onecycle"  # its warm-up replaces the fast start; it ends training
    fast_epochs = 0 if cycling else config.fast_start_epochs
    opt = Adam(net.parameters(), lr=2 * config.lr if fast_epochs else config.lr)
    step_sched, plateau, cycle = _schedulers(opt, config)
    finishing = config.finish == "lbfgs"  # Adam for finish_after epochs, then L-BFGS (finish_lbfgs)
    last_epoch = (
        min(config.max_epochs, config.cycle_epochs)
        if cycling
        else min(config.max_epochs, config.finish_after)
        if finishing
        else config.max_epochs
    )
    # halvings: the plateau schedule's rate after that many halvings (with a margin for rounding)
    lr_floor = config.lr / 2**config.halvings * (1 + 1e-9)
    field_floor = config.lr / 2**config.field_after_halvings * (1 + 1e-9)
    amp_dtype = autocast_dtype(runtime.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")
    n_groups = data.n_groups
    step_masks = config.dropout_masks == "step"
    mask_gen = torch.Generator(device=device).manual_seed(config.seed)

    best_loss, best_epoch, bad = float("inf"), 0, 0
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    history: list[dict[str, float]] = []
    stop_reason = "max_epochs"
    show = (not runtime.quiet) if progress is None else progress
    # disable=None: no bar when stderr is not a terminal (logs, CI)
    # the bar's total is the epoch at which training stops if the loss does not improve again
    bar = tqdm(
        total=last_epoch if cycling else min(config.max_epochs, config.patience),
        unit="epoch",
        disable=True if not show else None,
        leave=False,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    interrupted: KeyboardInterrupt | None = None
    epoch, ticker = 0, Ticker()
    # stop_on_field: a fixed sample of nodes whose called scar (no dropout) is compared between checks
    if config.stop_on_field:  # its own generator: the shuffling is the same with the rule on or off
        pick = torch.randperm(len(coords), generator=torch.Generator().manual_seed(config.seed))
        probe = coords[pick[:FIELD_PROBE_NODES].to(device)]
        if pre_encoded:  # the encoding is fixed: encoded once, as the memberships are
            with torch.no_grad():
                probe = net.encode(probe)
    last_field: np.ndarray | None = None
    stable = 0
    try:  # Ctrl-C / SIGTERM: stop here and keep the best epoch (the caller saves it)
        for epoch in range(1, last_epoch + 1):
            fast = epoch <= fast_epochs
            if fast_epochs and epoch == fast_epochs + 1:
                for group in opt.param_groups:
                    group["lr"] = config.lr
            plan = plan_epoch(count, offset, max(config.batch_size // 2, 1) if fast else config.batch_size, gen, sample)
            gt, gc = target[plan.group_order], plan.group_size.float()
            loss_sum = torch.zeros((), device=device)
            for b in range(plan.n_batches):
                m0, m1 = plan.member_bounds[b], plan.member_bounds[b + 1]
                g0, g1 = plan.group_bounds[b], plan.group_bounds[b + 1]
                ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
                with ctx:
                    masks = net.sample_masks(config.mc_samples, mask_gen) if step_masks else None
                    # one gather per batch: a buffer of one batch is reused, where one of the epoch
                    # (tens of MB on a fine mesh) is new memory every epoch; index_select copies
                    # whole rows: 2.5x faster on CPU than x[idx]'s element-by-element loop, the same values
                    xs = member_x.index_select(0, plan.member_order[m0:m1])
                    pred = forward(xs, samples=config.mc_samples, masks=masks, encoded=pre_encoded, clip=False).mean(0)
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
            if cycle is not None:
                cycle.step()
            elapsed = time.perf_counter() - t_start
            history.append({"epoch": epoch, "loss": epoch_loss, "lr": opt.param_groups[0]["lr"], "seconds": elapsed})
            if epoch_loss < best_loss * (1 - config.min_delta):
                best_loss, best_epoch, bad = epoch_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                bad += 1
            bar.total = last_epoch if cycling else min(config.max_epochs, best_epoch + config.patience)
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_loss:.5f}", best=f"{best_loss:.5f}", refresh=False)
            if show:
                ticker.tick(
                    "epoch %d (stops by epoch %d%s): loss %.5f, best %.5f at epoch %d, %.0f s",
                    epoch,
                    bar.total,
                    "" if cycling else " unless the loss improves",
                    epoch_loss,
                    best_loss,
                    best_epoch,
                    elapsed,
                )
            if not np.isfinite(epoch_loss):
                stop_reason = "non-finite loss"
                break
            if callback is not None and callback(epoch, net):
                stop_reason = "callback"
                break
            if bad >= config.patience and not cycling:
                stop_reason = "patience"
                break
            if cycling and epoch == config.cycle_epochs:
                stop_reason = "schedule end"
                break
            if plateau is not None and config.halvings and opt.param_groups[0]["lr"] <= lr_floor:
                stop_reason = f"rate halved {config.halvings} times"
                break
            if finishing and epoch == last_epoch:
                stop_reason = "finish"
                break
            if config.stop_on_field and epoch % config.field_every == 0:
                with torch.no_grad():
                    field_now = net(probe, samples=1, dropout=False, encoded=pre_encoded)[0].cpu().numpy()
                # the halvings are the plateau schedule's: under another schedule only a gate of 0 opens
                halved = config.field_after_halvings == 0 or (
                    plateau is not None and opt.param_groups[0]["lr"] <= field_floor
                )
                settling = epoch > fast_epochs and halved
                if last_field is not None and settling and dice(field_now, last_field) >= config.field_agreement:
                    stable += 1
                else:
                    stable = 0
                last_field = field_now
                if stable >= config.field_window:
                    stop_reason = "scar settled"
                    break
            if config.max_time is not None and elapsed >= config.max_time:
                stop_reason = "max_time"
                break
    except KeyboardInterrupt as exc:
        interrupted, stop_reason = exc, "interrupted"
    bar.close()
    if best_epoch == 0:
        if interrupted is not None:
            raise interrupted
        first = history[0]["loss"] if history else float("nan")
        raise InputError(
            f"training never reached a finite group loss (epoch 1: {first}); lower `lr` and `lr_max`, "
            "or check the training data"
        )
    net.load_state_dict(best_state)
    # L-BFGS follows whenever the Adam phase ended on its own (not on an error, a callback or a bound)
    if finishing and (stop_reason in ("finish", "patience") or stop_reason.startswith("rate halved")):
        plan_all = functools.partial(plan_epoch, count, offset, data.n_members, gen, sample)  # one batch
        best_loss = finish_lbfgs(net, forward, plan_all, member_x, target, config, mask_gen, pre_encoded, history, t_start)
        best_epoch, stop_reason = len(history), "lbfgs steps"
    seconds = time.perf_counter() - t_start
    fitted = FittedModel(
        net=net.cpu(),
        config=config,
        norm_center=np.asarray(data.norm_center, dtype=np.float64),
        norm_scale=float(data.norm_scale),
        stacks=data.stacks,
        group_keys=data.group_keys,
        data_hash=data_fingerprint(data),
        data_summary={
            "nodes": data.n_nodes,
            "groups": data.n_groups,
            "memberships": data.n_members,
            "supervised_nodes": int(data.supervised().sum()),
            "stacks": [str(s) for s in data.stack_names],
            "median_group": median,
            "group_sample_applied": sample or 0,
        },
        history=history,
        best_epoch=best_epoch,
        stop_reason=stop_reason,
        seconds=seconds,
        threads=torch.get_num_threads(),
        device=str(device),
    )
    logger.info(
        "stopped after %d epochs (%s); best epoch %d, loss %.5f, %.1f s on %s",
        len(history),
        stop_reason,
        best_epoch,
        best_loss,
        seconds,
        fitted.trained_on,
    )
    if interrupted is not None:
        raise Interrupted(f"during epoch {epoch}", cause=interrupted, partial=fitted)
    return fitted
