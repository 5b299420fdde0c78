"""Self-contained HTML pages (pictures embedded, no external file or URL), readable offline.

:func:`report_page` turns a patient's ``report.json`` figures and its pictures into one page;
the cohort page is built from the same pieces (:func:`embed_png`, :func:`table`, :func:`page`).
"""

from __future__ import annotations

import base64
import html
import platform
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .data_summary import format_mapping
from .metrics import calibration_note, misregistration_note, registration_line
from .targets import INTENSITY_CAVEAT

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.4em; text-align: right; }
th:first-child, td:first-child, .text { text-align: left; }
tr.failed td, td.fail { background: #fde2e1; } td.pass { background: #e3f6e3; }
tr.skipped td { color: #666; }
p.caveat { background: #fff4d6; padding: 0.4em 0.6em; }
img { max-width: 100%; border: 1px solid #eee; }
div.wide { overflow-x: auto; }
code { background: #f5f5f5; padding: 0.1em 0.3em; word-break: break-all; }
"""

#: Packages whose versions a report names.
_PACKAGES = ("pycemrg-scar-reconstruction", "torch", "numpy", "scipy", "pyvista", "nibabel", "pydantic")


def embed_png(data: bytes | Path, alt: str) -> str:
    """An ``<img>`` with the PNG inside it (base64), from bytes or a file."""
    raw = Path(data).read_bytes() if isinstance(data, Path) else data
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(raw).decode()}">'


def _cell(value: Any) -> str:
    if value is None:  # a figure that does not apply (e.g. AP where no scar was held out)
        return ""
    if isinstance(value, float):
        # four decimals up to 1 (a fit exact to the sigmoid's floor, 3e-7, reads 0.0000, not 3.062e-07)
        return f"{value:.4f}" if abs(value) <= 1 else f"{value:.4g}"
    return html.escape(str(value))


def _align(value: Any) -> str:
    """Text cells (not numbers) are left-aligned."""
    if isinstance(value, (int, float)):
        return ""
    try:
        float(str(value).removesuffix("%"))  # a share written as a percentage is a number too
        return ""
    except ValueError:
        return ' class="text"'


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], row_class: str | None = None) -> str:
    """An HTML table of ``rows`` (dicts) with ``columns``; ``row_class`` names a key whose value is
    each row's CSS class (e.g. the status of a cohort row)."""
    # a column name may break after an underscore, so a wide table (the cohort's) fits the page;
    # it is aligned as its column's first value is
    first = {c: next((r[c] for r in rows if r.get(c) not in ("", None)), "") for c in columns}
    head = "".join(f"<th{_align(first[c])}>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in columns)
    body = "".join(
        (f'<tr class="{html.escape(str(r.get(row_class, "")))}">' if row_class else "<tr>")
        + "".join(f"<td{_align(r.get(c, ''))}>{_cell(r.get(c, ''))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def page(title: str, body: str) -> str:
    """A whole page: ``title`` and ``body`` (HTML) with the shared style."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def versions() -> dict[str, str]:
    """Python and the installed versions of the packages a result depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def report_page(report: Mapping[str, Any], pictures: Mapping[str, Path], title: str) -> str:
    """One patient's report as a page: the group check, truth figures, training, support, slice
    offsets and stacks as tables; the pictures; the command and versions that made it.

    ``report`` is what ``report.json`` holds; ``pictures`` maps a heading to a PNG file.
    """
    o = report["overall"]
    verdict = "pass" if report["passed"] else "fail"
    parts = [
        "<h2>Fit to the pixels (group constraints)</h2>",
        table(
            [
                {"figure": "groups", "value": o["groups"]},
                {"figure": "RMSE of group mean vs pixel", "value": o["rmse"]},
                {"figure": "largest group error", "value": o["max"]},
                {"figure": f"share within {report['tolerance']:g}", "value": f"{100 * o['share_within']:.1f}%"},
                {"figure": f"required share ({100 * report['min_share']:.0f}%)", "value": verdict.upper()},
            ]
            + (
                [
                    {
                        "figure": "scar of the slices given back (Dice, group means and targets >= 0.5)",
                        "value": f"{report['scar']['dice']:.3f} ({report['scar']['pixels']} scar pixels given, "
                        f"{report['scar']['called']} in the result)",
                    }
                ]
                if "scar" in report
                else []
            ),
            ("figure", "value"),
        ).replace(f'<td class="text">{verdict.upper()}</td>', f'<td class="text {verdict}">{verdict.upper()}</td>'),
        "<p>These figures say how well the reconstruction reproduces the pixels it was trained on, "
        "not how right it is between the slices.</p>",
    ]
    if "heldout" in report:
        h = report["heldout"]
        rows = [
            {
                "pixels": "all held-out",
                "count": h["pixels"],
                "Dice": h["holdout_dice"],
                "AP": h.get("holdout_average_precision"),
                "MAE": h["holdout_mae"],
                "RMSE": h["holdout_rmse"],
            },
            *(
                {
                    "pixels": label,
                    "count": h[part]["pixels"],
                    "Dice": h[part]["dice"],
                    "AP": h[part].get("average_precision"),
                    "MAE": h[part]["mae"],
                    "RMSE": h[part]["rmse"],
                }
                for part, label in (("interior", "interior slices"), ("end", "end slices (extrapolation)"))
            ),
        ]
        for name, d in h.get("baseline_dice", {}).items():
            count = h.get("baseline_pixels", {}).get(name, "")
            ap = h.get("baseline_average_precision", {}).get(name)
            rows.append(
                {
                    "pixels": f"baseline {name}",
                    "count": count,
                    "Dice": d,
                    "AP": ap,
                    "MAE": h["baseline_mae"][name],
                    "RMSE": "",
                }
            )
        cal = h.get("calibration", {})
        parts += [
            f"<h2>Held-out accuracy ({h['folds']} folds of whole {html.escape(str(h['holdout']))})</h2>",
            table(rows, ("pixels", "count", "Dice", "AP", "MAE", "RMSE")),
            "<p>Each fold was trained without its slices and predicted them: this is how right the scar is "
            "between the slices, unlike the fit above. AP (average precision) scores how well the values "
            "rank the held-out scar pixels first, whatever the threshold; Dice is at 0.5.</p>",
        ]
        if cal:
            parts.append(
                f"<p>Uncertainty calibration on the held-out pixels: {html.escape(calibration_note(cal))}. "
                "<code>run --calibrate</code> stores the recalibration in the model, so the written "
                "uncertainty is the half-width of the central 68% interval of a pixel's value.</p>"
            )
        if "simulated" in h:
            sim = h["simulated"]
            parts.append(
                f"<p>Simulated 3D accuracy: Dice {sim['dice']:.3f}, MAE {sim['mae']:.4f}. A second training on the "
                "pixels this reconstruction would give (with the fit's residual noise), scored against it; it is "
                f"optimistic ({misregistration_note(sim)}).</p>"
            )
    if "truth" in report:
        t = report["truth"]
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        parts += ["<h2>Against the ground truth</h2>", table([scalars], list(scalars))]
        if "volume_ml" in t:
            v = t["volume_ml"]
            rows = [
                {"scar volume, mL": "core (elements >= 0.5)", "reconstruction": v["core"], "truth": v["truth_core"]},
                {"scar volume, mL": "expected", "reconstruction": v["expected"], "truth": v["truth_expected"]},
            ]
            parts.append(table(rows, ("scar volume, mL", "reconstruction", "truth")))
    if "training" in report:
        tr = report["training"]
        parts += ["<h2>Training</h2>", table([tr], list(tr))]
    if "support" in report:
        sp = report["support"]
        row = {
            "beyond the images' coverage by (mm)": sp["support_mm"],
            "prior given there": sp["prior"],
            "share of the region's nodes given it": f"{100 * sp['prior_share']:.1f}%",
            "share of nodes in the region": f"{100 * sp['region_share']:.1f}%",
        }
        parts += ["<h2>Support (nodes far from every slice get the prior)</h2>", table([row], list(row))]
    if "burden" in report:
        b = report["burden"]
        rows = [
            {"elements": name, "mL": b[f"{key}_ml"], "share of the myocardium": f"{100 * b[f'{key}_share']:.1f}%"}
            for name, key in (("core scar", "core"), ("border zone", "border_zone"))
        ]
        rows.append({"elements": "myocardium", "mL": b["myocardium_ml"], "share of the myocardium": "100.0%"})
        parts += [
            "<h2>Scar burden (by element volume)</h2>",
            table(rows, ("elements", "mL", "share of the myocardium")),
            "<p>Core scar and border zone are the elements of <code>scar_region</code> (by their nodes' mean "
            "probability), over the region's elements when a region is given.</p>",
        ]
    per_slice = report.get("per_slice", [])
    if per_slice:
        parts += ["<h2>Per slice</h2>", table(per_slice, list(per_slice[0]))]
    if "registration" in report:
        parts += [
            "<h2>Study registration (the LGE study onto the mesh)</h2>",
            f"<p>{html.escape(registration_line(report['registration']))}</p>",
        ]
    if "misregistration_mm" in report:
        parts.append(
            f"<p>Breath-hold misregistration measured from the masks and left in the memberships: "
            f"{report['misregistration_mm']:.1f} mm RMS in plane (<code>--align-slices</code> corrects it).</p>"
        )
    measured = report.get("measured_offsets_mm", {})
    for name, offsets in report.get("slice_offsets_mm", {}).items():
        if name not in measured and not np.any(offsets):
            continue  # nothing measured and nothing applied: no table of zeros
        rows = [{"slice": k, "di mm": d[0], "dj mm": d[1], "dn mm": d[2]} for k, d in enumerate(offsets)]
        columns: tuple[str, ...] = ("slice", "di mm", "dj mm", "dn mm")
        if name in measured:  # measured from the masks, applied or not
            for row, m in zip(rows, measured[name]):
                row.update({"measured di": m[0], "measured dj": m[1], "measured dn": m[2]})
            columns += ("measured di", "measured dj", "measured dn")
        parts += [f"<h2>Slice offsets of {html.escape(name)} (applied)</h2>", table(rows, columns)]
    stacks = report.get("stacks", [])
    if stacks:
        rows = [
            {"stack": s["name"], "thickness mm": s["thickness_mm"], "targets": format_mapping(s["targets"])} for s in stacks
        ]
        parts += ["<h2>Stacks</h2>", table(rows, ("stack", "thickness mm", "targets"))]
        if any(s["targets"].get("target") == "intensity" for s in stacks):
            caveat = html.escape(INTENSITY_CAVEAT).replace("`target` label", "<code>--target label</code>")
            parts.append(f'<p class="caveat">Raw intensities: {caveat}.</p>')
    for heading, path in pictures.items():
        if Path(path).exists():
            parts += [f"<h2>{html.escape(heading)}</h2>", embed_png(Path(path), heading)]
    parts += ["<h2>Made by</h2>"]
    if report.get("command"):
        parts += [f"<p><code>{html.escape(str(report['command']))}</code></p>"]
    parts += [
        table([{"package": k, "version": v} for k, v in report.get("versions", versions()).items()], ("package", "version"))
    ]
    return page(title, "\n".join(parts))
