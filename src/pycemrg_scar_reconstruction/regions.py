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
    element_probability: np.ndarray, border_threshold: float, core_threshold: float, tags: tuple[int, int, int]
) -> np.ndarray:
    """(C,) int32 tag per element: tags = (healthy, border zone, core scar)."""
    cls = np.digitize(element_probability, [border_threshold, core_threshold])
    return np.asarray(tags, dtype=np.int32)[cls]
