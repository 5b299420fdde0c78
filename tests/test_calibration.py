"""The calibration of the uncertainty on held-out pixels: hand-made errors with a known law."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pycemrg_scar_reconstruction.calibration import ONE_SIGMA, band_of, calibrated_uncertainty, calibration


def test_bands_of_probability():
    assert band_of(np.array([0.0, 0.1, 0.11, 0.5, 0.9, 0.91, 1.0])).tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_map_of_uniform_errors_is_the_level():
    """Hand-checkable: sigma 1 everywhere (floor 1, no spread, all background) and |error| spread
    evenly over [0, 1], so the interval holding a share p of the errors is p * sigma."""
    n = 1001
    error = np.linspace(0.0, 1.0, n)
    cal = calibration(error, np.zeros(n), 1.0, np.zeros(n), np.arange(n) % 2 == 1)
    assert cal["factors"] == pytest.approx([ONE_SIGMA] * 3, abs=1e-9)  # empty bands take the pooled map
    assert cal["floor"] == pytest.approx(1.0) and cal["band_pixels"] == [n, 0, 0]
    assert cal["cross_fitted"] and cal["ece_after"] < 0.002  # the other half has the same errors
    assert np.isnan(cal["ece_by_band"]["border"]) and np.isnan(cal["rank_correlation"])  # nothing to judge
    alone = calibration(error, np.zeros(n), 1.0, np.zeros(n), np.zeros(n, bool))  # no other half
    assert not alone["cross_fitted"] and alone["ece_after"] < 0.002 and alone["factors"] == cal["factors"]


def test_the_floor_mends_a_too_narrow_spread():
    """Errors with sd sqrt(floor^2 + spread^2): the spread alone is far too narrow (ECE before
    large), the floor and the map fix it (ECE after small, one-sigma factor about 1)."""
    rng = np.random.default_rng(0)
    n = 20000
    spread = rng.uniform(0.0, 0.1, n)
    error = rng.normal(0, np.sqrt(0.05**2 + spread**2))
    cal = calibration(error, spread, 0.05, np.zeros(n), rng.random(n) < 0.5)
    assert cal["ece_before"] > 0.1 and cal["ece_after"] < 0.02
    assert cal["factors"][0] == pytest.approx(1.0, rel=0.05) and cal["rank_correlation"] > 0.2


def test_the_border_term_is_fitted_and_ranks_the_errors():
    """Errors with sd sqrt(floor^2 + c^2 p (1 - p)): the fitted coefficient is c, every band's
    factor about 1, and the uncertainty ranks the errors."""
    rng = np.random.default_rng(2)
    n = 30000
    p = rng.uniform(0, 1, n) ** 3  # mostly background, some border, a little scar
    error = rng.normal(0, np.sqrt(0.02**2 + 0.3**2 * p * (1 - p)))
    cal = calibration(error, np.zeros(n), 0.02, p, rng.random(n) < 0.5)
    assert cal["border"] == pytest.approx(0.3, rel=0.05)
    assert cal["factors"] == pytest.approx([1.0] * 3, rel=0.1) and cal["ece_after"] < 0.02
    assert max(cal["ece_by_band"].values()) < 0.03 and cal["rank_correlation"] > 0.5


def test_each_band_gets_its_own_intervals():
    """Background and scar pixels with the same border weight (p 0.05 and 0.95) but errors of sd
    0.02 and 0.1: no border term can tell them apart, the per-band maps do."""
    rng = np.random.default_rng(3)
    n = 20000
    scar = rng.random(n) < 0.3
    p = np.where(scar, 0.95, 0.05)
    error = rng.normal(0, np.where(scar, 0.1, 0.02))
    cal = calibration(error, np.zeros(n), 0.02, p, rng.random(n) < 0.5)
    assert cal["ece_by_band"]["background"] < 0.02 and cal["ece_by_band"]["scar"] < 0.02
    assert cal["factors"][2] / cal["factors"][0] == pytest.approx(5.0, rel=0.1)


def test_non_gaussian_errors_need_the_map_not_one_scale():
    """Half the errors near 0 (a clipped background predicted near 0), half Laplace: no single
    factor on a Gaussian fits every level, the quantile map does (checked on the other half)."""
    rng = np.random.default_rng(1)
    n = 20000
    error = np.where(rng.random(n) < 0.5, rng.normal(0, 0.002, n), rng.laplace(0, 0.05, n))
    cal = calibration(error, np.full(n, 0.01), 0.0, np.zeros(n), rng.random(n) < 0.5)
    assert cal["ece_after"] < 0.02
    z = norm.ppf(0.5 + np.asarray(cal["levels"]) / 2)
    best_scale = min(  # the best single factor, even fitted on the errors it is checked on
        np.mean(np.abs([np.mean(np.abs(error) <= zq * s * 0.01) - lv for zq, lv in zip(z, cal["levels"])]))
        for s in np.geomspace(0.1, 100, 400)
    )
    assert best_scale > 0.1


def test_written_uncertainty_by_hand():
    p, spread = np.array([0.05, 0.5, 0.95]), np.array([0.01, 0.02, 0.0])
    got = calibrated_uncertainty(p, spread, 0.03, 0.4, (1.0, 2.0, 3.0))
    expected = [
        1.0 * np.sqrt(0.03**2 + 0.01**2 + 0.16 * 0.05 * 0.95),
        2.0 * np.sqrt(0.03**2 + 0.02**2 + 0.16 * 0.25),
        3.0 * np.sqrt(0.03**2 + 0.16 * 0.95 * 0.05),
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(calibrated_uncertainty(p, spread, 0.0, 0.0, (1.0,) * 3), spread.astype(np.float32))


def test_after_judges_each_direction_alone():
    """Errors of sd 0.02 on the odd slices and 0.1 on the even ones: a map from one half is too
    wide or too narrow on the other. Pooled, the two misfits partly cancel; judged one direction at
    a time, they show in full."""
    rng = np.random.default_rng(4)
    n = 20000
    odd = np.arange(n) % 2 == 1
    error = rng.normal(0, np.where(odd, 0.02, 0.1))
    cal = calibration(error, np.zeros(n), 0.02, np.zeros(n), odd)
    pooled = np.mean(np.abs(np.asarray(cal["coverage_after"]) - np.asarray(cal["levels"])))
    assert cal["ece_after"] > 0.3 and pooled < cal["ece_after"] / 2
