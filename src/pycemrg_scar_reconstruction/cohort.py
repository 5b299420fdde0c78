"""Cohorts: every patient of a manifest through ``run``, one Dask task per patient.

By default the tasks run on a local Dask cluster of worker processes (one thread each, started
here and stopped at the end: nothing to install beyond the ``cohort`` extra, no server to run);
with ``scheduler`` they run on an existing cluster (e.g. one started by dask-jobqueue on SLURM).
Each patient writes ``<output_dir>/<id>/`` (the ``run`` outputs, ``run.log`` with its warnings and
``cohort.json`` with its row and the key of its inputs and options). A patient that fails is
recorded with its error line and never stops the others; one whose worker process died is run
again once (Dask's ``allowed-failures``). Re-running skips the patients whose ``cohort.json`` says
done with the same key. ``cohort.csv`` is rewritten as patients finish; ``cohort.html`` (table and
pictures) at the end.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import CohortConfig, RuntimeConfig
from .errors import InputError
from .io.paths import atomic_output, check_output_dir, write_json
from .manifest import Patient, read_manifest

logger = logging.getLogger(__name__)

#: Columns of ``cohort.csv``, in order.
COLUMNS = (
    "id",
    "status",
    "error",
    "attempts",
    "seconds",
    "nodes",
    "groups",
    "group_rmse",
    "share_within",
    "passed",
    "scar_share",
    "core_ml",
    "core_share",
    "mean_uncertainty",
    "dice",
    "mae",
    "holdout_dice",
    "holdout_mae",
    "simulated_dice",
    "calibration_ece",
    "misregistration_mm",
    "output",
)
#: The output mesh of each patient, inside its folder.
OUTPUT_NAME = "scar.vtu"
INSTALL_HINT = "the cohort command needs Dask: pip install 'pycemrg-scar-reconstruction[cohort]' (or 'dask[distributed]')"


@dataclass(frozen=True)
class CohortResult:
    """Rows (one per patient, manifest order, keys :data:`COLUMNS`) and the files written."""

    rows: list[dict[str, Any]]
    table: Path
    summary: Path

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.rows)


def _rounded(value: float | None, digits: int) -> float | str:
    """A figure of report.json for a cohort.csv cell: rounded, or empty when absent (None, NaN)."""
    return "" if value is None or value != value else round(value, digits)


def _row(patient: Patient, status: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(id=patient.id, status=status, **values)
    return row


def run_patient(patient: Patient, output_dir: Path, key: str, runtime: dict[str, Any]) -> dict[str, Any]:
    """One patient's ``run`` (a Dask task): returns its row and writes ``cohort.json`` beside its outputs.

    Every error of the patient's own (bad input, a failing option, any exception) becomes a
    ``failed`` row with one error line; only the death of the process escapes.
    """
    from pydantic import ValidationError

    from .api import reconstruct, validate
    from .arguments import crossval_config, predict_config, prepare_config, runtime_config, train_config
    from .config import MeshConfig, ValidateConfig
    from .manifest import run_parser
    from .options import flags_in_message, validation_line

    folder = Path(output_dir) / patient.id
    folder.mkdir(parents=True, exist_ok=True)
    attempts_file = folder / ".attempts"
    attempts = (int(attempts_file.read_text() or 0) if attempts_file.exists() else 0) + 1
    attempts_file.write_text(str(attempts))
    for stale in folder.rglob(".*"):  # temporary files of an attempt whose process was killed
        if stale.is_file() and stale != attempts_file:
            stale.unlink()
    handler = logging.FileHandler(folder / "run.log", mode="w")
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    package_log = logging.getLogger("pycemrg_scar_reconstruction")
    package_log.addHandler(handler)
    start = time.perf_counter()
    output = folder / OUTPUT_NAME
    try:
        args = run_parser().parse_args([*patient.argv, "--output", str(output)])
        run_rt = runtime_config(args)
        rt = RuntimeConfig(**{**runtime, **run_rt.model_dump(exclude_unset=True), "quiet": True})
        check = ValidateConfig(truth=patient.truth)
        result = reconstruct(
            prepare_config(args),
            train_config(args),
            output,
            predict_config(args),
            args.report,
            rt,
            check,
            calibration=crossval_config(args),
        )
        report_file = folder / f"{Path(OUTPUT_NAME).stem}_report" / "report.json"
        if report_file.exists():
            report = json.loads(report_file.read_text())
        else:
            mesh = MeshConfig(path=output)
            report = validate(folder / f"{Path(OUTPUT_NAME).stem}_data.npz", check, mesh=mesh)
        overall, truth, heldout = report["overall"], report.get("truth", {}), report.get("heldout", {})
        row = _row(
            patient,
            "done",
            attempts=attempts,
            seconds=round(time.perf_counter() - start, 2),
            nodes=len(result.probability),
            groups=overall["groups"],
            group_rmse=_rounded(overall["rmse"], 5),
            share_within=_rounded(overall["share_within"], 4),
            passed=report["passed"],
            scar_share=round(float((result.probability >= 0.5).mean()), 4),
            core_ml=_rounded((result.burden or {}).get("core_ml"), 2),
            core_share=_rounded((result.burden or {}).get("core_share"), 4),
            mean_uncertainty=round(float(result.uncertainty.mean()), 5),
            dice=_rounded(truth.get("dice"), 4),
            mae=_rounded(truth.get("mae"), 5),
            holdout_dice=_rounded(heldout.get("holdout_dice"), 4),
            holdout_mae=_rounded(heldout.get("holdout_mae"), 5),
            simulated_dice=_rounded(heldout.get("simulated", {}).get("dice"), 4),
            calibration_ece=_rounded(heldout.get("calibration", {}).get("ece_after"), 4),
            misregistration_mm=_rounded(report.get("misregistration_mm"), 2),
            output=str(output),
        )
    except Exception as exc:  # the patient's failure, whatever it is, is its row; the cohort goes on
        if isinstance(exc, ValidationError):
            line = validation_line(exc)
        elif isinstance(exc, InputError):
            line = flags_in_message(str(exc), columns=True)  # a manifest user knows column names
        else:
            line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        row = _row(patient, "failed", error=line, attempts=attempts, seconds=round(time.perf_counter() - start, 2))
    finally:
        package_log.removeHandler(handler)
        handler.close()
    write_json({"key": key, "row": row}, folder / "cohort.json")
    return row


def _finished(patient: Patient, output_dir: Path, key: str) -> dict[str, Any] | None:
    """The earlier row of a patient done with the same key (its outputs still there), else None."""
    marker = Path(output_dir) / patient.id / "cohort.json"
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    row = saved.get("row", {})
    if saved.get("key") != key or row.get("status") != "done" or not Path(row.get("output", "")).exists():
        return None
    return {**dict.fromkeys(COLUMNS, ""), **row, "status": "skipped"}


def write_table(rows: list[dict[str, Any]], path: Path) -> None:
    """``cohort.csv``: one row per patient, columns :data:`COLUMNS` (written atomically)."""
    with atomic_output(Path(path)) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_summary(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """``cohort.html``: counts, the pictures (embedded) and the table, one self-contained page."""
    from .figures import plot_cohort
    from .report_page import embed_png, page, table

    buffer = io.BytesIO()
    plot_cohort(rows, buffer)
    counts = ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in ("done", "skipped", "failed", "pending"))
    body = "\n".join(
        [
            f"<p>{len(rows)} patients: {html.escape(counts)}.</p>",
            embed_png(buffer.getvalue(), "per-patient figures"),
            # columns no patient has (e.g. Dice without truths) stay in cohort.csv, not on the page
            table(
                rows,
                [c for c in COLUMNS if c != "output" and any(r.get(c) not in ("", None) for r in rows)],
                row_class="status",
            ),
        ]
    )
    with atomic_output(Path(path)) as tmp:
        tmp.write_text(page(title, body))


def run_cohort(
    manifest: Path,
    output_dir: Path,
    config: CohortConfig = CohortConfig(),
    runtime: RuntimeConfig = RuntimeConfig(),
    on_row: Callable[[dict[str, Any], int, int], None] | None = None,
) -> CohortResult:
    """Run every patient of ``manifest`` (see :mod:`.manifest`) on Dask; write the cohort table and page.

    Parameters
    ----------
    manifest : CSV or YAML manifest.
    output_dir : ``<id>/`` per patient, ``cohort.csv``, ``cohort.html``.
    config : workers, scheduler address, strictness.
    runtime : device, threads etc. for every patient (a manifest column overrides it); threads
        default to the cores shared out among the local workers.
    on_row : called as ``on_row(row, finished, total)`` whenever a patient is settled.

    Raises
    ------
    InputError : the manifest is unusable (or, with ``strict``, any row is bad; one line per row),
        or Dask is not installed.
    """
    from .device import cpu_cores

    output_dir = Path(output_dir)
    check_output_dir(output_dir, "cohort folder")
    patients = read_manifest(Path(manifest))
    bad = [p for p in patients if p.error]
    if bad and config.strict:
        raise InputError("\n".join(p.error for p in bad if p.error))
    try:
        import dask
        from distributed import Client, KilledWorker, LocalCluster, as_completed
    except ImportError:
        raise InputError(INSTALL_HINT) from None

    rows: dict[str, dict[str, Any]] = {}
    done = 0

    def settle(row: dict[str, Any]) -> None:
        nonlocal done
        rows[row["id"]] = row
        done += 1
        ordered = [rows.get(p.id) or _row(p, "pending") for p in patients]
        write_table(ordered, output_dir / "cohort.csv")
        if on_row is not None:
            on_row(row, done, len(patients))

    output_dir.mkdir(parents=True, exist_ok=True)
    todo: list[tuple[Patient, str]] = []
    for p in patients:
        if p.error:
            settle(_row(p, "failed", error=p.error, attempts=0))
            continue
        key = p.key()
        earlier = _finished(p, output_dir, key)
        if earlier is not None:
            settle(earlier)
        else:
            todo.append((p, key))

    if todo:
        workers = config.workers or cpu_cores()
        rt = runtime.model_dump(exclude_unset=True)
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            if config.scheduler:
                cluster = None
                client = Client(config.scheduler)
            else:
                rt.setdefault("threads", max(1, cpu_cores() // workers))
                cluster = LocalCluster(
                    n_workers=min(workers, len(todo)),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                client = Client(cluster)
            try:
                futures = {
                    client.submit(
                        run_patient, p, output_dir.resolve(), key, rt, key=f"patient-{p.id}-{key[:12]}", pure=False
                    ): p
                    for p, key in todo
                }
                for future in as_completed(futures):
                    p = futures[future]
                    try:
                        row = future.result()
                    except KilledWorker:
                        attempts = output_dir / p.id / ".attempts"
                        row = _row(
                            p,
                            "failed",
                            error="the worker process died on every attempt (killed, or out of memory)",
                            attempts=int(attempts.read_text() or 0) if attempts.exists() else "",
                        )
                    except Exception as exc:  # a task that could not even start (e.g. not picklable on the cluster)
                        row = _row(p, "failed", error=f"{type(exc).__name__}: {exc}", attempts=1)
                    settle(row)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()

    ordered = [rows[p.id] for p in patients]
    write_table(ordered, output_dir / "cohort.csv")
    write_summary(ordered, output_dir / "cohort.html", f"Cohort {Path(manifest).name}")
    return CohortResult(ordered, output_dir / "cohort.csv", output_dir / "cohort.html")
