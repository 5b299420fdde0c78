"""Scores: group-constraint errors, and agreement with a ground truth (synthetic cases).

(The module is not called ``validate``: that is the API function that computes these scores.)

The group check is the one the method promises: for every group, |mean prediction over its
nodes - its pixel value|. A result passes when the share of groups within ``tolerance`` reaches
``min_share``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .data import MISREGISTRATION_WARN_MM, TrainingData


def dice(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """Dice overlap of ``pred >= threshold`` and ``truth >= threshold`` (1.0 when both are empty)."""
    p, t = pred >= threshold, truth >= threshold
    denom = p.sum() + t.sum()
    return 1.0 if denom == 0 else float(2 * np.sum(p & t) / denom)


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - truth)))


def group_errors(data: TrainingData, node_values: np.ndarray) -> np.ndarray:
    """(G,) |mean of ``node_values`` over each group - group target|."""
    return np.abs(data.group_mean(np.asarray(node_values, np.float64)) - data.group_target)


def _error_stats(err: np.ndarray, tolerance: float) -> dict[str, float]:
    return {
        "groups": int(err.size),
        "rmse": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
        "max": float(err.max()) if err.size else float("nan"),
        "share_within": float(np.mean(err <= tolerance)) if err.size else float("nan"),
    }


def group_report(data: TrainingData, node_values: np.ndarray, tolerance: float, min_share: float) -> dict[str, Any]:
    """Group-constraint errors overall and per stack and slice, and whether they pass.

    ``tolerance`` and ``min_share``: see :class:`~.config.ValidateConfig` (their defaults live there).

    Returns
    -------
    dict with ``overall`` (groups, rmse, max, share_within), ``per_slice`` (a list with stack and
    slice), ``tolerance``, ``min_share``, ``passed``, and ``scar``: the scar of the slices it was
    given, given back (pixels whose target is >= 0.5, pixels whose group mean is, and their Dice):
    for a label map, how much of the drawn scar the reconstruction keeps.
    """
    means = data.group_mean(np.asarray(node_values, np.float64))
    err = np.abs(means - data.group_target)
    per_slice = []
    keys = data.group_stack * (int(data.group_slice.max()) + 1) + data.group_slice
    uniq, inverse = np.unique(keys, return_inverse=True)
    # per-slice statistics with bincount: no loop over groups
    n = np.bincount(inverse)
    rmse = np.sqrt(np.bincount(inverse, weights=err**2) / n)
    within = np.bincount(inverse, weights=(err <= tolerance).astype(float)) / n
    worst = np.full(len(uniq), -np.inf)
    np.maximum.at(worst, inverse, err)
    stack_of, slice_of = np.divmod(uniq, int(data.group_slice.max()) + 1)
    for u in range(len(uniq)):  # one row per slice (a few dozen), not per group
        per_slice.append(
            {
                "stack": int(stack_of[u]),
                "slice": int(slice_of[u]),
                "groups": int(n[u]),
                "rmse": float(rmse[u]),
                "max": float(worst[u]),
                "share_within": float(within[u]),
            }
        )
    overall = _error_stats(err, tolerance)
    return {
        "overall": overall,
        "per_slice": per_slice,
        "tolerance": tolerance,
        "min_share": min_share,
        "passed": bool(overall["share_within"] >= min_share),
        "scar": {
            "pixels": int(np.sum(data.group_target >= 0.5)),
            "called": int(np.sum(means >= 0.5)),
            "dice": dice(means, data.group_target),
        },
    }


def separation_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for telling ``positive`` (bool) nodes from the rest.

    1: every positive scores above every negative; 0.5: no better than chance; ties count half
    (Mann-Whitney U from average ranks). None when either class is empty.
    """
    from scipy.stats import rankdata

    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(score: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the precision-recall curve of ``score`` for finding the ``positive`` (bool) items.

    Precision at each distinct score (ties taken together), weighted by the recall it adds: 1 when
    every positive scores above every negative, the positives' share when all scores tie. Unlike
    Dice at one threshold, it does not depend on where a method puts its 0.5. None without positives.
    """
    positive = np.asarray(positive, bool)
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    order = np.argsort(-np.asarray(score, np.float64), kind="stable")
    ranked, hits = np.asarray(score)[order], positive[order]
    true_pos = np.cumsum(hits)
    last = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # the last item of each tie
    precision, recall = true_pos[last] / (last + 1), true_pos[last] / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def truth_report(pred: np.ndarray, truth: np.ndarray, uncertainty: np.ndarray | None = None) -> dict[str, Any]:
    """Dice at 0.5 and MAE against a ground truth; with an uncertainty, how it relates to the error.

    ``uncertainty_error_spearman`` ranks the uncertainty against |pred - truth| over all nodes; where
    most nodes are healthy it mostly reflects that both grow with the probability there.
    ``uncertainty_misclassified_auc`` is :func:`separation_auc` of the uncertainty for the nodes on
    the wrong side of 0.5 (None when there are none).
    """
    from scipy.stats import spearmanr

    out: dict[str, Any] = {"dice": dice(pred, truth), "mae": mae(pred, truth)}
    if uncertainty is not None:
        pred = np.asarray(pred, np.float64)
        rho = spearmanr(uncertainty, np.abs(pred - truth)).statistic
        out["uncertainty_error_spearman"] = float(rho)
        out["uncertainty_misclassified_auc"] = separation_auc(uncertainty, (pred >= 0.5) != (truth >= 0.5))
    return out


def format_report(report: dict[str, Any]) -> str:
    """Human-readable lines of a :func:`group_report` (plus truth metrics when present)."""
    o = report["overall"]
    lines = [
        f"groups: {o['groups']}  RMSE {o['rmse']:.4f}  max {o['max']:.4f}  "
        f"within {report['tolerance']:g}: {100 * o['share_within']:.1f}%"
    ]
    if "scar" in report:  # absent from reports written before it was kept
        lines.append(scar_line(report["scar"]))
    for s in report["per_slice"]:
        lines.append(
            f"  stack {s['stack']} slice {s['slice']:3d}: {s['groups']:6d} groups  RMSE {s['rmse']:.4f}  "
            f"max {s['max']:.4f}  within {100 * s['share_within']:.1f}%"
        )
    if "truth" in report:
        t = report["truth"]
        line = f"truth: Dice {t['dice']:.3f}  MAE {t['mae']:.4f}"
        if "uncertainty_error_spearman" in t:
            line += f"  uncertainty-error Spearman {t['uncertainty_error_spearman']:.3f}"
        if t.get("uncertainty_misclassified_auc") is not None:
            line += f"  uncertainty AUC for misclassified nodes {t['uncertainty_misclassified_auc']:.3f}"
        lines.append(line)
        if "volume_ml" in t:
            v = t["volume_ml"]
            lines.append(
                f"truth: core scar {v['core']:.2f} mL against the truth's {v['truth_core']:.2f} mL, expected scar "
                f"{v['expected']:.2f} against {v['truth_expected']:.2f} mL (of {v['myocardium']:.1f} mL of myocardium)"
            )
    lines.append(verdict_line(report))
    if report.get("misregistration_mm", 0.0) > MISREGISTRATION_WARN_MM:  # what the fit's verdict cannot see
        lines.append(
            f"  but the slices' masks sit {report['misregistration_mm']:.1f} mm (RMS) off the mesh: a breath-hold "
            "misregistration left in the memberships, which the fit cannot show (--align-slices corrects it)"
        )
    if "heldout" in report:  # after the verdict, which is the fit's
        lines += format_heldout(report["heldout"])
    return "\n".join(lines)


def scar_line(scar: dict[str, Any]) -> str:
    """How much of the scar of the slices a reconstruction gives back (``report.json``'s ``scar``)."""
    return (
        f"scar on its own slices (>= 0.5): {scar['pixels']} pixels in the targets, {scar['called']} in the "
        f"reconstruction's group means, Dice {scar['dice']:.3f}"
    )


def verdict_line(report: dict[str, Any]) -> str:
    """The group check's verdict: PASS or FAIL, the share of groups within the tolerance."""
    verdict = "PASS" if report["passed"] else "FAIL"
    return (
        f"{verdict}: {100 * report['overall']['share_within']:.1f}% of groups within {report['tolerance']:g} "
        f"(required {100 * report['min_share']:.0f}%)"
    )


def misregistration_note(simulated: dict) -> str:
    """What the simulated accuracy assumed about the slices' registration (its ``misregistration_mm``)."""
    mm = simulated.get("misregistration_mm")
    if mm is None:
        return "slices taken as registered; prepare with --measure-offsets to include a misregistration"
    return f"with the measured misregistration, {mm:.1f} mm RMS"


def calibration_note(cal: dict) -> str:
    """One sentence on a :func:`.calibration.calibration` result: the ECE before and after (overall
    and per band of probability) and how well the uncertainty ranks the errors."""
    checked = "on the other half of the slices" if cal.get("cross_fitted") else "in-sample"
    bands = ", ".join(
        f"{name} {value:.3f}" if value == value else f"{name} too few pixels"  # NaN: too few to judge
        for name, value in cal["ece_by_band"].items()
    )
    return (
        f"ECE {cal['ece_before']:.3f} with the MC spread as a Gaussian sd; recalibrated {cal['ece_after']:.3f} "
        f"({bands}; checked {checked}); it ranks the errors with Spearman {cal['rank_correlation']:.2f}"
    )


def format_heldout(result: dict[str, Any]) -> list[str]:
    """Human-readable lines of a cross-validation's figures (see :func:`.heldout.crossval`)."""

    def line(name: str, r: dict) -> str:
        scar = r.get("scar")  # absent from reports written before it was kept
        # Dice is 1 by convention where neither the labels nor the result have scar: say so
        of = "" if scar is None else f" ({scar} scar)" if scar else " (no scar held out; Dice 1 if none predicted)"
        return (
            f"{name}: {r['pixels']} pixels{of}  Dice {r['dice']:.3f}  MAE {r['mae']:.4f}  RMSE {r['rmse']:.4f}"
            f"{precision(r.get('average_precision'))}"
        )

    def precision(ap: float | None) -> str:  # absent from older reports, None where no scar was held out
        return "" if ap is None else f"  AP {ap:.3f}"

    everything = {
        "pixels": result["pixels"],
        "scar": result.get("scar_pixels"),
        "dice": result["holdout_dice"],
        "mae": result["holdout_mae"],
        "average_precision": result.get("holdout_average_precision"),
    }
    lines = [
        line(
            f"held-out pixels ({result['folds']} folds of {result['holdout']})",
            {**everything, "rmse": result["holdout_rmse"]},
        ),
        line("  interior slices", result["interior"]),
        line("  end slices (extrapolation)", result["end"]),
    ]
    for name, d in result.get("baseline_dice", {}).items():
        mae, ap = result["baseline_mae"][name], result.get("baseline_average_precision", {}).get(name)
        lines.append(
            f"  baseline {name}: {result['baseline_pixels'][name]} pixels  Dice {d:.3f}  MAE {mae:.4f}{precision(ap)}"
        )
    if "simulated" in result:
        sim = result["simulated"]
        lines.append(
            f"  simulated 3D accuracy (the reconstruction as truth, noise sd {sim['noise_sd']:.3f}): "
            f"Dice {sim['dice']:.3f}  MAE {sim['mae']:.4f} (optimistic; {misregistration_note(sim)})"
        )
    lines.append(f"  uncertainty calibration: {calibration_note(result['calibration'])}")
    return lines


def registration_line(reg: dict) -> str:
    """One line for a study-to-mesh registration (``report.json``'s ``registration``)."""
    verb = "applied" if reg.get("applied") else "measured, not applied"
    t = reg.get("translation_mm", [0.0, 0.0, 0.0])
    before, after = reg.get("soft_dice_before", float("nan")), reg.get("soft_dice_after", float("nan"))
    line = (
        f"study registration ({verb}): {reg.get('moved_mm', 0.0):.1f} mm RMS at the masks, translation "
        f"[{t[0]:+.1f}, {t[1]:+.1f}, {t[2]:+.1f}] mm, rotation {reg.get('rotation_deg', 0.0):.1f} deg; "
        f"masks' Dice with the mesh {before:.3f} -> {after:.3f}"
    )
    if "turn_dice_drop" in reg:  # how firmly the masks fix the turn about the slice normal
        weak = " (weakly fixed: the turn about the long axis is a guess)" if reg.get("turn_weakly_fixed") else ""
        line += f", {reg['turn_dice_drop']:.4f} lower turned {reg.get('turn_deg', 5.0):g} deg about the slice normal{weak}"
    shares = [
        f"{kind} in {where} {100 * reg[f'{kind}_in_{where}_before']:.0f}% -> {100 * reg[f'{kind}_in_{where}_after']:.0f}%"
        for kind in ("myocardium", "scar")
        for where in ("mesh", "region")
        if f"{kind}_in_{where}_before" in reg and reg[f"{kind}_in_{where}_before"] == reg[f"{kind}_in_{where}_before"]
    ]
    return line + ("; labelled pixels: " + ", ".join(shares) if shares else "")


def burden_line(burden: dict[str, float], region: bool = False) -> str:
    """One line of a :func:`~.regions.scar_burden`: core and border zone, mL and share of the
    myocardium (not the expected volume: every method's is biased high, docs/benchmarks.md)."""
    where = "the region's" if region else "the"
    return (
        f"scar burden by element volume: core {burden['core_ml']:.1f} mL ({100 * burden['core_share']:.1f}%), "
        f"border zone {burden['border_zone_ml']:.1f} mL ({100 * burden['border_zone_share']:.1f}%) of {where} "
        f"{burden['myocardium_ml']:.1f} mL of myocardium"
    )
