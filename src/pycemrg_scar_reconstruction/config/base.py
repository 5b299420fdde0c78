"""The building blocks of the configuration: value types, the label-list parser, the base model."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
)

#: What the pixel values of a stack mean (see :mod:`.targets`).
TargetKind = Literal["probability", "mask", "label", "intensity"]
#: How raw intensity becomes a scar target (see :mod:`.targets`).
Normalisation = Literal["mixture", "minmax", "fwhm", "nsd", "iir"]
#: Label values or names (from a labels file), e.g. ``(2, 3)`` or ``("scar", "mvo")``.
Labels = tuple[Union[int, str], ...]


def _label_list(value: Any) -> Any:
    """Labels from the command line or the API: ``3``, ``"2,3"``, ``"scar,mvo"`` or a list -> a tuple."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        item = item.strip() if isinstance(item, str) else item
        if isinstance(item, str) and item.lstrip("-").isdigit():
            item = int(item)
        if item == "":
            continue
        out.append(item)
    return tuple(out)


#: "auto", "cpu", "cuda" or "cuda:N" (the N-th GPU).
Device = Annotated[str, StringConstraints(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")]


def _flag(name: str) -> dict:
    """Field metadata: the command-line flag of a field (``name`` with dashes) when it is not the field name."""
    return {"flag": name}


#: Largest seed (torch and numpy take seeds up to 2**64 - 1; one bound for all).
MAX_SEED = 2**63 - 1


class _Config(BaseModel):
    # inf is refused like NaN: no option of this package means anything at infinity
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
