"""The subcommands: turn parsed options into config models, call :mod:`..api`, print a summary.

The API (and torch under it) is imported inside each command, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import CohortConfig, SynthConfig, ValidateConfig
from ..io.paths import output_lock
from .configs import mesh_config, predict_config, prepare_config, runtime_config, train_config
from .options import values
from .parser import D_COHORT, D_SYNTH, D_VALIDATE


def _print_fit(fitted: Any) -> None:
    h = fitted.history[fitted.best_epoch - 1] if fitted.best_epoch else {"loss": float("nan")}
    print(
        f"trained {len(fitted.history)} epochs in {fitted.seconds:.1f} s (stopped: {fitted.stop_reason}); "
        f"best epoch {fitted.best_epoch}, group loss {h['loss']:.5f} (RMSE {h['loss'] ** 0.5:.4f})"
    )


def _print_prediction(result: Any, output: Path) -> None:
    p = result.probability
    print(
        f"nodes: {len(p)}  mean probability {p.mean():.3f}  nodes >= 0.5: {int((p >= 0.5).sum())}  "
        f"mean uncertainty {result.uncertainty.mean():.4f}  supervised: {int(result.supervised.sum())}"
    )
    region = f" of the {int(result.in_region.sum())} in the region" if not result.in_region.all() else ""
    print(
        f"beyond {result.support_mm:.3g} mm from any supervised node (prior {result.prior:g}): "
        f"{100 * result.prior_share:.1f}% of the nodes{region}"
    )
    print(f"wrote {output}")


def cmd_synth(args: argparse.Namespace) -> int:
    from ..api import synth

    config = values(args, SynthConfig, D_SYNTH)
    if args.axial:
        config["oblique"] = False
    for name, path in synth(SynthConfig(**config), args.output_dir).items():
        print(f"{name}: {path}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..api import prepare
    from ..data import summary

    with output_lock(args.output):
        data = prepare(prepare_config(args), output=args.output)
    print(summary(data))
    print(f"wrote {args.output}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import train
    from ..io.artifacts import history_path

    with output_lock(args.output):
        fitted = train(args.data, train_config(args), output=args.output, runtime=runtime_config(args))
    _print_fit(fitted)
    print(f"wrote {args.output} and {history_path(args.output)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..api import predict

    with output_lock(args.output):
        result = predict(args.model, mesh_config(args), args.output, predict_config(args), runtime_config(args))  # type: ignore[arg-type]
    _print_prediction(result, args.output)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..api import output_paths, reconstruct

    paths = output_paths(args.output)
    with output_lock(*paths.values()):
        result = reconstruct(
            prepare_config(args),
            train_config(args),
            args.output,
            predict_config(args),
            with_report=args.report,
            runtime=runtime_config(args),
            command=args.command_line,
        )
    print(f"training data: {paths['data']}\nmodel: {paths['model']}")
    if args.report:
        print(f"report: {paths['report']}/")
    _print_prediction(result, args.output)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..api import validate
    from ..io.paths import check_output, write_json
    from ..metrics import format_report

    if args.json:
        check_output(args.json, "JSON report")
    report = validate(
        args.data, ValidateConfig(**values(args, ValidateConfig, D_VALIDATE)), model=args.model, mesh=mesh_config(args)
    )
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0 if report["passed"] else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from ..api import baseline

    with output_lock(args.output):
        result = baseline(args.method, prepare_config(args), args.output)
    print(f"{args.method}: nodes {len(result)}  mean {result.mean():.3f}  nodes >= 0.5: {int((result >= 0.5).sum())}")
    print(f"wrote {args.output}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..api import report
    from ..metrics import format_report

    result = report(
        args.output_dir,
        args.data,
        mesh_config(args),  # type: ignore[arg-type]
        model=args.model,
        config=ValidateConfig(**values(args, ValidateConfig, D_VALIDATE)),
        command=args.command_line,
    )
    print(format_report(result))
    print(f"wrote {args.output_dir}/")
    return 0


def cmd_cohort(args: argparse.Namespace) -> int:
    from ..cohort import run_cohort

    def line(row: dict, finished: int, total: int) -> None:
        what = f"{row['status']}"
        if row["status"] == "failed":
            what += f": {row['error']}"
        elif row.get("dice") not in ("", None):
            what += f" in {row['seconds']} s, Dice {row['dice']}, group RMSE {row['group_rmse']}"
        elif row.get("group_rmse") not in ("", None):
            what += f" in {row['seconds']} s, group RMSE {row['group_rmse']}"
        print(f"[{finished}/{total}] {row['id']}: {what}", flush=True)

    result = run_cohort(
        args.manifest,
        args.output_dir,
        CohortConfig(**values(args, CohortConfig, D_COHORT)),
        runtime_config(args),
        on_row=line,
    )
    failed = result.count("failed")
    print(
        f"{len(result.rows)} patients: {result.count('done')} done, {result.count('skipped')} skipped, {failed} failed"
        f"\nwrote {result.table} and {result.summary}"
    )
    return 1 if failed else 0
