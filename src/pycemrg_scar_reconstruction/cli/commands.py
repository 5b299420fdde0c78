"""The subcommands: turn parsed options into config models, call :mod:`..api`, report the result.

Each command builds a summary (a dict) and the text a person reads; :func:`emit` prints the text,
or, with ``--json``, the summary as JSON on stdout (``--json PATH`` writes it there too). The API
(and torch under it) is imported inside each command, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ..arguments import (
    D_COHORT,
    D_SYNTH,
    D_VALIDATE,
    crossval_config,
    mesh_config,
    predict_config,
    prepare_config,
    runtime_config,
    train_config,
)
from ..config import CohortConfig, SynthConfig, ValidateConfig
from ..io.paths import json_text, output_lock, write_json
from ..options import values

#: The logger of each command's result text: it goes to --log-file, not to stderr (stdout has it).
SUMMARY_LOGGER = "pycemrg_scar_reconstruction.summary"
#: Options that name what a command writes; every other path option names something it reads.
OUTPUT_OPTIONS = ("output", "output_dir", "json", "log_file")
#: The files ``report`` writes into its folder.
REPORT_FILES = ("slices.png", "mesh.png", "training.png", "calibration.png", "report.json", "report.html")


def _paths(value: Any) -> list[Path]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return [Path(v) for v in items if isinstance(v, Path)]


def written_and_read(args: argparse.Namespace) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """The files a command will write (its outputs and their side files) and the ones it reads
    (every other path option), as (what, path) pairs for :func:`..io.paths.refuse_overwrite`."""
    from ..api import alignment_picture_path, output_paths
    from ..api.prepare import registration_picture_path
    from ..io.artifacts import history_path

    read = [
        (f"--{k.split('.')[-1].replace('_', '-')}", p)
        for k, v in vars(args).items()
        if k not in OUTPUT_OPTIONS
        for p in _paths(v)
    ]
    written: list[tuple[str, Path]] = []
    output, folder = getattr(args, "output", None), getattr(args, "output_dir", None)
    if output is not None:
        written.append(("--output", output))
        if args.command == "prepare":
            written.append(("alignment picture beside --output", alignment_picture_path(output)))
            written.append(("registration picture beside --output", registration_picture_path(output)))
        if args.command == "train":
            written.append(("loss history beside --output", history_path(output)))
        if args.command == "run":
            paths = output_paths(output)
            written += [
                ("training data beside --output", paths["data"]),
                ("model beside --output", paths["model"]),
                ("loss history beside --output", history_path(paths["model"])),
                ("alignment picture beside --output", alignment_picture_path(paths["data"])),
                ("registration picture beside --output", registration_picture_path(paths["data"])),
                *[("report beside --output", paths["report"] / n) for n in REPORT_FILES],
            ]
    if folder is not None and args.command == "report":
        written += [("report in --output-dir", folder / n) for n in REPORT_FILES]
    if folder is not None and args.command == "cohort":
        written += [("cohort table in --output-dir", folder / n) for n in ("cohort.csv", "cohort.html")]
    if getattr(args, "json", None) not in (None, "-"):
        written.append(("--json summary", Path(args.json)))
    if getattr(args, "log_file", None) is not None:
        written.append(("--log-file", args.log_file))
    return written, read


def emit(args: argparse.Namespace, summary: dict[str, Any], text: str) -> None:
    """The command's result: ``text`` on stdout, or with ``--json`` the ``summary`` as one JSON
    object instead; with ``--json PATH`` the text and the summary written to PATH."""
    logging.getLogger(SUMMARY_LOGGER).info("%s", text)  # for --log-file; stdout has it already
    target = getattr(args, "json", None)
    if target == "-":
        print(json_text(summary))
        return
    print(text)
    if target:
        write_json(summary, Path(target))
        print(f"wrote {target}")


def _fit(fitted: Any) -> tuple[dict[str, Any], str]:
    h = fitted.history[fitted.best_epoch - 1] if fitted.best_epoch else {"loss": float("nan")}
    summary = {
        "epochs": len(fitted.history),
        "best_epoch": fitted.best_epoch,
        "stop_reason": fitted.stop_reason,
        "seconds": round(fitted.seconds, 3),
        "group_loss": h["loss"],
        "threads": fitted.threads,
        "device": fitted.device,
    }
    # the thread count changes float rounding, so where training stops: say it
    where = f" on {fitted.trained_on}" if fitted.trained_on else ""
    text = (
        f"trained {len(fitted.history)} epochs in {fitted.seconds:.1f} s{where} (stopped: {fitted.stop_reason}); "
        f"best epoch {fitted.best_epoch}, group loss {h['loss']:.5f} (RMSE {h['loss'] ** 0.5:.4f})"
    )
    return summary, text


def _prediction(result: Any, output: Path) -> tuple[dict[str, Any], str]:
    from ..metrics import burden_line

    p = result.probability
    summary = {
        "output": str(output),
        "nodes": len(p),
        "mean_probability": float(p.mean()),
        "scar_nodes": int((p >= 0.5).sum()),
        "mean_uncertainty": float(result.uncertainty.mean()),
        "supervised_nodes": int(result.supervised.sum()),
        "support_mm": result.support_mm,
        "prior": result.prior,
        "prior_share": result.prior_share,
        "burden": result.burden,
    }
    region = f" of the {int(result.in_region.sum())} in the region" if not result.in_region.all() else ""
    text = (
        f"nodes: {len(p)}  mean probability {p.mean():.3f}  nodes >= 0.5: {int((p >= 0.5).sum())}  "
        f"mean uncertainty {result.uncertainty.mean():.4f}  supervised: {int(result.supervised.sum())}\n"
        f"more than {result.support_mm:.3g} mm beyond the images' coverage (prior {result.prior:g}): "
        f"{100 * result.prior_share:.1f}% of the nodes{region}\n"
        + (f"{burden_line(result.burden, not result.in_region.all())}\n" if result.burden else "")
        + f"wrote {output}"
    )
    return summary, text


def cmd_synth(args: argparse.Namespace) -> int:
    from ..api import synth

    config = values(args, SynthConfig, D_SYNTH)
    if args.axial:
        config["oblique"] = False
    files = synth(SynthConfig(**config), args.output_dir)
    emit(args, {"files": {k: str(v) for k, v in files.items()}}, "\n".join(f"{k}: {v}" for k, v in files.items()))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from ..api import prepare, slice_offsets_mm
    from ..data_summary import summary
    from ..metrics import registration_line

    with output_lock(args.output):
        data = prepare(prepare_config(args), output=args.output)
    facts = {
        "output": str(args.output),
        "nodes": data.n_nodes,
        "supervised_nodes": int(data.supervised().sum()),
        "groups": data.n_groups,
        "memberships": data.n_members,
        "stacks": [str(s) for s in data.stack_names],
        "slice_offsets_mm": slice_offsets_mm(data),
    }
    text = summary(data)
    if data.registration is not None:
        registration = json.loads(data.registration)
        facts["study_to_mesh"] = registration.pop("study_to_mesh")
        facts["registration"] = registration
        text += "\n" + registration_line(registration)
    emit(args, facts, f"{text}\nwrote {args.output}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..api import train
    from ..io.artifacts import history_path

    with output_lock(args.output):
        fitted = train(args.data, train_config(args), output=args.output, runtime=runtime_config(args))
    summary, text = _fit(fitted)
    summary.update(output=str(args.output), history=str(history_path(args.output)))
    emit(args, summary, f"{text}\nwrote {args.output} and {history_path(args.output)}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ..api import predict

    with output_lock(args.output):
        result = predict(args.model, mesh_config(args), args.output, predict_config(args), runtime_config(args))  # type: ignore[arg-type]
    emit(args, *_prediction(result, args.output))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ..api import output_paths, reconstruct
    from ..api.run import stage_line

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
            calibration=crossval_config(args),
        )
    from ..io.artifacts import load_model

    summary, text = _prediction(result, args.output)
    summary.update(data=str(paths["data"]), model=str(paths["model"]), report=str(paths["report"]) if args.report else None)
    summary["stage_seconds"] = result.seconds
    summary["training"], trained = _fit(load_model(paths["model"]))
    lines = [f"training data: {paths['data']}", f"model: {paths['model']}", trained]
    if args.report:
        from ..metrics import scar_line, verdict_line

        checked = json.loads((paths["report"] / "report.json").read_text())
        summary["passed"] = checked["passed"]
        lines.append(f"report: {paths['report']}/")
        lines.append("check: " + verdict_line(checked) + ("; " + scar_line(checked["scar"]) if "scar" in checked else ""))
    emit(args, summary, "\n".join([*lines, text, f"time: {stage_line(result.seconds)}"]))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..api import validate
    from ..metrics import format_report

    report = validate(
        args.data, ValidateConfig(**values(args, ValidateConfig, D_VALIDATE)), model=args.model, mesh=mesh_config(args)
    )
    emit(args, report, format_report(report))
    return 0 if report["passed"] else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from ..api import baseline

    with output_lock(args.output):
        result = baseline(args.method, prepare_config(args), args.output)
    summary = {
        "method": args.method,
        "output": str(args.output),
        "nodes": len(result),
        "mean_probability": float(result.mean()),
        "scar_nodes": int((result >= 0.5).sum()),
    }
    text = f"{args.method}: nodes {len(result)}  mean {result.mean():.3f}  nodes >= 0.5: {int((result >= 0.5).sum())}"
    emit(args, summary, f"{text}\nwrote {args.output}")
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
    emit(args, result, f"{format_report(result)}\nwrote {args.output_dir}/")
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
        # progress goes to stderr when stdout carries the JSON summary
        print(f"[{finished}/{total}] {row['id']}: {what}", flush=True, file=sys.stderr if args.json == "-" else sys.stdout)

    result = run_cohort(
        args.manifest,
        args.output_dir,
        CohortConfig(**values(args, CohortConfig, D_COHORT)),
        runtime_config(args),
        on_row=line,
    )
    failed = result.count("failed")
    summary = {
        "patients": len(result.rows),
        "done": result.count("done"),
        "skipped": result.count("skipped"),
        "failed": failed,
        "table": str(result.table),
        "summary": str(result.summary),
        "rows": result.rows,
    }
    text = (
        f"{len(result.rows)} patients: {result.count('done')} done, {result.count('skipped')} skipped, "
        f"{failed} failed\nwrote {result.table} and {result.summary}"
    )
    emit(args, summary, text)
    return 1 if failed else 0


def cmd_crossval(args: argparse.Namespace) -> int:
    from ..api import crossval
    from ..metrics import format_heldout

    prediction = predict_config(args)
    result = crossval(
        args.data,
        train_config(args),
        runtime_config(args),
        crossval_config(args),
        prediction.mc_samples,
        prediction.mc_seed,
    )

    lines = [f"{result['folds']} folds ({result['holdout']}, {result['workers']} at once), {result['seconds']:.1f} s"]
    lines += format_heldout(result)
    emit(args, result, "\n".join(lines))
    return 0


def cmd_transform(args: argparse.Namespace) -> int:
    from ..api import transform

    with output_lock(args.output):
        affine = transform(args.image, args.report, args.output)
    emit(args, {"output": str(args.output), "affine": affine.tolist()}, f"wrote {args.output} in the mesh's frame")
    return 0
