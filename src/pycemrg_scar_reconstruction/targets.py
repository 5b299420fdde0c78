"""What a pixel value means, and its conversion to a scar target in [0, 1].

Kinds
-----
probability : values already in [0, 1] (a scar probability map); anything outside is an error.
mask        : a binary scar mask, values exactly 0 or 1.
label       : an integer label map; target = 1 where the value is one of ``scar_label`` (values, or
              names from a labels file), else 0.
intensity   : raw LGE intensity, normalised by one of
              ``mixture`` (default) the scar fraction of the myocardium in each prism, by inverting
                          the partial-volume mix of myocardium, scar, blood pool and outside
                          (:mod:`.tissue`; tissue fractions from the mesh, levels from the image);
              ``minmax``  min-max over the myocardium mask (or the whole image without one);
              ``fwhm``    full width at half maximum: scar (1) where the intensity reaches half the
                          maximum inside the myocardium mask, else 0;
              ``nsd``     scar (1) where the intensity reaches mean + N standard deviations of the
                          remote (healthy) myocardium, else 0;
              ``iir``     image intensity ratio to the blood-pool mean, mapped linearly to [0, 1]
                          between two thresholds (defaults 1.2 and 1.32).

The IIR defaults 1.2 / 1.32 are the left-atrial fibrosis thresholds of the established projection
tools (Benito et al. 2017); ventricular scar studies mostly use FWHM or n-SD (2 to 6 SD, often 5 SD
for dense scar and 2-3 SD for the grey zone). FWHM and n-SD make every pixel 0 or 1, which throws
away the partial volume the reconstruction lives on, and read border pixels that are part blood
pool as scar: ``mixture`` keeps both (docs/benchmarks.md has the comparison). Every conversion returns the mapping it used
(thresholds, reference means) so the result can be reproduced and questioned.

NaN stays NaN (an undefined pixel forms no group).
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from .config import Labels, TargetConfig, TargetKind
from .errors import InputError
from .stack import RawStack, SliceStack, StackGeometry
from .tissue import PURE, estimate_levels, scar_fraction

#: What raw intensities are worth on real hearts (measured outside the project; README,
#: docs/tutorials/real-case.md): said by ``prepare`` and the report whenever targets are intensities.
INTENSITY_CAVEAT = (
    "scar read from raw intensities agreed with experts' scar labels at only Dice 0.10-0.52 on seven "
    "human PSIR stacks; give a label map (`target` label) when there is one"
)

TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)


def _reference(values: np.ndarray, region: np.ndarray | None, what: str, option: str, name: str) -> np.ndarray:
    """Finite intensities inside a reference mask (remote myocardium, blood pool)."""
    if region is None:
        raise InputError(f"{name}: this normalisation needs {option} (the {what} mask on the image grid)")
    ref = values[region & np.isfinite(values)]
    if ref.size == 0:
        raise InputError(f"{name}: the {what} mask ({option}) is empty on this image; give a mask with voxels")
    return ref


def to_target(
    values: np.ndarray,
    config: TargetConfig,
    mask: np.ndarray | None = None,
    remote: np.ndarray | None = None,
    blood_pool: np.ndarray | None = None,
    name: str = "<image>",
    tissue: tuple[np.ndarray, np.ndarray] | None = None,
    axis: int = 2,
    label_names: dict[str, int] | None = None,
) -> tuple[np.ndarray, dict]:
    """Convert raw pixel values to scar targets in [0, 1].

    Parameters
    ----------
    values : (I, J, K) raw pixel values.
    config : what the values are and how to normalise them.
    mask : (I, J, K) bool or None; range checks and intensity normalisation look only inside it.
    remote, blood_pool : (I, J, K) bool reference masks for ``nsd`` and ``iir`` (``blood_pool`` also
        sets the blood level of ``mixture``).
    name : the image's file name, for error messages.
    tissue : (wall, blood) fractions of every prism, from the mesh (:func:`.tissue.tissue_fractions`);
        needed by ``mixture``.
    axis : the through-plane voxel axis.
    label_names : label name -> value, for label names in ``scar_label``.

    Returns
    -------
    targets : (I, J, K) float64 in [0, 1], NaN where undefined.
    mapping : what was done (kind, normalisation, thresholds, reference statistics).

    Raises
    ------
    InputError
        When values lie outside the range of their kind, or a reference mask is missing or empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if config.kind == "label":
        scar = resolve_labels(config.scar_label or (), label_names, name, "scar_label")
        return _convert(values, "label", mask, scar, name), {"target": "label", "scar_labels": list(scar)}
    if config.kind != "intensity":
        return _convert(values, config.kind, mask, None, name), {"target": config.kind}
    if config.normalise == "mixture":
        return _mixture(values, mask, name, config, blood_pool, tissue, axis)
    return _normalise(values, mask, name, config, remote, blood_pool)


def resolve_labels(labels: Labels, names: dict[str, int] | None, name: str, field: str) -> tuple[int, ...]:
    """Label values of ``labels`` (values, or names looked up in ``names``)."""
    out = []
    for label in labels:
        if isinstance(label, int):
            out.append(label)
        elif names is None:
            raise InputError(f"{name}: `{field}` {label!r} is a name; give `labels` (a labels.yaml) or label values")
        elif label not in names:
            raise InputError(f"{name}: `{field}` {label!r} is not in the labels file ({', '.join(sorted(names))})")
        else:
            out.append(int(names[label]))
    return tuple(out)


def _mixture(
    values: np.ndarray,
    mask: np.ndarray | None,
    name: str,
    config: TargetConfig,
    blood_pool: np.ndarray | None,
    tissue: tuple[np.ndarray, np.ndarray] | None,
    axis: int,
) -> tuple[np.ndarray, dict]:
    """Raw intensity -> the scar fraction of each prism's myocardium (:mod:`.tissue`)."""
    if tissue is None:
        raise InputError(
            f"{name}: `normalise` mixture needs the mesh's tissue fractions (prepare computes them); "
            "use minmax, fwhm, nsd or iir without a mesh"
        )
    wall, blood = tissue
    if blood_pool is not None and not np.any(blood_pool & np.isfinite(values)):
        raise InputError(f"{name}: the blood pool mask (`blood_pool_mask`) is empty on this image; give a mask with voxels")
    if blood_pool is None and not np.any(blood >= PURE):
        raise InputError(
            f"{name}: `normalise` mixture: no pixel's prism is blood pool by the mesh (a long-axis view given without "
            "the short-axis stack encloses none); give the short-axis stack too, or `blood_pool_mask`, or use fwhm / nsd"
        )
    try:
        levels, info = estimate_levels(values, wall, blood, axis, mask, blood_pool)
    except ValueError as exc:
        raise InputError(
            f"{name}: `normalise` mixture: {exc}; check that the mesh overlaps the image, or use fwhm / nsd"
        ) from exc
    if levels.scar <= levels.healthy:
        raise InputError(
            f"{name}: `normalise` mixture found no enhanced myocardium (scar level {levels.scar:.4g} <= "
            f"healthy {levels.healthy:.4g}); use fwhm or nsd"
        )
    out = scar_fraction(values, wall, blood, levels, config.min_wall_fraction)
    mapping = {
        "target": "intensity",
        "normalise": "mixture",
        **{f"{k}_level": v for k, v in levels.as_dict().items()},
        "min_wall_fraction": config.min_wall_fraction,
        **info,
    }
    return out, mapping


def _normalise(
    values: np.ndarray,
    mask: np.ndarray | None,
    name: str,
    config: TargetConfig,
    remote: np.ndarray | None,
    blood_pool: np.ndarray | None,
) -> tuple[np.ndarray, dict]:
    """Raw intensity -> targets, by ``config.normalise``; returns the targets and the mapping used."""
    method, n_sd, iir_low, iir_high = config.normalise, config.n_sd, config.iir_low, config.iir_high
    region = np.isfinite(values) if mask is None else (np.isfinite(values) & mask)
    inside = values[region]
    if inside.size == 0:
        raise InputError(f"{name}: no finite intensities inside the mask; check `mask`")
    nan = ~np.isfinite(values)
    if method == "minmax":
        lo, hi = float(inside.min()), float(inside.max())
        if hi <= lo:
            raise InputError(f"{name}: intensity is constant ({lo:g}) inside the mask; nothing to normalise")
        return (values - lo) / (hi - lo), {"target": "intensity", "normalise": "minmax", "min": lo, "max": hi}
    if method in ("fwhm", "nsd") and mask is None:
        raise InputError(f"{name}: `normalise` {method} needs `mask` (the myocardium) to find scar in")
    if method == "fwhm":
        threshold = 0.5 * float(inside.max())
        mapping = {"target": "intensity", "normalise": "fwhm", "max_in_mask": float(inside.max()), "threshold": threshold}
    elif method == "nsd":
        ref = _reference(values, remote, "remote myocardium", "`remote_mask`", name)
        mean, sd = float(ref.mean()), float(ref.std())
        threshold = mean + n_sd * sd
        mapping = {
            "target": "intensity",
            "normalise": "nsd",
            "remote_mean": mean,
            "remote_sd": sd,
            "n_sd": n_sd,
            "threshold": threshold,
        }
    elif method == "iir":
        ref = _reference(values, blood_pool, "blood pool", "`blood_pool_mask`", name)
        mean = float(ref.mean())
        if mean <= 0:
            raise InputError(f"{name}: blood-pool mean intensity is {mean:g}; IIR needs positive intensities")
        out = np.clip((values / mean - iir_low) / (iir_high - iir_low), 0.0, 1.0)
        out[nan] = np.nan
        return out, {
            "target": "intensity",
            "normalise": "iir",
            "blood_pool_mean": mean,
            "iir_low": iir_low,
            "iir_high": iir_high,
        }
    else:
        raise InputError(f"unknown `normalise` {method!r}; choose mixture, minmax, fwhm, nsd or iir")
    out = (values >= threshold).astype(np.float64)
    out[nan] = np.nan
    return out, mapping


def _convert(
    values: np.ndarray, kind: str, mask: np.ndarray | None, scar_label: tuple[int, ...] | None, name: str
) -> np.ndarray:
    """probability / mask / label values -> targets (see :func:`to_target`)."""
    region = np.isfinite(values) if mask is None else (np.isfinite(values) & mask)
    inside = values[region]
    if kind == "probability":
        if inside.size and (inside.min() < 0.0 or inside.max() > 1.0):
            raise InputError(
                f"{name}: `target` probability needs values in [0, 1], found [{inside.min():g}, "
                f"{inside.max():g}]; use `target` intensity (raw LGE), mask or label instead"
            )
        return values.copy()
    if kind == "mask":
        bad = ~np.isin(inside, (0.0, 1.0))
        if bad.any():
            raise InputError(
                f"{name}: `target` mask needs values 0 or 1, found e.g. {inside[bad][0]:g}; "
                "use `target` label with `scar_label` N for a label map"
            )
        return values.copy()
    if kind == "label":
        if scar_label is None:
            raise InputError(f"{name}: `target` label needs `scar_label` N (the scar's label value)")
        if inside.size and not np.all(inside == np.round(inside)):
            raise InputError(f"{name}: `target` label needs integer labels; use `target` probability or intensity")
        out = np.isin(values, scar_label).astype(np.float64)
        out[~np.isfinite(values)] = np.nan
        return out
    raise InputError(f"unknown `target` {kind!r}; choose one of {', '.join(TARGET_KINDS)}")


def stack_targets(
    raw: RawStack, config: TargetConfig, geometry: StackGeometry, tissue: tuple[np.ndarray, np.ndarray] | None = None
) -> SliceStack:
    """The :class:`.stack.SliceStack` of a stack as read: its values converted by :func:`to_target`.

    ``geometry`` is the stack's final geometry (breath-hold offsets applied); ``tissue`` the
    (wall, blood) fractions of its prisms, for ``mixture``.
    """
    targets, mapping = to_target(
        raw.values,
        config,
        raw.mask,
        remote=raw.remote,
        blood_pool=raw.blood_pool,
        name=raw.name,
        tissue=tissue,
        axis=geometry.axis,
        label_names=raw.label_names,
    )
    if raw.positions:
        mapping = {**mapping, "slice_positions": raw.positions}
    return SliceStack(values=targets, geometry=geometry, mask=raw.mask, name=raw.name, mapping=mapping)
