"""Stopping rules judged on one training trajectory: the Dice each rule would have kept, and the epochs it saves.

A rule that only decides *when* to stop (not the learning rate, not the batches) leaves the
trajectory as it is up to its stop. So each case is trained once to patience alone (today's defaults
with ``halvings`` 0 and ``stop_on_field`` off; the default since 2026-12-05 is the row
"lr-halved-4-or-settled-2-0.99", from 2026-12-03 "lr-halved-4"), keeping the weights of every epoch
(6,300 numbers each) and the field at up to 32,768 nodes every 5 epochs; a rule's stop epoch is read
off the loss and learning-rate history (and the field), its best epoch found as training finds it
(an improvement of more than ``min_delta``), and that epoch's weights predicted as ``predict`` does
(20 MC passes, the support rule, the region's nodes) and scored by Dice (>= 0.5) against the 3D
truth. Exact for every rule below, since none changes what happens before its stop; a rule that
changed the schedule would need its own run (``whole_run.py``).

    .venv/bin/python benchmarks/stop_rules.py [--seeds 0 1 2 3 4] [--nodes 75000] [--kinds probability ...] \
        [--rules lr-halved-4-or-300 ...] [--against lr-halved-4]
    .venv/bin/python benchmarks/stop_rules.py --rules lr-halved-4-or-settled-2-0.99 --against lr-halved-4
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from _cases import written_cases
from whole_run import ISSUE_KINDS, KINDS

from pycemrg_scar_reconstruction import PredictConfig, RuntimeConfig, TrainConfig, dice
from pycemrg_scar_reconstruction.api.prepare import run_stages
from pycemrg_scar_reconstruction.geometry import normalise
from pycemrg_scar_reconstruction.io.meshes import read_mesh, region_nodes
from pycemrg_scar_reconstruction.prediction import predict_nodes, supervised_nodes
from pycemrg_scar_reconstruction.training import FIELD_PROBE_NODES, fit

History = list[dict[str, float]]
#: epoch -> the probability (no dropout) at the probe nodes, every FIELD_EVERY epochs
Fields = dict[int, np.ndarray]
Rule = Callable[[History, TrainConfig, Fields], "int | None"]
#: epochs between two records of the field: the training's own checks'
FIELD_EVERY = TrainConfig().field_every


def lr_halved(times: int) -> Rule:
    """Stop at the first epoch whose learning rate is the base rate halved ``times`` times by the plateau schedule."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        floor = config.lr / 2**times * (1 + 1e-9)
        return next((h["epoch"] for h in history if h["epoch"] > config.fast_start_epochs and h["lr"] <= floor), None)

    return rule


def patience(epochs: int) -> Rule:
    """Stop after ``epochs`` epochs without an improvement (the plateau schedule's own patience unchanged)."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        best, bad = float("inf"), 0
        for h in history:
            if h["loss"] < best * (1 - config.min_delta):
                best, bad = h["loss"], 0
            else:
                bad += 1
            if bad >= epochs:
                return int(h["epoch"])
        return None

    return rule


def gain(window: int, fraction: float) -> Rule:
    """Stop when the best loss fell by less than ``fraction`` over the last ``window`` epochs."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        best = np.minimum.accumulate([h["loss"] for h in history])
        for i in range(window, len(best)):
            if best[i] > best[i - window] * (1 - fraction):
                return int(history[i]["epoch"])
        return None

    return rule


def budget(epochs: int) -> Rule:
    """Stop after ``epochs`` epochs (a fixed budget; the schedule as today's up to there)."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        return epochs if len(history) > epochs else None

    return rule


def settled(after_halvings: int, agreement: float, checks: int = 2) -> Rule:
    """Stop once the rate has been halved ``after_halvings`` times and the scar the field calls (>= 0.5 at
    the probe nodes) agrees with the previous record's at Dice >= ``agreement``, ``checks`` records in a row."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        floor = config.lr / 2**after_halvings * (1 + 1e-9)
        lr = {int(h["epoch"]): h["lr"] for h in history}
        run, last = 0, None
        for epoch in sorted(fields):
            now = fields[epoch]
            if last is not None and epoch > config.fast_start_epochs and lr[epoch] <= floor:
                run = run + 1 if dice(now, last) >= agreement else 0  # training's own measure
                if run >= checks:
                    return epoch
            last = now
        return None

    return rule


def first(*rules: Rule) -> Rule:
    """Stop at the earliest stop of ``rules`` (e.g. the fourth halving, or a budget if that comes first)."""

    def rule(history: History, config: TrainConfig, fields: Fields) -> int | None:
        stops = [s for s in (r(history, config, fields) for r in rules) if s is not None]
        return min(stops) if stops else None

    return rule


RULES: dict[str, Rule] = {
    "patience alone": lambda history, config, fields: None,
    "patience-20": patience(20),
    "patience-15": patience(15),
    "lr-halved-4": lr_halved(4),
    "lr-halved-3": lr_halved(3),
    "lr-halved-2": lr_halved(2),
    "gain-50-1%": gain(50, 0.01),
    "gain-50-2%": gain(50, 0.02),
    "gain-30-1%": gain(30, 0.01),
    "epochs-100": budget(100),
    "epochs-150": budget(150),
    "epochs-200": budget(200),
    "lr-halved-4-or-250": first(lr_halved(4), budget(250)),
    "lr-halved-4-or-300": first(lr_halved(4), budget(300)),
    "lr-halved-4-or-350": first(lr_halved(4), budget(350)),
    "lr-halved-4-or-400": first(lr_halved(4), budget(400)),
    "lr-halved-4-or-settled-2-0.99": first(lr_halved(4), settled(2, 0.99)),
    "lr-halved-4-or-settled-2-0.995": first(lr_halved(4), settled(2, 0.995)),
    "lr-halved-4-or-settled-2-0.99-x3": first(lr_halved(4), settled(2, 0.99, 3)),
    "lr-halved-4-or-settled-1-0.99": first(lr_halved(4), settled(1, 0.99)),
    "lr-halved-4-or-settled-3-0.99": first(lr_halved(4), settled(3, 0.99)),
}


def best_epoch(history: History, stop: int, min_delta: float) -> int:
    """The epoch training keeps when it stops at ``stop``: the last one that improved by more than min_delta."""
    best, kept = float("inf"), 1
    for h in history[:stop]:
        if h["loss"] < best * (1 - min_delta):
            best, kept = h["loss"], int(h["epoch"])
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    parser.add_argument("--nodes", type=int, default=75_000)
    parser.add_argument("--kinds", nargs="*", default=list(ISSUE_KINDS), choices=list(KINDS))
    parser.add_argument("--rules", nargs="*", default=list(RULES), choices=list(RULES), help="the rules to judge")
    parser.add_argument(
        "--against", default="patience alone", choices=list(RULES), help="the rule the Dice changes are against"
    )
    parser.add_argument("--training-seed", type=int, default=0, help="TrainConfig.seed of every training")
    args = parser.parse_args()
    rules = {name: RULES[name] for name in dict.fromkeys([args.against, *args.rules])}
    config = TrainConfig(halvings=0, stop_on_field=False, seed=args.training_seed)
    predict = PredictConfig()
    print(f"threads {torch.get_num_threads()}; Dice / epochs kept / share of patience alone's training seconds")
    print("| seed | kind | " + " | ".join(rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    changes: dict[str, list[float]] = {name: [] for name in rules}
    shares: dict[str, list[float]] = {name: [] for name in rules}
    for case in written_cases(args.seeds, args.kinds, KINDS, args.nodes):
        seed, kind, prepare_config = case.seed, case.kind, case.prepare
        data = run_stages(prepare_config).data
        assert data is not None
        states: list[dict[str, torch.Tensor]] = []
        fields: Fields = {}
        coords = torch.as_tensor(normalise(data.points, data.norm_center, data.norm_scale), dtype=torch.float32)
        pick = torch.randperm(len(coords), generator=torch.Generator().manual_seed(config.seed))
        probe = coords[pick[:FIELD_PROBE_NODES]]

        def keep(epoch: int, net: torch.nn.Module) -> bool:
            states.append({k: v.detach().clone() for k, v in net.state_dict().items()})
            if epoch % FIELD_EVERY == 0:  # no randomness drawn: the trajectory is as without it
                with torch.no_grad():
                    fields[epoch] = net(probe, samples=1, dropout=False)[0].numpy()
            return False

        fitted = fit(data, config, RuntimeConfig(quiet=True), callback=keep)
        mesh, points = read_mesh(prepare_config.mesh)
        region = region_nodes(mesh, prepare_config.mesh)
        truth = np.asarray(mesh.point_data["scar_truth"], np.float64)
        judged = np.ones(len(truth), bool) if region is None else region
        supervised = supervised_nodes(fitted, points)
        history = fitted.history
        cells = []
        base = None
        for name, rule in rules.items():  # the rule judged against comes first
            stop = rule(history, config, fields) or len(history)
            kept = best_epoch(history, stop, config.min_delta)
            fitted.net.load_state_dict(states[kept - 1])
            result = predict_nodes(
                fitted,
                points,
                predict.mc_samples,
                predict.mc_seed,
                "cpu",
                None,
                predict.support_mm,
                predict.prior,
                region,
                supervised=supervised,
            )
            score = dice(result.probability[judged], truth[judged])
            base = score if base is None else base
            share = history[stop - 1]["seconds"] / history[-1]["seconds"]
            changes[name].append(score - base)
            shares[name].append(share)
            cells.append(f"{score:.3f} / {kept} of {stop} / {share:.2f}")
        print(f"| {seed} | {kind} | " + " | ".join(cells) + " |", flush=True)
    print(
        f"\n| rule | Dice change against {args.against}: worst / mean "
        "| training seconds, share of patience alone's: median / largest |"
    )
    print("|---|---|---|")
    for name in rules:
        c, s = np.array(changes[name]), np.array(shares[name])
        print(f"| {name} | {c.min():+.3f} / {c.mean():+.4f} | {np.median(s):.2f} / {s.max():.2f} |")


if __name__ == "__main__":
    main()
