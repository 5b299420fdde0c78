"""Target kinds: conversion to [0, 1] and range errors."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from pycemrg_scar_reconstruction.config import TargetConfig as T
from pycemrg_scar_reconstruction.errors import InputError
from pycemrg_scar_reconstruction.targets import to_target


def test_probability_mask_label_intensity():
    v = np.array([0.0, 0.25, 1.0, np.nan]).reshape(1, 1, 4)
    np.testing.assert_array_equal(to_target(v, T())[0], v)
    m = np.array([0.0, 1.0, 1.0, 0.0]).reshape(1, 1, 4)
    np.testing.assert_array_equal(to_target(m, T(kind="mask"))[0], m)
    lab = np.array([0.0, 2.0, 3.0, np.nan]).reshape(1, 1, 4)
    out, mapping = to_target(lab, T(kind="label", scar_label=3))
    assert mapping == {"target": "label", "scar_labels": [3]}
    np.testing.assert_array_equal(out[0, 0, :3], [0, 0, 1])
    assert np.isnan(out[0, 0, 3])
    raw = np.array([100.0, 200.0, 300.0, 1000.0]).reshape(1, 1, 4)
    myo = np.array([True, True, True, False]).reshape(1, 1, 4)
    out, mapping = to_target(raw, T(kind="intensity", normalise="minmax"), mask=myo)
    np.testing.assert_allclose(out[0, 0, :3], [0, 0.5, 1])
    assert mapping["min"] == 100 and mapping["max"] == 300


def test_out_of_range_names_the_file_and_the_fix():
    with pytest.raises(InputError, match=r"lge\.nii.*`target` intensity"):
        to_target(np.array([0.0, 1.5]).reshape(1, 1, 2), T(), name="lge.nii")
    with pytest.raises(InputError, match="0 or 1"):
        to_target(np.array([0.0, 0.5]).reshape(1, 1, 2), T(kind="mask"))
    with pytest.raises(ValidationError, match="scar_label"):
        T(kind="label")
    # values outside the mask do not count
    ok, _ = to_target(np.array([0.5, 7.0]).reshape(1, 1, 2), T(), mask=np.array([True, False]).reshape(1, 1, 2))
    assert ok[0, 0, 0] == 0.5


def test_clinical_normalisations_by_hand():
    raw = np.array([10.0, 20.0, 40.0, 50.0, 100.0, 200.0]).reshape(1, 1, 6)
    myo = np.array([True, True, True, True, False, False]).reshape(1, 1, 6)
    remote = np.array([True, True, False, False, False, False]).reshape(1, 1, 6)
    pool = np.array([False, False, False, False, True, True]).reshape(1, 1, 6)
    # FWHM: half of the myocardial maximum (50) is 25 -> 40 and 50 are scar
    out, m = to_target(raw, T(kind="intensity", normalise="fwhm"), mask=myo)
    np.testing.assert_array_equal(out[0, 0, :4], [0, 0, 1, 1])
    assert m["threshold"] == 25.0
    # n-SD: remote mean 15, sd 5 -> 2 SD threshold 25
    out, m = to_target(raw, T(kind="intensity", normalise="nsd", n_sd=2), mask=myo, remote=remote)
    np.testing.assert_array_equal(out[0, 0, :4], [0, 0, 1, 1])
    assert (m["remote_mean"], m["remote_sd"], m["threshold"]) == (15.0, 5.0, 25.0)
    # IIR: blood pool mean 150; IIR 0.2 .. 1.333; mapped between 0.2 and 0.4
    out, m = to_target(raw, T(kind="intensity", normalise="iir", iir_low=0.2, iir_high=0.4), mask=myo, blood_pool=pool)
    np.testing.assert_allclose(out[0, 0, :4], [0.0, (20 / 150 - 0.2) / 0.2 if 20 / 150 > 0.2 else 0.0, 1 / 3, 2 / 3])
    assert m["blood_pool_mean"] == 150.0


def test_clinical_normalisation_errors():
    raw = np.ones((1, 1, 3))
    myo = np.ones((1, 1, 3), bool)
    with pytest.raises(InputError, match="`remote_mask`"):
        to_target(raw, T(kind="intensity", normalise="nsd"), mask=myo, name="lge.nii")
    with pytest.raises(InputError, match="empty"):
        to_target(raw, T(kind="intensity", normalise="iir"), mask=myo, blood_pool=np.zeros((1, 1, 3), bool))
    with pytest.raises(InputError, match="`mask`"):
        to_target(raw, T(kind="intensity", normalise="fwhm"))
    with pytest.raises(ValidationError, match="iir_low"):
        T(kind="intensity", normalise="iir", iir_low=2, iir_high=1)
