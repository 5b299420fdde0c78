"""Target kinds: conversion to [0, 1] and range errors."""

from __future__ import annotations

import numpy as np
import pytest

from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.targets import to_target


def test_probability_mask_label_intensity():
    v = np.array([0.0, 0.25, 1.0, np.nan]).reshape(1, 1, 4)
    np.testing.assert_array_equal(to_target(v, "probability"), v)
    m = np.array([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4)
    np.testing.assert_array_equal(to_target(m, "mask"), m)
    lab = np.array([0.0, 2.0, 3.0, np.nan]).reshape(1, 1, 4)
    out = to_target(lab, "label", scar_label=3)
    np.testing.assert_array_equal(out[0, 0, :3], [0, 0, 1])
    assert np.isnan(out[0, 0, 3])
    raw = np.array([100.0, 200.0, 300.0, 1000.0]).reshape(1, 1, 4)
    myo = np.array([True, True, True, False]).reshape(1, 1, 4)
    np.testing.assert_allclose(to_target(raw, "intensity", mask=myo)[0, 0, :3], [0, 0.5, 1])


def test_out_of_range_names_the_file_and_the_fix():
    with pytest.raises(InputError, match=r"lge\.nii.*--target intensity"):
        to_target(np.array([0.0, 1.5]).reshape(1, 1, 2), "probability", name="lge.nii")
    with pytest.raises(InputError, match="0 or 1"):
        to_target(np.array([0.0, 0.5]).reshape(1, 1, 2), "mask")
    with pytest.raises(InputError, match="--scar-label"):
        to_target(np.zeros((1, 1, 2)), "label")
    # values outside the mask do not count
    ok = to_target(np.array([0.5, 7.0]).reshape(1, 1, 2), "probability", mask=np.array([True, False]).reshape(1, 1, 2))
    assert ok[0, 0, 0] == 0.5
