"""Scar regions per element: healthy, border zone and core scar from the nodes' probability.

An element's class comes from the mean ``scar_probability`` of its nodes:
``mean < border_threshold`` -> healthy, ``border_threshold <= mean < core_threshold`` -> border
zone, ``mean >= core_threshold`` -> core scar. Defaults: 0.25 and 0.5 (core is what Dice at 0.5
counts as scar; border zone the partial-volume band below it). Tags default to 1, 2, 3.
"""

from __future__ import annotations

import numpy as np


def cell_mean(offsets: np.ndarray, connectivity: np.ndarray, node_values: np.ndarray) -> np.ndarray:
    """(C,) mean of ``node_values`` over each cell's nodes.

    Parameters
    ----------
    offsets : (C + 1,) start of each cell in ``connectivity`` (VTK offsets).
    connectivity : (sum of cell sizes,) node indices.
    node_values : (N,) values per node.
    """
    sizes = np.diff(offsets)
    sums = np.add.reduceat(np.asarray(node_values, np.float64)[connectivity], offsets[:-1]) if len(sizes) else np.zeros(0)
    return sums / np.maximum(sizes, 1)


def classify(
    element_probability: np.ndarray, border_threshold: float, core_threshold: float, tags: tuple[int, int, int] = (0, 1, 2)
) -> np.ndarray:
    """(C,) int32 tag per element: tags = (healthy, border zone, core scar); by default the class 0, 1, 2."""
    cls = np.digitize(element_probability, [border_threshold, core_threshold])
    return np.asarray(tags, dtype=np.int32)[cls]


def element_tags(
    input_tags: np.ndarray, element_class: np.ndarray, mode: str, offsets: tuple[int, int], tags: tuple[int, int, int]
) -> np.ndarray:
    """(C,) int32 element tags of an openCARP output.

    Parameters
    ----------
    input_tags : (C,) the input mesh's tags (0 where it has none).
    element_class : (C,) 0 healthy, 1 border zone, 2 core scar (:func:`classify`).
    mode : ``offset`` (input tag, + offsets[0] for border zone, + offsets[1] for core), ``keep``
        (the input tags) or ``replace`` (``tags`` by class).
    """
    input_tags = np.asarray(input_tags, np.int64)
    if mode == "keep":
        return input_tags.astype(np.int32)
    if mode == "replace":
        return np.asarray(tags, np.int32)[element_class]
    return (input_tags + np.array([0, offsets[0], offsets[1]], np.int64)[element_class]).astype(np.int32)


def scar_burden(
    volume_ml: np.ndarray,
    element_probability: np.ndarray,
    border_threshold: float,
    core_threshold: float,
    in_region: np.ndarray | None = None,
) -> dict[str, float] | None:
    """The scar burden of the (region's) myocardium, by element volume.

    Parameters
    ----------
    volume_ml : (C,) each element's volume, mL (0 for elements without one).
    element_probability : (C,) each element's mean node probability (:func:`cell_mean`).
    border_threshold, core_threshold : the classes of :func:`classify`.
    in_region : (C,) bool, the elements that count (None: every one).

    Returns
    -------
    ``myocardium_ml`` (the elements' total), ``border_zone_ml`` and ``core_ml`` (the elements of each
    class), ``expected_ml`` (the sum of volume x mean probability), each of the last three also as a
    share of the myocardium (``*_share``); None when the elements have no volume.
    """
    volume = np.asarray(volume_ml, np.float64)
    if in_region is not None:
        volume = np.where(in_region, volume, 0.0)
    total = float(volume.sum())
    if total <= 0:
        return None
    cls = classify(element_probability, border_threshold, core_threshold)
    parts = {
        "border_zone": float(volume[cls == 1].sum()),
        "core": float(volume[cls == 2].sum()),
        "expected": float(volume @ np.asarray(element_probability, np.float64)),
    }
    return {
        "myocardium_ml": total,
        **{f"{k}_ml": v for k, v in parts.items()},
        **{f"{k}_share": v / total for k, v in parts.items()},
    }
