"""What a pixel value means, and its conversion to a scar target in [0, 1].

Kinds
-----
probability : values already in [0, 1] (a scar probability map); anything outside is an error.
mask        : a binary scar mask, values exactly 0 or 1.
label       : an integer label map; target = 1 where the value equals ``scar_label``, else 0.
intensity   : raw LGE intensity, min-max normalised over the myocardium mask (or the whole image
              when there is no mask). Clinical normalisations (FWHM, n-SD, IIR) are a later issue.

NaN stays NaN (an undefined pixel forms no group).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .errors import InputError

TargetKind = Literal["probability", "mask", "label", "intensity"]
TARGET_KINDS: tuple[str, ...] = ("probability", "mask", "label", "intensity")


def to_target(
    values: np.ndarray,
    kind: str,
    mask: np.ndarray | None = None,
    scar_label: int | None = None,
    name: str = "<image>",
) -> np.ndarray:
    """Convert raw pixel values to scar targets in [0, 1].

    Parameters
    ----------
    values : (I, J, K) raw pixel values.
    kind : one of :data:`TARGET_KINDS`.
    mask : (I, J, K) bool or None; range checks and intensity normalisation look only inside it.
    scar_label : the scar label for ``kind="label"``.
    name : the image's file name, for error messages.

    Returns
    -------
    (I, J, K) float64 targets in [0, 1], NaN where undefined.

    Raises
    ------
    InputError
        When values lie outside the range of their kind.
    """
    values = np.asarray(values, dtype=np.float64)
    region = np.isfinite(values) if mask is None else (np.isfinite(values) & mask)
    inside = values[region]
    if kind == "probability":
        if inside.size and (inside.min() < 0.0 or inside.max() > 1.0):
            raise InputError(
                f"{name}: --target probability needs values in [0, 1], found [{inside.min():g}, "
                f"{inside.max():g}]; use --target intensity (raw LGE), mask or label instead"
            )
        return values.copy()
    if kind == "mask":
        bad = ~np.isin(inside, (0.0, 1.0))
        if bad.any():
            raise InputError(
                f"{name}: --target mask needs values 0 or 1, found e.g. {inside[bad][0]:g}; "
                "use --target label --scar-label N for a label map"
            )
        return values.copy()
    if kind == "label":
        if scar_label is None:
            raise InputError(f"{name}: --target label needs --scar-label N (the scar's label value)")
        if inside.size and not np.all(inside == np.round(inside)):
            raise InputError(f"{name}: --target label needs integer labels; use --target probability or intensity")
        out = (values == scar_label).astype(np.float64)
        out[~np.isfinite(values)] = np.nan
        return out
    if kind == "intensity":
        if inside.size == 0:
            raise InputError(f"{name}: no finite intensities inside the mask; check --mask")
        lo, hi = float(inside.min()), float(inside.max())
        if hi <= lo:
            raise InputError(f"{name}: intensity is constant ({lo:g}) inside the mask; nothing to normalise")
        return (values - lo) / (hi - lo)
    raise InputError(f"unknown --target {kind!r}; choose one of {', '.join(TARGET_KINDS)}")
